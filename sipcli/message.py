"""Pager-mode instant messages (RFC 3428 MESSAGE), shaped like python3-sipsimple's.

Outgoing: ``Message(from_header, to_header, route_header, content_type, body).send(timeout)`` posts
SIPMessageDidSucceed or SIPMessageDidFail (code, reason, headers; plus ``originator``: 'remote' when the code is a
response from the network, 'local' when the engine or the timeout made it up). Incoming requests are posted by the
engine as SIPEngineGotMessage (request_uri, from_header, to_header, headers, body, content_type; plus ``account``,
the account the request URI names or None, and ``truncated``), RFC 3994 composing indications as
SIPEngineGotComposingIndication instead.

The parsers here are sans-IO (bytes in, values out) and bounded; the pjsua2 side is ``sipcli.pjsua.pager``.

What the engine (pjsua2 2.15.1) decides before sipcli sees a request, measured: pjsua's IM module answers every
out-of-dialog MESSAGE with 200 OK before any Python callback runs (a body without Content-Type, one for an unknown
user and one pjsip truncated included), so sipcli cannot answer 400 or 404: it reports every such request instead
(``account`` None, or a ``content_type`` of None). pjsip's packet limit (PJSIP_MAX_PKT_LEN, 4000 bytes in the
wheel) refuses larger outgoing requests with PJSIP_EMSGTOOLONG on every transport (SIPMessageDidFail, never a
truncated body), drops larger incoming ones over TCP and cuts larger UDP datagrams (reported ``truncated``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sipcli.notification import NotificationCenter, NotificationData
from sipcli.uri import SIPURI, Route, is_ip_address

if TYPE_CHECKING:
    from sipcli.lookup import DNSLookup
    from sipcli.pjsua.account import AccountParams
    from sipcli.pjsua.events import MessageStatus

__all__ = ["COMPOSING_TYPE", "ComposingIndication", "IncomingRequest", "Message", "MessageError",
           "build_iscomposing", "parse_iscomposing", "parse_request", "parse_response"]

log = logging.getLogger(__name__)

COMPOSING_TYPE = "application/im-iscomposing+xml"
MAX_REQUEST = 1 << 20  # a request larger than this is not parsed (the engine never hands over more than 4000 bytes)
MAX_HEADERS = 200
_COMPOSING_NS = "{urn:ietf:params:xml:ns:im-iscomposing}"
_COMPACT = {"f": "From", "t": "To", "c": "Content-Type", "l": "Content-Length", "i": "Call-ID", "v": "Via",
            "m": "Contact", "e": "Content-Encoding", "k": "Supported", "s": "Subject"}
_CANONICAL = {name.lower(): name for name in ("Call-ID", "CSeq", "WWW-Authenticate", "MIME-Version")}
_ANGLE_URI = re.compile(r"<([^>]*)>")


class MessageError(Exception):
    """A Message was used in the wrong state or could not be built."""


def _header_name(name: str) -> str:
    lower = name.strip().lower()
    if lower in _COMPACT:
        return _COMPACT[lower]
    return _CANONICAL.get(lower) or "-".join(part.capitalize() for part in lower.split("-"))


def _split(data: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(start line, [(header name, value)], body) of a SIP message; folded lines are joined."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], f"{headers[-1][1]} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip() and len(headers) < MAX_HEADERS:
            headers.append((_header_name(name), value.strip()))
    return lines[0].strip(), headers, body


def _header_dict(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header name -> value; a repeated header's values are joined with ', ' (RFC 3261 7.3.1)."""
    result: dict[str, str] = {}
    for name, value in headers:
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


@dataclass
class IncomingRequest:
    """A parsed SIP request (from the bytes pjsip received)."""

    method: str
    request_uri: str
    headers: dict[str, str]
    body: bytes
    content_type: str | None
    truncated: bool = False  # fewer body bytes than Content-Length said: pjsip cut the datagram

    @property
    def from_header(self) -> str | None:
        return self.headers.get("From")

    @property
    def to_header(self) -> str | None:
        return self.headers.get("To")

    @property
    def sender_uri(self) -> str | None:
        """The URI of the From header (no display name, no tag)."""
        return _uri_in(self.from_header)


