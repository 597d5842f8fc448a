"""Chat support: the process-wide MSRP endpoints the chat streams of all sessions share.

pjsua writes an answer SDP synchronously, before any loop-thread code can decide: local MSRP URIs therefore
come from one process-wide ``MSRPDispatcher`` per transport (``ChatSupport``), which routes each incoming
connection by the session id of its first To-Path, and a relay grant (RFC 4976) for incoming sessions is
obtained ahead of time (a spare, replaced when taken). The stream itself is ``sipcli.streams.chat.ChatStream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from sipcli.msrp.aio import MSRPDispatcher, MSRPTransport, client_ssl_context, connect_relay
from sipcli.msrp.uri import MSRPURI
from sipcli.pjsua import Engine
from sipcli.singleton import Singleton

__all__ = ["ChatError", "ChatSupport", "EventSink", "RelayGrant", "relay_uri"]

log = logging.getLogger(__name__)


class ChatError(Exception):
    """A chat operation could not be done (no chat stream, chat not negotiated, no relay grant...)."""


@dataclass
class EventSink:
    """Where an MSRP transport's events go; set once the stream that owns it is known (a spare relay grant)."""

    target: Any = None
    early: list = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        if self.target is None:
            self.early.append(event)
        else:
            self.target(event)

    def attach(self, target: Any) -> None:
        self.target = target
        for event in self.early:
            target(event)
        self.early.clear()


@dataclass
class RelayGrant:
    """One session's MSRP connection through a relay (RFC 4976), and the sink its events wait in meanwhile."""

    transport: MSRPTransport
    sink: EventSink


def relay_uri(value: str) -> MSRPURI:
    """An MSRP relay URI from ``msrp[s]://host[:port];tcp`` or an account's ``sip:host[:port][;transport=tls]``."""
    text = str(value).strip()
    if text.lower().startswith(("msrp://", "msrps://")):
        return MSRPURI.parse(text)
    from sipcli.uri import SIPURI

    uri = SIPURI.parse(text if text.lower().startswith(("sip:", "sips:")) else f"sip:{text}")
    use_tls = str(uri.parameters.get("transport", "")).lower() == "tls" or text.lower().startswith("sips:")
    return MSRPURI(uri.host, uri.port or 2855, None, "tcp", use_tls)


class ChatSupport(metaclass=Singleton):
    """Process-wide MSRP endpoints (a singleton): dispatchers per transport and spare relay grants."""

    def __init__(self) -> None:
        self.dispatchers: dict[str, MSRPDispatcher] = {}
        self.spares: dict[str, RelayGrant] = {}
        self.server_context: ssl.SSLContext | None = None
        self.client_context: ssl.SSLContext | None = None

    @property
    def running(self) -> bool:
        return bool(self.dispatchers)

    async def start(self) -> None:
        """Listen for MSRP (TCP, and TLS when settings tls.certificate names a PEM with certificate and key)."""
        if self.running:
            return
        engine = Engine()
        settings = engine.settings
        advertised = next(iter(engine.transports.values()))[0] if engine.transports else "127.0.0.1"
        bind = settings.local_ip or "0.0.0.0"
        certificate = settings.tls_certificate
        if certificate is None:
            with contextlib.suppress(Exception):
                from sipcli.configuration.settings import SIPSimpleSettings

                certificate = SIPSimpleSettings().tls.certificate or None
        self.client_context = client_ssl_context(settings.tls_verify_server, settings.tls_ca_list)
        self.dispatchers["tcp"] = await MSRPDispatcher.start(bind, 0, advertised_host=advertised)
        if certificate:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certificate), settings.tls_private_key or None)
            self.server_context = context
            self.dispatchers["tls"] = await MSRPDispatcher.start(bind, 0, context, advertised_host=advertised)

    async def stop(self) -> None:
        for dispatcher in self.dispatchers.values():
            dispatcher.close()
        self.dispatchers.clear()
        spares, self.spares = list(self.spares.values()), {}
        for grant in spares:
            await grant.transport.close()

    def local_uri(self, use_tls: bool) -> MSRPURI:
        """A fresh URI on our dispatcher (any thread); ChatError without one (TLS needs a certificate)."""
        dispatcher = self.dispatchers.get("tls" if use_tls else "tcp")
        if dispatcher is None:
            raise ChatError("MSRP over TLS needs a certificate (setting tls.certificate)" if use_tls
                            else "chat is not started (ChatSupport().start())")
        return dispatcher.uri()

    async def relay_grant(self, account: Any, uri: MSRPURI) -> RelayGrant:
        """Authenticate at the relay with the account's credentials; the transport carries one session."""
        credentials = getattr(account, "credentials", None)
        if credentials is None:
            raise ChatError(f"account {account.id} has no credentials for the MSRP relay")
        sink = EventSink()
        transport = await connect_relay(uri, MSRPURI.new(Engine().settings.local_ip or "127.0.0.1", 9, uri.use_tls),
                                        credentials.username, credentials.password, realm=credentials.realm,
                                        ssl_context=self.client_context if uri.use_tls else None, on_event=sink)
        return RelayGrant(transport, sink)

    async def keep_spare(self, account: Any) -> None:
        """Hold a relay grant for the next incoming chat of account (its msrp.relay setting)."""
        relay = getattr(getattr(account, "msrp", None), "relay", None)
        if relay and str(account.id) not in self.spares:
            self.spares[str(account.id)] = await self.relay_grant(account, relay_uri(relay))

    def take_spare(self, account: Any) -> RelayGrant | None:
        """pjsua thread: the spare grant of account, or None; a replacement is requested from the loop."""
        grant = self.spares.pop(str(getattr(account, "id", "")), None)
        if grant is not None:
            Engine().post(self._replace_spare, account)
        return grant

    def _replace_spare(self, account: Any) -> None:
        task = asyncio.ensure_future(self.keep_spare(account))
        task.add_done_callback(_log_spare_failure)


def _log_spare_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("no spare MSRP relay grant: %s", task.exception())
