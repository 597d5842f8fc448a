"""Account activation on the engine: one pj.Account per active Account/BonjourAccount, and SIP registration.

``Registration`` lives on the loop thread. It creates the account's pj.Account on the pjsua thread (through
``Engine.run``), registers it along the RFC 3263 routes with failover, refreshes it (its timer is the only one:
sipcli.registration_timers), retries with backoff, and unregisters on ``stop()``. pjsua's own retry is off:
failover and backoff are decided here, so that SIPAccountRegistrationDidFail can say what comes next
(``next_route``, ``delay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import socket
from dataclasses import dataclass, replace
from typing import Any

from sipcli.configuration.datatypes import Hostname
from sipcli.digest import foreign_realm_reason
from sipcli.lookup import DNSLookup, DNSLookupError
from sipcli.message import got_request
from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua import Engine, EngineError
from sipcli.pjsua.account import AccountDriver, AccountParams
from sipcli.pjsua.events import AccountEvent, PagerRequest
from sipcli.registration_timers import refresh_delay, retry_after, retry_delay
from sipcli.uri import SIPURI, Route, is_ip_address

__all__ = ["Registration", "RegistrationFailed", "RegistrationFailure", "activate", "deactivate", "registration_of"]

log = logging.getLogger(__name__)

_CONTACT_HEADER = re.compile(r"^(?:contact|m)\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class RegistrationFailure:
    """Why the last REGISTER failed: kind 'response' (code is the final response), 'timeout' or 'transport';
    retry_after: the response's Retry-After seconds."""

    kind: str
    reason: str
    code: int | None = None
    retry_after: int | None = None