def _uri_in(value: str | None) -> str | None:
    if not value:
        return None
    match = _ANGLE_URI.search(value)
    return match.group(1).strip() if match else value.split(";", 1)[0].strip()


def parse_request(data: bytes) -> IncomingRequest:
    """Parse a SIP request; ValueError when it is none. The body is the bytes after the blank line."""
    if len(data) > MAX_REQUEST:
        raise ValueError(f"request of {len(data)} bytes is larger than {MAX_REQUEST}")
    start, header_list, body = _split(data)
    parts = start.split()
    if len(parts) != 3 or not parts[2].upper().startswith("SIP/"):
        raise ValueError(f"not a SIP request line: {start[:80]!r}")
    headers = _header_dict(header_list)
    content_type = headers.get("Content-Type")
    truncated = False
    length = headers.get("Content-Length", "").strip()
    if length.isdigit():
        declared = int(length)
        truncated = len(body) < declared
        body = body[:declared]
    return IncomingRequest(parts[0].upper(), parts[1], headers, body, content_type.strip() if content_type else None,
                           truncated)


def parse_response(data: bytes) -> tuple[int, str, dict[str, str]]:
    """(code, reason, headers) of a SIP response; ValueError when it is none."""
    start, header_list, _ = _split(data[:MAX_REQUEST])
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.upper().startswith("SIP/") or not code.isdigit():
        raise ValueError(f"not a SIP status line: {start[:80]!r}")
    return int(code), reason, _header_dict(header_list)


@dataclass
class ComposingIndication:
    """An RFC 3994 isComposing document."""

    state: str  # 'active' or 'idle'
    content_type: str | None = None
    refresh: int | None = None
    last_active: datetime | None = None


def parse_iscomposing(body: bytes) -> ComposingIndication:
    """Parse an application/im-iscomposing+xml body; ValueError for anything else. DTDs and entities are refused
    (a hostile body cannot expand itself)."""
    if len(body) > 8192:
        raise ValueError("isComposing document larger than 8 KiB")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("isComposing document with a DTD")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise ValueError(f"malformed isComposing document: {error}") from None
    if root.tag not in (f"{_COMPOSING_NS}isComposing", "isComposing"):
        raise ValueError(f"not an isComposing document: <{root.tag}>")

    def text(name: str) -> str | None:
        element = root.find(f"{_COMPOSING_NS}{name}")
        if element is None:
            element = root.find(name)
        return element.text.strip() if element is not None and element.text else None

    state = (text("state") or "").lower()
    if state not in ("active", "idle"):
        raise ValueError(f"isComposing state {state!r} is neither active nor idle")
    refresh = text("refresh")
    last_active = text("lastactive")
    try:
        moment = datetime.fromisoformat(last_active.replace("Z", "+00:00")) if last_active else None
    except ValueError:
        moment = None
    return ComposingIndication(state, text("contenttype"), int(refresh) if refresh and refresh.isdigit() else None,
                               moment)


