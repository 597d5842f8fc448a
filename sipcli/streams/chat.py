"""The chat stream of a session: an MSRP (RFC 4975) ``m=message`` line riding next to pjsua's audio.

pjsua only knows audio, so a session with chat is made with two audio slots and every SDP pjsua produces for
it passes through ``ChatStream.rewrite_sdp`` (pjsua thread, plain data only), which puts our ``m=message``
section in slot 1 (a disabled ``m=message 0`` line once chat is removed: m-lines are never deleted). A chat-only
session keeps its audio line with a real port and ``a=inactive``: pjsua refuses offers without an active audio
line (488) and gives up a call whose answer has no audio stream.

Local MSRP URIs come from ``sipcli.chat.ChatSupport`` (dispatchers, spare relay grants). pjsua2 prints SDPs into
a fixed buffer (1 KB in the PyPI wheel, 16 KB in sipcli's engine build: Capabilities.sdp_buffer): a session whose
SDP is larger cannot be rewritten, so a session with chat offers only as many codecs as fit
(``sipcli.pjsua.media.fit_codecs``); a session being set up fails when its SDP still overflows. With sipcli's
engine build, another client's chat-only offer (its m=message line first, no audio) is accepted: its chat stays
at slot 0.

Connection direction: we offer ``a=setup:actpass`` and are ready both to connect and to be connected to; the
answer's ``a=setup`` decides (``sipcli.msrp.sdp.connection_role``); behind a relay we are always connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sipcli.chat import ChatError, ChatSupport, EventSink, RelayGrant, relay_uri
from sipcli.cpim import CPIM_TYPE, CPIMError, decode_cpim, encode_cpim, format_address, use_cpim
from sipcli.msrp.aio import MSRPTransport, open_transport
from sipcli.msrp.connection import (
    ConnectionClosed,
    MessageDelivered,
    MessageNotDelivered,
    MessageReceived,
    MSRPConnection,
)
from sipcli.msrp.sdp import OFFER_SETUP, MessageMedia, answer_setup, connection_role
from sipcli.msrp.uri import MSRPURI
from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua import Engine
from sipcli.sessiondescription import SessionDescription, chat_slot, offered_chat, splice_chat
from sipcli.streams import SessionNotification, StreamEvent, StreamFailed, StreamsChanged

__all__ = ["ACCEPT_TYPES", "DECLINED", "ChatMessage", "ChatStream"]

log = logging.getLogger(__name__)

ACCEPT_TYPES = ["message/cpim", "text/plain", "text/html", "application/im-iscomposing+xml"]
WRAPPED_TYPES = ["text/plain", "text/html"]
CONNECT_TIMEOUT = 30.0
CLOSE_GRACE = 2.0  # seconds between the MSRP connection closing and calling it lost (a loaded peer is slow)
_OTR_QUERY = "?OTR"
DECLINED = "the remote party declined the chat stream"  # MediaStreamDidFail reason: the answer disabled chat


@dataclass
class ChatMessage:
    """A message sent on a chat stream, as reported with its delivery."""

    message_id: str
    content: str | bytes
    content_type: str
    cpim: bool
    timestamp: datetime
    recipient: str | None = None

    def __json__(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "content_type": self.content_type, "cpim": self.cpim,
                "timestamp": self.timestamp, "recipient": self.recipient,
                "size": len(self.content.encode() if isinstance(self.content, str) else self.content)}


class ChatStream:
    """The MSRP chat of one session (kind "chat"); see the module docstring."""

    kind = "chat"

    def __init__(self, session: Any, use_tls: bool = False, cpim: bool | None = None) -> None:
        self.session = session  # read only: its state, URIs, audio; it is told things through on_event
        self.on_event: Callable[[StreamEvent], None] | None = None
        self.notification_id = f"{session.notification_id}/chat"
        self.use_tls = use_tls
        self.cpim = cpim  # None: wrap when the peer accepts message/cpim
        self.enabled = True  # pjsua thread reads: offer/answer a chat line (else the disabled line)
        self.audio_inactive = False  # pjsua thread reads: mark the audio line a=inactive (chat-only)
        self.chat_only_offer: MessageMedia | None = None  # pjsua thread: another client's offer without audio
        self.local_path: list[MSRPURI] | None = None  # pjsua thread reads: our a=path
        self.relay: RelayGrant | None = None
        self.remote: MessageMedia | None = None
        self.we_offered: bool | None = None  # an offer of ours awaits its answer
        self.offerer = True  # who offered the current chat line
        self.setup: str | None = None  # the answer's a=setup
        self.negotiated = False
        self.transport: MSRPTransport | None = None
        self.messages: dict[str, ChatMessage] = {}
        self.failure: str | None = None
        self.offer_setup = OFFER_SETUP
        self.decline_on_start = False  # accepted without chat: removed once the session started
        self._task: asyncio.Task | None = None
        self._closing = False
        center = NotificationCenter()
        center.add_observer(self, name="SIPSessionDidStart", sender=session)
        center.add_observer(self, name="SIPSessionDidEnd", sender=session)

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "SIPSessionDidEnd":
            NotificationCenter().purge_observer(self)
            self.close()
        elif self.decline_on_start and self.session.audio is not None:
            self.decline_on_start = False
            self.session.remove_chat()
        else:
            self.start()

    def __repr__(self) -> str:
        return f"<ChatStream {self.notification_id} negotiated={self.negotiated} connected={self.connected}>"

    @property
    def started(self) -> bool:
        """Negotiated in the current SDP (the MSRP connection may still be on its way)."""
        return self.negotiated

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.transport.connection.closed

    # -- set up (loop thread) --------------------------------------------------------------------------------

    async def prepare(self, account: Any) -> None:
        """Before our offer: a local URI on our dispatcher, or a grant from the account's relay."""
        support = ChatSupport()
        if not support.running:
            await support.start()
        relay = getattr(getattr(account, "msrp", None), "relay", None)
        if relay:
            self.relay = await support.relay_grant(account, relay_uri(relay))
            self.local_path = list(self.relay.transport.connection.local_path)
        elif self.use_tls and "tls" not in support.dispatchers:
            # No certificate to listen with: offer a=setup:active (we connect; RFC 4975 port 9 "discard" URI).
            self.local_path = [MSRPURI.new(support.dispatchers["tcp"].host, 9, True)]
            self.offer_setup = "active"
        else:
            self.local_path = [support.local_uri(self.use_tls)]
        self.enabled = True

    def pj_prepare_answer(self, account: Any, offer: MessageMedia) -> bool:
        """pjsua thread, for an incoming offer: our path (a spare relay grant, else our dispatcher)."""
        support = ChatSupport()
        if not support.running:
            return False
        self.use_tls = offer.use_tls
        self.chat_only_offer = None
        spare = support.take_spare(account) if getattr(getattr(account, "msrp", None), "relay", None) else None
        try:
            if spare is not None:
                self.relay = spare
                self.local_path = list(spare.transport.connection.local_path)
            else:
                self.local_path = [support.local_uri(self.use_tls)]
        except ChatError as error:
            log.warning("%s: %s", self.notification_id, error)
            return False
        return True

    # -- SDP (pjsua thread) ----------------------------------------------------------------------------------

    def _section(self, setup: str | None, host: str) -> str:
        assert self.local_path is not None
        media = MessageMedia(list(self.local_path), list(ACCEPT_TYPES), list(WRAPPED_TYPES), setup)
        m_line, *rest = media.to_sdp().rstrip("\r\n").split("\r\n")
        return "\r\n".join([m_line, f"c=IN {'IP6' if ':' in host else 'IP4'} {host}", *rest])

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        """Put our chat section (or the disabled line) into slot 1 of every SDP pjsua makes for the session."""
        if not local:
            Engine().post(self._overflowed)
            return local
        description = SessionDescription.parse(local)
        slot = chat_slot(local)
        if len(description.media) <= slot:
            return local  # an answer to an offer without a chat slot
        if self.audio_inactive and slot:
            description.media[0] = description.media[0].with_direction("inactive")
        host = next((line.split()[-1] for m in description.media for line in m.lines if line.startswith("c=")),
                    "0.0.0.0")
        chat = None
        if remote is None:
            if self.enabled and self.local_path:
                chat = self._section(self.offer_setup, host)
                Engine().post(self._offered)
        else:
            offer = offered_chat(remote)
            if offer is not None and self.enabled and self.local_path:
                setup = answer_setup(offer.setup)
                chat = self._section(setup, host)
                Engine().post(self._answered, offer, setup)
            else:
                Engine().post(self.removed)
        return splice_chat(str(description), chat, slot)

    def pj_chat_only_answer(self) -> str:
        """pjsua thread: the whole answer to another client's chat-only offer. pjsua wrote its own before the Call
        existed (onCallSdpCreated never rewrites it), so Call.answer is given this one (engine patch 0002)."""
        offer = self.chat_only_offer
        assert offer is not None and self.local_path is not None
        host = self.local_path[0].host
        setup = answer_setup(offer.setup)
        Engine().post(self._answered, offer, setup)
        version = int(datetime.now(UTC).timestamp())
        origin = f"o=- {version} {version} IN {'IP6' if ':' in host else 'IP4'} {host}"
        return "\r\n".join(["v=0", origin, "s=-", "t=0 0", self._section(setup, host)]) + "\r\n"

    # -- negotiation results (loop thread) ---------------------------------------------------------------------

    def _offered(self) -> None:
        self.we_offered = True

    def _answered(self, offer: MessageMedia, setup: str) -> None:
        self.we_offered = None
        self._negotiated(offer, setup, offerer=False)

    def answer_received(self, sdp: str) -> bool:
        """The answer to our offer arrived (a 2xx body): whether it accepted the chat line."""
        if not self.we_offered:
            return self.negotiated
        self.we_offered = None
        answer = offered_chat(sdp)
        if answer is None or not self.enabled:
            if answer is None and self.enabled and self.session.state == "CALLING":
                self._fail(DECLINED)  # the session's own chat declined (port 0): nothing will connect
            self.removed()
            return False
        self._negotiated(answer, answer.setup, offerer=True)
        return True

    def _negotiated(self, remote: MessageMedia, setup: str | None, offerer: bool) -> None:
        if self.negotiated and self.remote is not None and self.remote.path == remote.path:
            return  # a re-offer (hold, refresh) that keeps the chat as it is
        self.remote, self.setup, self.offerer, self.negotiated = remote, setup, offerer, True
        # Not before the session announces the stream (DidStart, or GotStreamUpdate for an accepted proposal): what
        # the peer sends at once would come before it, while send_message() is not allowed yet. The dispatcher
        # holds an early incoming connection meanwhile.
        if self.session.state not in ("INCOMING", "ACCEPTING", "CALLING", "PROPOSED"):
            self.start()

    def removed(self) -> None:
        """The chat line was disabled (port 0) by either side's re-INVITE, or the answer declined it."""
        was = self.negotiated
        self.negotiated = False
        self.we_offered = None
        if was:
            self.close()
            # Either side: the audio media update of the same re-INVITE may have been handled before this (a local
            # removal ends here only once the re-INVITE is sent), and it saw the chat still active.
            self._emit(StreamsChanged())

    def _overflowed(self) -> None:
        reason = "the session's SDP exceeds pjsua2's SDP buffer: the chat line could not be added"
        self._fail(reason)
        self._emit(StreamFailed(reason))

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            self._post("MediaStreamDidFail", reason=reason)

    # -- the MSRP connection (loop thread) ----------------------------------------------------------------

    def start(self) -> None:
        """Connect (or wait for the peer) once both SDPs are known; MediaStreamDidStart or DidFail follows."""
        if self._task is None and self.negotiated and self.transport is None:
            self._task = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        assert self.remote is not None and self.local_path is not None
        # What arrives with the connection (the peer's first messages) is reported after MediaStreamDidStart,
        # when the stream can already answer it (send_message needs self.transport).
        sink = EventSink()
        try:
            if self.relay is not None:
                transport = self.relay.transport
                sink = self.relay.sink  # what the peer sent through the relay so far waits there too
                transport.connection.remote_path = self.remote.path
                transport.send_message(b"")  # binds the far side when its relay connected to it
            else:
                connection = MSRPConnection(list(self.local_path), self.remote.path)
                connection.accept_types = list(ACCEPT_TYPES)
                if connection_role(self.offerer, self.setup) == "active":
                    transport = await open_transport(connection, self.remote.path[0],
                                                     ssl_context=ChatSupport().client_context,
                                                     on_event=sink, timeout=CONNECT_TIMEOUT)
                else:
                    dispatcher = ChatSupport().dispatchers["tls" if self.local_path[-1].use_tls else "tcp"]
                    transport = await dispatcher.expect(connection, sink, CONNECT_TIMEOUT)
            transport.connection.accept_types = list(ACCEPT_TYPES)
        except (OSError, TimeoutError, ssl.SSLError, KeyError) as error:
            self._task = None
            self._fail(f"MSRP connection failed: {error or type(error).__name__}")
            if not self.session.has_audio and self.session.state == "ESTABLISHED":
                self.session.end()
            return
        self.transport = transport
        self._task = None
        peer = transport.peer
        self._post("MediaStreamDidStart", local_path=[str(u) for u in self.local_path],
                   remote_path=[str(u) for u in self.remote.path], peer=f"{peer[0]}:{peer[1]}" if peer else None)
        sink.attach(self._on_event)

    def close(self) -> None:
        """Close the MSRP connection in the background (the chat line was removed, or the session ended)."""
        with contextlib.suppress(RuntimeError):  # no running loop: nothing was ever connected
            asyncio.get_running_loop().create_task(self.aclose())

    async def aclose(self) -> None:
        """Close the MSRP connection and wait until it is gone."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        transport, self.transport = self.transport, None
        if self.relay is not None and transport is None:
            transport = self.relay.transport
        self.relay = None
        if transport is not None:
            await transport.close()
            self._post("MediaStreamDidEnd")
        self._closing = False

    # -- messages ------------------------------------------------------------------------------------------------

    def send_message(self, content: str | bytes, content_type: str = "text/plain", to_uri: Any = None,
                     dt: datetime | None = None) -> str:
        """Send content (CPIM-wrapped when the peer takes message/cpim); returns the Message-ID."""
        if self.transport is None or self.remote is None:
            raise ChatError("the chat stream is not connected")
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        wrap = self.cpim
        if wrap is None:
            try:
                wrap = use_cpim(content_type, self.remote.accept_types, self.remote.accept_wrapped_types)
            except CPIMError as error:
                raise ChatError(str(error)) from None
        timestamp = dt or datetime.now(UTC)
        recipient = str(to_uri or self.session.remote_uri or "") or None
        if wrap:
            sender = self.session.local_uri
            body = encode_cpim(body, content_type, format_address(str(sender)) if sender else None,
                               [format_address(recipient)] if recipient else [], timestamp=timestamp)
        try:  # closed by the peer, and kept until the removal or the loss is known (_on_event)
            message_id = self.transport.send_message(body, CPIM_TYPE if wrap else content_type)
        except ConnectionError as error:
            raise ChatError(f"the chat stream is not connected: {error}") from None
        self.messages[message_id] = ChatMessage(message_id, content, content_type, wrap, timestamp, recipient)
        return message_id

    def _on_event(self, event: Any) -> None:
        if isinstance(event, MessageReceived):
            self._received(event)
        elif isinstance(event, MessageDelivered | MessageNotDelivered):
            message = self.messages.pop(event.message_id, None)
            if message is None:
                return  # the empty SEND that binds a connection
            name = "SIPSessionDidDeliverMessage" if isinstance(event, MessageDelivered) else \
                "SIPSessionDidNotDeliverMessage"
            # message: the MSRP REPORT or response that settled it (the reference's MSRPData), None when none came
            self._emit(SessionNotification(name, {"message_id": event.message_id, "code": event.code,
                                                  "reason": event.comment, "message": event.frame}))
        elif isinstance(event, ConnectionClosed) and self.transport is not None and not self._closing and \
                self.enabled:  # not enabled: we are removing the chat line, the peer may close first
            # A peer that hangs up closes MSRP at once while its BYE still travels through the proxies, and one that
            # removes the chat closes it once its re-INVITE is sent, which may arrive later: only a stream still
            # negotiated a moment later lost its connection (else both sides send crossing BYEs). The transport is
            # kept until then: a removal or the session's end meanwhile still closes it with MediaStreamDidEnd.
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self._connection_lost, self.transport, event.reason)

    def _connection_lost(self, transport: MSRPTransport, reason: str | None) -> None:
        if self.session.state in ("TERMINATING", "TERMINATED") or self.transport is not transport or self._closing \
                or not self.enabled or not self.negotiated:
            return
        self.transport = None
        self._fail(f"MSRP connection closed: {reason}")
        if not self.session.has_audio and self.session.state == "ESTABLISHED":
            self.session.end()

    def _received(self, event: MessageReceived) -> None:
        if not event.body:
            return
        content_type = (event.content_type or "text/plain").split(";")[0].strip().lower()
        body = bytes(event.body)
        headers: dict[str, Any] = {}
        if content_type == CPIM_TYPE:
            try:
                cpim = decode_cpim(body)
            except CPIMError as error:
                log.info("%s: undecodable CPIM (%s); passed on as it is", self.notification_id, error)
            else:
                headers = {name: values[0] if len(values) == 1 else values for name, values in cpim.headers.items()}
                content_type, text = cpim.content_type, cpim.text()
                self._got(text, content_type, headers, event)
                return
        try:
            content: str | bytes = body.decode("utf-8")
        except UnicodeDecodeError:
            content = body
        self._got(content, content_type, headers, event)

    def _got(self, content: str | bytes, content_type: str, headers: dict[str, Any], event: MessageReceived) -> None:
        if isinstance(content, str) and content.startswith(_OTR_QUERY):
            return  # an OTR query (the reference client's first message): never answered, the chat stays plain
        self._emit(SessionNotification("SIPSessionGotMessage", {
            "content": content, "content_type": content_type, "cpim_headers": headers, "message": event.frame}))

    def _emit(self, event: StreamEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))