class RegistrationFailed(Exception):
    """Raised by Registration.wait_ready: the account could not be made ready (failure says why)."""

    def __init__(self, failure: RegistrationFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def contact_uris(message: str) -> list[str]:
    """The Contact URIs of a SIP response (several headers and comma-separated values)."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    uris = []
    for value in _CONTACT_HEADER.findall(head):
        for part in re.split(r",(?=(?:[^\"<>]|\"[^\"]*\"|<[^>]*>)*$)", value):
            part = part.strip()
            if not part:
                continue
            part = part[part.index("<") + 1:part.index(">")] if "<" in part else part.split(";", 1)[0]
            uris.append(part.strip())
    return uris


def source_address(destination: str) -> str:
    """The local IP the kernel would use to reach destination (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((destination, 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class Registration:
    """The engine side of one active account: its pj.Account and, for a registering account, its registration.

    States: 'idle', 'registering', 'registered', 'failed' (a retry is scheduled), 'unregistering', 'ended'.
    """

    _ids = itertools.count(1)

    def __init__(self, account: Any, *, register: bool | None = None, expires: int | None = None,
                 lookup: DNSLookup | None = None) -> None:
        self.account = account
        self.engine = Engine()
        self.register = bool(getattr(getattr(account, "registration", None), "enabled", False)) \
            if register is None else register
        self.expires = int(expires or getattr(getattr(account, "sip", None), "register_interval", None) or 600)
        self.lookup = lookup or DNSLookup(self.engine.settings.dns_nameservers)
        self.notification_id = f"registration/{next(self._ids)}"
        self.state = "idle"
        self.routes: list[Route] = []
        self.route: Route | None = None
        self.contact_uri: str | None = None
        self.last_failure: RegistrationFailure | None = None
        self.failures = 0
        self._route_index = 0
        self._driver = AccountDriver(account, self._driver_event)  # its methods run on the pjsua thread
        self._retry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._stopping: asyncio.Future | None = None
        self._ended: asyncio.Future | None = None
        # resolved once the account can place calls: its pj.Account exists (for a registering account, the
        # one made for the first route tried)
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters: list[asyncio.Future] = []  # wait_ready() calls: resolved with None or a failure

    def __repr__(self) -> str:
        return f"<Registration {self.notification_id} {self.account.id} {self.state}>"

    # -- public API (loop thread) ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        """Create the pj.Account and, when registering, send the first REGISTER (runs as a task)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._start())
        return self._task

    def stop(self, timeout: float = 2.0) -> asyncio.Future:
        """Unregister (waiting up to timeout for the answer) and remove the pj.Account; idempotent."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        return self._stopping

    @property
    def usable(self) -> bool:
        """The account can place and take calls: its pj.Account exists and, when registering, it is registered."""
        return self.state == "registered" if self.register else self.ready.done()

    async def wait_ready(self, timeout: float) -> None:
        """Until ready. RegistrationFailed at the first failure; when timeout passes first, a registration still
        waiting for its registrar is reported as failed (SIPAccountRegistrationDidFail, code 408) and
        RegistrationFailed raised with kind 'timeout'."""
        if self.usable:
            return
        if self.register and self.state == "failed" and self.last_failure is not None:
            # the registrar answered before anyone waited (a fast refusal, e.g. during account activation)
            raise RegistrationFailed(self.last_failure)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:  # asyncio.timeout: on Python 3.11 wait_for drops a cancellation that comes with the result
            async with asyncio.timeout(timeout):
                failure = await waiter
        except TimeoutError:
            where = f" from {self.route.address}:{self.route.port} ({self.route.transport})" if self.route else ""
            failure = RegistrationFailure("timeout", f"no response{where} within {timeout:g} s", 408)
            if self.register and self.state == "registering":
                self._post("SIPAccountRegistrationDidFail", code=408, reason=failure.reason, registration=self,
                           next_route=None, delay=None)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if failure is not None:
            raise RegistrationFailed(failure)

    # -- internals ---------------------------------------------------------------------------------------------

    def _wake(self, failure: RegistrationFailure | None) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(failure)
        self._waiters.clear()

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self.account, data=NotificationData(**data))

    async def _start(self) -> None:
        try:
            if self.register:
                await self._attempt()
            if self._driver.pj_account is None and self._stopping is None:
                # not registering, or no route to register along yet (DNS, transport): calls still need one
                await self.engine.run(self._driver.create, self._params(None, None))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an engine that went away, a bad proxy: report, never leave a task error
            log.debug("registration of %s could not start", self.account.id, exc_info=True)
            self._failed(RegistrationFailure("transport", str(error) or type(error).__name__), retry=False)
        finally:
            if self._driver.pj_account is not None and not self.ready.done():
                self.ready.set_result(None)
                if not self.register:
                    self._wake(None)

    async def _attempt(self) -> None:
        """One REGISTER along the current route (resolving the routes first when there are none)."""
        if self._stopping is not None:
            return
        self.state = "registering"
        if not self.routes or self._route_index >= len(self.routes):
            try:
                self.routes = await self._resolve()
            except (DNSLookupError, ValueError) as error:
                self._failed(RegistrationFailure("transport", f"DNS lookup failed: {error}"))
                return
            self._route_index = 0
        self.route = self.routes[self._route_index]
        if self.route.transport not in self.engine.transports:
            self._failed(RegistrationFailure("transport", f"no {self.route.transport} transport is enabled"))
            return
        self.contact_uri = self._contact(self.route)
        try:
            await self.engine.run(self._driver.register, self._params(self.route, self.contact_uri))
        except EngineError as error:
            self._failed(RegistrationFailure("transport", str(error)))

    async def _resolve(self) -> list[Route]:
        proxy = getattr(getattr(self.account, "sip", None), "outbound_proxy", None)
        target = SIPURI.parse(str(proxy)) if proxy else SIPURI(host=self.account.id.domain)
        supported = tuple(transport for transport in ("udp", "tcp", "tls") if transport in self.engine.transports)
        if is_ip_address(target.host.strip("[]")):
            return self.lookup.lookup_sip_proxy(target, supported)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.lookup.lookup_sip_proxy, target, supported)

    def _contact(self, route: Route) -> str:
        host, port = self.engine.transports[route.transport]
        # Bound to every interface, pjsua publishes one of them: name the one that reaches this route instead.
        local_ip = host if self.engine.settings.local_ip else source_address(route.address)
        uri = f"sip:{self.account.contact.username}@{Hostname(local_ip).uri_form}:{port}"
        return uri if route.transport == "udp" else f"{uri};transport={route.transport}"

    def _driver_event(self, event: AccountEvent) -> None:
        """Loop thread: what onRegState copied, or an incoming MESSAGE (reported whatever the state)."""
        if isinstance(event, PagerRequest):
            got_request(self.account, event.data, event.composing)
            return
        code, reason, expiration, error, message = (event.code, event.reason, event.expiration, event.error,
                                                    event.message)
        if self.state == "ended":
            return
        if self.state == "unregistering":
            data: dict[str, Any] = {"registration": self}
            if message:
                data.update(code=code, reason=reason)
            self.state = "ended"
            self._post("SIPAccountRegistrationDidEnd", **data)
            if self._ended is not None and not self._ended.done():
                self._ended.set_result(None)
            return
        if 200 <= code < 300 and expiration > 0:
            first = self.state != "registered"
            self.state = "registered"
            self.failures = 0
            self.last_failure = None
            self._schedule_refresh(expiration)
            registered = contact_uris(message)
            self._post("SIPAccountRegistrationDidSucceed", code=code, reason=reason, contact_uri=self.contact_uri,
                       contact_uri_list=registered, expires=expiration, registration=self)
            self._wake(None)
            if first:
                log.info("%s registered at %s for %d s", self.account.id, self.route, expiration)
            return
        if message:
            foreign = foreign_realm_reason(message, self.account.credentials.realm) if code in (401, 407) else None
            failure = RegistrationFailure("response", foreign or reason, code, retry_after(message))
        elif code == 408:
            failure = RegistrationFailure("timeout", error or reason or "Request Timeout")
        else:
            failure = RegistrationFailure("transport", error or reason)
        self._failed(failure)

    def _schedule_refresh(self, expires: int) -> None:
        """The one refresh timer (sipcli.registration_timers says why pjsip's never fires)."""
        if self._retry is not None:
            self._retry.cancel()
        delay = refresh_delay(expires, self.expires)
        loop = asyncio.get_running_loop()
        self._retry = loop.call_later(delay, lambda: loop.create_task(self._refresh()))

    async def _refresh(self) -> None:
        if self._stopping is not None or self.state != "registered":
            return
        try:
            await self.engine.run(self._driver.refresh)
        except EngineError as error:
            log.debug("refresh of %s not sent: %s", self.account.id, error)

    def _failed(self, failure: RegistrationFailure, retry: bool = True) -> None:
        """Post SIPAccountRegistrationDidFail and schedule the next attempt: the next route, or a new lookup."""
        self.state = "failed"
        self.last_failure = failure
        # A final refusal from a registrar will be the same from its other addresses; transport trouble and
        # 5xx/timeouts are what failover is for (RFC 3263 section 4.3).
        failover = failure.kind != "response" or (failure.code or 0) >= 500
        next_route = None
        if failover and self.routes and self._route_index + 1 < len(self.routes):
            self._route_index += 1
            next_route = self.routes[self._route_index]
            delay = 0.0
        else:
            self.failures += 1
            self.routes = []
            delay = retry_delay(self.failures, failure.retry_after)
        data: dict[str, Any] = {"reason": failure.reason, "registration": self, "next_route": next_route,
                                "delay": delay}
        if failure.code is not None:
            data = {"code": failure.code, **data}
        self._post("SIPAccountRegistrationDidFail", **data)
        if self._retry is not None:  # one timer: a refresh or retry still pending is replaced, never doubled
            self._retry.cancel()
        if next_route is None:  # failover goes on: not a failure for those waiting yet
            self._wake(failure)
        if retry and self._stopping is None:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(delay, lambda: loop.create_task(self._attempt()))

    async def _stop(self, timeout: float) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if not self.engine.is_running:
            self.state = "ended"
            return
        was_registered = self.state == "registered"
        if was_registered:
            self.state = "unregistering"
            self._ended = asyncio.get_running_loop().create_future()
            try:
                sent = await self.engine.run(self._driver.unregister)
            except EngineError:
                sent = False
            if sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._ended), timeout)
            if self.state != "ended":  # no answer in time (or none could be sent): it ends all the same
                self.state = "ended"
                self._post("SIPAccountRegistrationDidEnd", registration=self)
        self.state = "ended"
        with contextlib.suppress(EngineError):  # the engine is stopping: it removes leftover accounts itself
            await self.engine.run(self._driver.destroy)

    def _params(self, route: Route | None, contact: str | None) -> AccountParams:
        """What the pj.Account is made with: for route, or P2P (known by its contact user) without one."""
        account = self.account
        credentials = account.credentials
        display = getattr(account, "display_name", None)
        if route is None:
            transports = self.engine.transports
            local_ip = next(iter(transports.values()))[0] if transports else "127.0.0.1"
            # sips: with a TLS transport: pjsua then writes a sips: Contact on TLS, which a sips: call needs (RFC
            # 5630; pjsip's callee answers 480 "SIPS Required" without it); on UDP/TCP the Contact stays sip:
            scheme = "sips" if "tls" in transports else "sip"
            identity = f"{scheme}:{account.contact.username}@{Hostname(local_ip).uri_form}"
        else:
            identity = f"sip:{account.id}"
        srtp = str(getattr(getattr(account, "rtp", None), "srtp_encryption", "disabled"))
        return AccountParams(
            id_uri=f'"{display}" <{identity}>' if display else identity, username=credentials.username,
            password=credentials.password or None, expires=self.expires, realm=credentials.realm, srtp=srtp,
            registrar_uri=f"sip:{account.id.domain}" if route is not None else None,
            route_uri=str(route.uri) if route is not None else None,
            transport=route.transport if route is not None else None, contact=contact)

    def route_params(self, route: Route) -> AccountParams:
        """What a second, never registering pj.Account of this account that sends along route is made with
        (pager mode sends a MESSAGE along a route this way: pjsua2 cannot route one request)."""
        params = replace(self._params(route, self._contact(route)), registrar_uri=None)
        if not hasattr(self.account, "sip"):  # P2P: the identity stays the contact, not bonjour@local
            params = replace(params, id_uri=self._params(None, None).id_uri)
        return params


_active: dict[Any, Registration] = {}


def activate(account: Any) -> Registration:
    """Give an activated Account/BonjourAccount its Registration (its pj.Account, and REGISTER when it registers)."""
    registration = _active.get(account)
    if registration is None or registration._stopping is not None:
        registration = Registration(account, register=False if not hasattr(account, "sip") else None)
        _active[account] = registration
        registration.start()
    return registration


def deactivate(account: Any, timeout: float = 2.0) -> asyncio.Future | None:
    """Unregister and drop the account's pj.Account; the future resolves when done (None if never active)."""
    registration = _active.pop(account, None)
    return registration.stop(timeout) if registration is not None else None


def registration_of(account: Any) -> Registration | None:
    """The Registration of an active account, or None."""
    return _active.get(account)