def build_iscomposing(state: str, content_type: str = "text/plain", refresh: int | None = None,
                      last_active: datetime | None = None) -> bytes:
    """An application/im-iscomposing+xml body (RFC 3994)."""
    if state not in ("active", "idle"):
        raise ValueError(f"isComposing state must be active or idle, not {state!r}")
    parts = [f"<state>{state}</state>"]
    if last_active is not None:
        parts.append(f"<lastactive>{last_active.isoformat()}</lastactive>")
    parts.append(f"<contenttype>{content_type}</contenttype>")
    if refresh is not None and state == "active":
        parts.append(f"<refresh>{int(refresh)}</refresh>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            + "".join(parts) + "</isComposing>").encode("utf-8")


def _uri_text(value: Any) -> str:
    """The URI inside a header object (``.uri``), a SIPURI, or a name-addr/addr-spec string."""
    uri = getattr(value, "uri", value)
    text = str(uri).strip()
    match = _ANGLE_URI.search(text)
    return match.group(1).strip() if match else text


@dataclass
class _Outcome:
    code: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    originator: str = "local"


class Message:
    """One outgoing MESSAGE request. States: 'NULL', 'SENDING', 'SUCCEEDED', 'FAILED'.

    from_header names the account that sends it (the enabled account with that id, else the default account, else
    the P2P BonjourAccount; ``account=`` picks one directly): pjsua writes From from that account and answers
    401/407 challenges with its credentials, so ``credentials`` must be the account's (a different user is
    refused). route_header (or None) is where to send it; without one the account's outbound proxy or registrar
    route is used, else RFC 3263 on the target's domain, else the target URI itself (P2P).
    """

    _ids = itertools.count(1)

    def __init__(self, from_header: Any, to_header: Any, route_header: Any, content_type: str, body: str | bytes,
                 credentials: Any = None, extra_headers: Iterable[Any] | None = None, account: Any = None) -> None:
        self.from_header = from_header
        self.to_header = to_header
        self.route_header = route_header
        self.content_type = content_type
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.credentials = credentials
        self.extra_headers = [_header_pair(header) for header in (extra_headers or ())]
        self.account = account
        self.state = "NULL"
        self.notification_id = f"message/{next(self._ids)}"
        self.route: Route | None = None
        self.outcome: tuple[int, str] | None = None  # (code, originator) once sent
        self._task: asyncio.Task[int] | None = None
        try:
            self.target = SIPURI.parse(_uri_text(to_header))
            self.text = self.body.decode("utf-8")
        except ValueError as error:  # UnicodeDecodeError included
            raise MessageError(f"cannot send this MESSAGE: {error}") from None

    def __repr__(self) -> str:
        return f"<Message {self.notification_id} to {self.target} {self.state}>"

    def __json__(self) -> str:
        return self.notification_id

    def send(self, timeout: float | None = None) -> asyncio.Task[int]:
        """Send it; the outcome is posted (SIPMessageDidSucceed/DidFail) and is the task's result (the code).

        timeout: seconds to wait for a final response (None: the engine's own transaction timeout, 32 s)."""
        if self.state != "NULL":
            raise MessageError(f"Message.send() is not allowed in state {self.state}")
        self.state = "SENDING"
        self._task = asyncio.get_running_loop().create_task(self._send(timeout))
        return self._task

    async def _send(self, timeout: float | None) -> int:
        from sipcli.pjsua import Engine, EngineError, pager

        engine = Engine()
        loop = asyncio.get_running_loop()
        response: asyncio.Future[_Outcome] = loop.create_future()
        try:
            account = self.account or _sending_account(self.from_header)
            self._check_credentials(account)
            route = await self._route(account)
            self.route = route
            await engine.run(pager.pj_send, account, str(self.target), _route_params(account, route),
                             self.content_type, self.text, self.extra_headers, functools.partial(_settle, response))
            outcome = await asyncio.wait_for(asyncio.shield(response), timeout) if timeout else await response
        except TimeoutError:
            outcome = _Outcome(408, "Timeout (no final response)")
        except pager.PagerError as error:
            outcome = _Outcome(0, str(error))
        except (EngineError, MessageError, ValueError, OSError) as error:
            outcome = _Outcome(0, str(error) or type(error).__name__)
        data = NotificationData(code=outcome.code, reason=outcome.reason, headers=outcome.headers,
                                originator=outcome.originator)
        succeeded = 200 <= outcome.code < 300
        self.outcome = (outcome.code, outcome.originator)
        self.state = "SUCCEEDED" if succeeded else "FAILED"
        NotificationCenter().post_notification("SIPMessageDidSucceed" if succeeded else "SIPMessageDidFail",
                                               sender=self, data=data)
        return outcome.code

    def _check_credentials(self, account: Any) -> None:
        wanted = getattr(self.credentials, "username", None)
        have = getattr(account, "credentials", None)
        if wanted and have is not None and wanted != have.username:
            raise MessageError(f"credentials for {wanted} do not belong to account {account.id}")

    async def _route(self, account: Any) -> Route | None:
        """Where the request goes first (None: the account's own proxy route, or the target itself)."""
        from sipcli.lookup import DNSLookupError
        from sipcli.pjsua import Engine
        from sipcli.registration import registration_of

        if self.route_header is not None:
            uri = SIPURI.parse(_uri_text(self.route_header))
            return Route(uri.host.strip("[]"), uri.port or (5061 if uri.transport == "tls" else 5060), uri.transport)
        registration = registration_of(account)
        if registration is not None and registration.route is not None:
            return None  # the pj.Account's proxy is the registrar route already (as for sessions)
        proxy = getattr(getattr(account, "sip", None), "outbound_proxy", None)
        target = SIPURI.parse(str(proxy)) if proxy else self.target
        if not proxy and is_ip_address(target.host.strip("[]")):
            return None  # P2P: straight to the URI
        engine = Engine()
        supported = tuple(t for t in ("udp", "tcp", "tls") if t in engine.transports)
        lookup = _lookup(tuple(engine.settings.dns_nameservers))
        try:
            routes = await asyncio.get_running_loop().run_in_executor(None, lookup.lookup_sip_proxy, target, supported)
        except DNSLookupError as error:
            raise MessageError(f"DNS lookup failed: {error}") from None
        return routes[0]


@functools.cache
def _lookup(nameservers: tuple[str, ...]) -> DNSLookup:
    """One DNSLookup (and its answer cache) per set of nameservers: a run of MESSAGEs resolves a domain once."""
    from sipcli.lookup import DNSLookup

    return DNSLookup(list(nameservers))


def _route_params(account: Any, route: Route | None) -> AccountParams | None:
    """What the pj.Account that sends along route is made with (None: the account's own pj.Account sends)."""
    from sipcli.registration import registration_of

    if route is None:
        return None
    registration = registration_of(account)
    if registration is None:
        raise MessageError(f"account {account.id} is not active")
    return registration.route_params(route)


def _settle(future: asyncio.Future[_Outcome], status: MessageStatus) -> None:
    """Loop thread: the engine's final status for one MESSAGE."""
    if future.done():
        return
    outcome = _Outcome(status.code, status.reason)
    if status.response:
        try:
            outcome.code, outcome.reason, outcome.headers = parse_response(status.response)
            outcome.originator = "remote"
        except ValueError:
            pass
    future.set_result(outcome)


def _header_pair(header: Any) -> tuple[str, str]:
    if isinstance(header, tuple):
        name, value = header
    else:
        name, value = header.name, getattr(header, "body", getattr(header, "value", ""))
    name, value = str(name).strip(), str(value).strip()
    if not name or any(c in name + value for c in "\r\n") or ":" in name:
        raise MessageError(f"bad extra header {name!r}")
    return name, value


def _sending_account(from_header: Any) -> Any:
    from sipcli.account import AccountManager, BonjourAccount

    manager = AccountManager()
    uri = _uri_text(from_header) if from_header is not None else ""
    address = uri.split(":", 1)[1].split(";")[0] if ":" in uri else uri
    if address and manager.has_account(address):
        account = manager.get_account(address)
        if account.enabled:
            return account
    return manager.default_account or BonjourAccount()


def _for_account(account: Any, request_uri: str) -> bool:
    """Whether a request URI names account (its contact user or its id's user, as for sessions); the P2P account
    takes any user."""
    if not hasattr(account, "sip"):
        return True
    try:
        user = SIPURI.parse(request_uri).user
    except ValueError:
        return False
    return user is not None and user in (account.contact.username, account.id.username)


def got_request(account: Any, data: bytes, composing: bool) -> None:
    """Loop thread (an account's or a session's PagerRequest event): post SIPEngineGotMessage or
    SIPEngineGotComposingIndication."""
    from sipcli.pjsua import Engine

    try:
        request = parse_request(data)
    except ValueError as error:
        log.warning("unparsable MESSAGE request dropped: %r", str(error))
        return
    addressed = account if _for_account(account, request.request_uri) else None
    center = NotificationCenter()
    if composing or (request.content_type or "").split(";")[0].strip().lower() == COMPOSING_TYPE:
        try:
            indication = parse_iscomposing(request.body)
        except ValueError as error:
            log.warning("bad isComposing document from %r: %r", request.sender_uri, str(error))
        else:
            center.post_notification("SIPEngineGotComposingIndication", sender=Engine(), data=NotificationData(
                request_uri=request.request_uri, from_header=request.from_header, to_header=request.to_header,
                state=indication.state, content_type=indication.content_type, refresh=indication.refresh,
                last_active=indication.last_active, account=addressed))
            return
    center.post_notification("SIPEngineGotMessage", sender=Engine(), data=NotificationData(
        request_uri=request.request_uri, from_header=request.from_header, to_header=request.to_header,
        headers=request.headers, body=request.body, content_type=request.content_type, account=addressed,
        truncated=request.truncated))
