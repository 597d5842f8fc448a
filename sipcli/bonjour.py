"""P2P discovery for the BonjourAccount: DNS-SD publishing of its contact and a neighbour browser (zeroconf).

Opt-in per account through its settings, both False by default so that ordinary P2P runs never touch multicast:

- ``discovery.publish``: while the account is active, advertise its contact as ``_sipuri._udp.local.``,
  ``_sipuri._tcp.local.`` and, when a TLS transport listens, ``_sipuris._tcp.local.``; the instance name is the
  account's display name. TXT: ``txtvers=1``, ``name`` (display name), ``contact`` (the SIP URI for that transport),
  ``instance_id`` (the contact ``user@ip``, unique per process). Posts BonjourAccountRegistrationDidSucceed
  (name, transport, uri), BonjourAccountRegistrationDidFail (transport, reason) and, when withdrawn on
  deactivation (goodbye packets), BonjourAccountRegistrationDidEnd (transport).
- ``discovery.browse``: follow those service types and post BonjourAccountDidAddNeighbour /
  BonjourAccountDidUpdateNeighbour (neighbour, name, display_name, host, uri, uris) and
  BonjourAccountDidRemoveNeighbour (neighbour, name, display_name). A neighbour is one publishing process (its
  services for every transport grouped by ``instance_id``); ``uri`` is its preferred one (udp, tcp, tls). Our own
  services are never reported. Stopping does not post removals: the neighbours did not leave.

zeroconf is imported only when one of them is enabled. It is bound to the interface of the account's contact
address (the engine's local IP) only, and runs on the asyncio loop (its asyncio API); its service callbacks
still hand plain data to the loop with call_soon_threadsafe, so they would be safe from its own thread too.
All notifications are posted on the loop thread, with the account as sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sipcli.notification import NotificationCenter, NotificationData

__all__ = ["SERVICE_TYPES", "BonjourServices", "Neighbour", "activate", "deactivate", "find_neighbour",
           "services_of"]

log = logging.getLogger(__name__)

SERVICE_TYPES = {"udp": "_sipuri._udp.local.", "tcp": "_sipuri._tcp.local.", "tls": "_sipuris._tcp.local."}
_TRANSPORTS = {service_type: transport for transport, service_type in SERVICE_TYPES.items()}
RESOLVE_TIMEOUT_MS = 3000


@dataclass
class Neighbour:
    """A SIP user agent found on the link: its id (``instance_id``), instance name, display name, host, URIs."""

    id: str
    name: str
    display_name: str | None
    host: str
    uris: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str | None:
        """The URI to call it at: udp first, then tcp, then tls."""
        return next((self.uris[t] for t in SERVICE_TYPES if t in self.uris), None)

    def matches(self, name: str) -> bool:
        """True when name is its instance name or display name (case-insensitive)."""
        wanted = name.casefold()
        return wanted in (self.name.casefold(), (self.display_name or "").casefold())

    def data(self) -> NotificationData:
        return NotificationData(neighbour=self.id, name=self.name, display_name=self.display_name, host=self.host,
                                uri=self.uri, uris=dict(self.uris))


def _decode_txt(properties: dict) -> dict[str, str]:
    return {key.decode("utf-8", "replace").lower(): value.decode("utf-8", "replace")
            for key, value in properties.items() if isinstance(key, bytes) and isinstance(value, bytes)}


class BonjourServices:
    """Publishing and browsing for one account (see the module docstring); start() and stop() on the loop."""

    def __init__(self, account: Any, *, publish: bool, browse: bool) -> None:
        self.account = account
        self.publish = publish
        self.browse = browse
        self.neighbours: dict[str, Neighbour] = {}
        self.error: str | None = None  # why discovery could not start at all
        self.published: dict[str, str] = {}  # transport -> instance name
        self._instance_id = str(account.contact)
        self._services: dict[str, tuple[str, str]] = {}  # service full name -> (neighbour id, transport)
        self._resolving: dict[str, asyncio.Task] = {}
        self._infos: dict[str, Any] = {}  # transport -> registered AsyncServiceInfo
        self._zeroconf: Any = None
        self._browser: Any = None
        self._loop = asyncio.get_running_loop()
        self._start_task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> asyncio.Task:
        """Open zeroconf, start browsing and publish; the task ends once the services are announced."""
        if self._start_task is None:
            self._start_task = self._loop.create_task(self._start())
        return self._start_task

    async def wait_started(self) -> None:
        """Wait until start() has announced everything (or failed: see ``error``)."""
        await asyncio.shield(self.start())

    async def stop(self) -> None:
        """Stop browsing and withdraw the services (goodbye packets), then close zeroconf."""
        self._closing = True
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._start_task
        for task in self._resolving.values():
            task.cancel()
        self._resolving.clear()
        if self._zeroconf is None:
            return
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
        await asyncio.gather(*(self._unregister(t) for t in list(self._infos)))
        with contextlib.suppress(Exception):
            await self._zeroconf.async_close()
        self._zeroconf = None

    # -- internals ---------------------------------------------------------------------------------------------

    def _post(self, name: str, data: NotificationData | None = None) -> None:
        NotificationCenter().post_notification(name, sender=self.account, data=data or NotificationData())

    async def _start(self) -> None:
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        address = self.account.contact.domain
        try:
            # Only the engine's interface: on 127.0.0.1 nothing leaves loopback.
            self._zeroconf = AsyncZeroconf(interfaces=[address])
        except Exception as error:  # OSError, or zeroconf's own for an address with no interface
            self.error = f"mDNS on {address}: {error}"
            self._post("BonjourAccountDiscoveryDidFail", NotificationData(reason=self.error))
            return
        if self.browse:
            self._browser = AsyncServiceBrowser(self._zeroconf.zeroconf, list(SERVICE_TYPES.values()),
                                                handlers=[self._on_service_change])
        if self.publish:
            transports = [t for t in SERVICE_TYPES if t in self.account.contact.transports]
            await asyncio.gather(*(self._register(t) for t in transports))

    async def _register(self, transport: str) -> None:
        import ipaddress

        from zeroconf.asyncio import AsyncServiceInfo

        contact = self.account.contact
        service_type = SERVICE_TYPES[transport]
        uri = str(contact[transport])
        name = self.account.display_name or contact.username
        properties = {"txtvers": "1", "name": name, "contact": uri, "instance_id": self._instance_id}
        try:
            info = AsyncServiceInfo(service_type, f"{name}.{service_type}",
                                    addresses=[ipaddress.ip_address(contact.domain).packed],
                                    port=contact.transports[transport], properties=properties,
                                    server=f"sipcli-{contact.username}.local.")
            await (await self._zeroconf.async_register_service(info, allow_name_change=True))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = str(error) or type(error).__name__
            self._post("BonjourAccountRegistrationDidFail", NotificationData(transport=transport, reason=reason))
            return
        self._infos[transport] = info
        self.published[transport] = info.name[:-len(service_type) - 1]
        self._post("BonjourAccountRegistrationDidSucceed",
                   NotificationData(name=self.published[transport], transport=transport, uri=uri))

    async def _unregister(self, transport: str) -> None:
        info = self._infos.pop(transport)
        self.published.pop(transport, None)
        try:
            await (await self._zeroconf.async_unregister_service(info))
        except Exception as error:
            log.debug("withdrawing %s: %s", info.name, error)
        self._post("BonjourAccountRegistrationDidEnd", NotificationData(transport=transport))

    def _on_service_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        """zeroconf's callback (whatever thread it runs on): plain strings go to the loop."""
        self._loop.call_soon_threadsafe(self._service_changed, service_type, name, state_change.name)

    def _service_changed(self, service_type: str, name: str, change: str) -> None:
        if self._closing or service_type not in _TRANSPORTS:
            return
        pending = self._resolving.pop(name, None)
        if pending is not None:
            pending.cancel()
        if change == "Removed":
            self._remove(name)
        else:
            self._resolving[name] = self._loop.create_task(self._resolve(service_type, name))

    async def _resolve(self, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        try:
            found = await info.async_request(self._zeroconf.zeroconf, RESOLVE_TIMEOUT_MS)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("resolving %s: %s", name, error)
            found = False
        if self._resolving.get(name) is asyncio.current_task():
            del self._resolving[name]
        if not found or self._closing:
            return
        transport = _TRANSPORTS[service_type]
        txt = _decode_txt(info.properties or {})
        addresses = info.parsed_addresses()
        host = addresses[0] if addresses else (info.server or "").rstrip(".")
        uri = txt.get("contact", "").strip().strip("<>")
        if not uri:  # another implementation without a contact record: its address and port
            host_part = f"[{host}]" if ":" in host else host
            scheme = "sips" if transport == "tls" else "sip"
            uri = f"{scheme}:{host_part}:{info.port}" + ("" if transport == "udp" else f";transport={transport}")
        instance_id = txt.get("instance_id") or name
        if instance_id == self._instance_id:
            return  # ourselves
        label = name[:-len(service_type) - 1]
        self._add(name, instance_id, label, txt.get("name") or None, host, transport, uri)

    def _add(self, service: str, neighbour_id: str, label: str, display_name: str | None, host: str,
             transport: str, uri: str) -> None:
        previous = self._services.get(service)
        if previous is not None and previous[0] != neighbour_id:
            self._remove(service)  # the same service name now belongs to another process
        self._services[service] = (neighbour_id, transport)
        neighbour = self.neighbours.get(neighbour_id)
        if neighbour is None:
            neighbour = Neighbour(neighbour_id, label, display_name, host, {transport: uri})
            self.neighbours[neighbour_id] = neighbour
            self._post("BonjourAccountDidAddNeighbour", neighbour.data())
            return
        before = (neighbour.display_name, neighbour.host, dict(neighbour.uris))
        neighbour.display_name, neighbour.host = display_name, host
        neighbour.uris[transport] = uri
        if before != (neighbour.display_name, neighbour.host, neighbour.uris):
            self._post("BonjourAccountDidUpdateNeighbour", neighbour.data())

    def _remove(self, service: str) -> None:
        entry = self._services.pop(service, None)
        if entry is None:
            return
        neighbour_id, transport = entry
        neighbour = self.neighbours.get(neighbour_id)
        if neighbour is None:
            return
        if any(other == neighbour_id and t == transport for other, t in self._services.values()):
            return  # another service still gives this transport
        neighbour.uris.pop(transport, None)
        if neighbour.uris:
            self._post("BonjourAccountDidUpdateNeighbour", neighbour.data())
            return
        del self.neighbours[neighbour_id]
        self._post("BonjourAccountDidRemoveNeighbour",
                   NotificationData(neighbour=neighbour.id, name=neighbour.name, display_name=neighbour.display_name))


_active: dict[Any, BonjourServices] = {}


def activate(account: Any) -> BonjourServices | None:
    """Start publishing/browsing for an activated account when its ``discovery`` settings ask (else None)."""
    discovery = getattr(account, "discovery", None)
    if discovery is None or not (discovery.publish or discovery.browse):
        return None
    services = _active.get(account)
    if services is None:
        services = BonjourServices(account, publish=bool(discovery.publish), browse=bool(discovery.browse))
        _active[account] = services
        services.start()
    return services


def deactivate(account: Any) -> asyncio.Task | None:
    """Withdraw the account's services and stop browsing; the task ends when the goodbyes are sent."""
    services = _active.pop(account, None)
    return asyncio.get_running_loop().create_task(services.stop()) if services is not None else None


def services_of(account: Any) -> BonjourServices | None:
    """The BonjourServices of an active account, or None."""
    return _active.get(account)


async def find_neighbour(account: Any, name: str, timeout: float) -> Neighbour | None:
    """The neighbour called name (instance or display name) that the account's browser finds within timeout."""
    services = services_of(account)
    if services is None:
        raise RuntimeError(f"{account.id} is not browsing (set discovery.browse before it activates)")
    neighbours = services.neighbours
    found: asyncio.Future = asyncio.get_running_loop().create_future()

    def check(neighbour: Neighbour | None) -> None:
        if neighbour is not None and neighbour.matches(name) and not found.done():
            found.set_result(neighbour)

    class Observer:
        def handle_notification(self, notification: Any) -> None:
            check(neighbours.get(notification.data.neighbour))

    observer = Observer()
    center = NotificationCenter()
    for notification_name in ("BonjourAccountDidAddNeighbour", "BonjourAccountDidUpdateNeighbour"):
        center.add_observer(observer, name=notification_name, sender=account)
    try:
        for neighbour in list(services.neighbours.values()):
            check(neighbour)
        try:
            return await asyncio.wait_for(found, timeout)
        except TimeoutError:
            return None
    finally:
        center.purge_observer(observer)
