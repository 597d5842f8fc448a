"""Sessions: the reference's ``Session`` and ``SessionManager`` on top of pjsua calls (audio; chat plugs in).

Threading: Session objects live on the asyncio loop thread and post every notification from it. Their pjsua
side is a ``sipcli.pjsua.call.CallDriver``: the Session sends it commands (``MakeCall``, ``Hold``...) and gets
its events (``CallStateChanged``, ``MediaChanged``...) back on the loop thread. The driver keeps every pj.Call
referenced and drops them before the engine stops.

Streams: a Session holds ``streams`` ({"audio": AudioStream, later "chat": ...}). Every SDP pjsua produces for
the session (offers, answers, re-offers for hold) passes through each stream's ``rewrite_sdp(local, remote)``
hook (``_DriverHooks``); that runs on the pjsua thread and must only use plain data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipcli.digest import foreign_realm_reason
from sipcli.filenames import path_in, safe_token
from sipcli.liveness import DEFAULT_TIMEOUT, PeerLost, PeerMonitor, Probe
from sipcli.message import got_request
from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua import Engine, EngineError
from sipcli.pjsua.call import (
    Answer,
    AnswerProposal,
    CallCommand,
    CallDriver,
    ConnectMedia,
    Hangup,
    Hold,
    KeepAlive,
    MakeCall,
    ReadStatistics,
    Reinvite,
    SendDTMF,
    StartRecording,
    StopRecording,
    Unhold,
)
from sipcli.pjsua.events import (
    AudioStatistics,
    CallEvent,
    CallStateChanged,
    DTMFReceived,
    IncomingCall,
    InfoResponse,
    InviteResponse,
    KeepAliveResult,
    MediaChanged,
    MediaFailed,
    PagerRequest,
    ProposalDeclined,
    RejectedCall,
    RemoteProposal,
)
from sipcli.pjsua.media import SDP_BUFFER_SIZE, SRTP_SUITES, MediaSettings, SDPTooLarge, fit_codecs, set_codecs
from sipcli.sessiondescription import (
    SessionDescription,
    audio_active,
    chat_slot,
    media_refusal,
    offered_chat,
    refusal_reason,
    without_needless_lines,
)
from sipcli.sessionstate import ALLOWED, STATES, next_state
from sipcli.singleton import Singleton
from sipcli.sipmessage import display_name_of, header, message_body
from sipcli.streams import MediaStream, SessionNotification, StreamEvent, StreamFailed, StreamsChanged
from sipcli.streams.audio import AudioStream
from sipcli.uri import SIPURI, Route

# sipcli.streams.chat (and with it most of sipcli.msrp) is imported where a chat stream is made, not here: an
# audio-only call or listen then never loads MSRP.
if TYPE_CHECKING:
    from sipcli.streams.chat import ChatStream

__all__ = [
    "STATES",
    "IllegalStateError",
    "Session",
    "SessionError",
    "SessionManager",
    "check_transition",
]

log = logging.getLogger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCD")
NO_AUDIO_TIMEOUT = 5.0
STATS_INTERVAL = 1.0
HANGUP_TIMEOUT = 2.0
PROPOSAL_TIMEOUT = 30.0  # a remote proposal not accepted or rejected by then is rejected
MAX_REPORTED_OFFER = 4096  # characters of a refused offer's SDP put into its report
# An answered INVITE whose ACK has not come by then is ended (without a BYE: Hangup.abandon), freeing its call
# slot. RFC 3261 (13.3.1.4) lets the UAS end it after 64*T1 = 32 s; the 2xx retransmissions at 0.5, 1, 2 and 4 s
# give a lossy path four chances well within 10 s, and four INVITEs never ACKed would hold all of pjsua's slots.
ACK_TIMEOUT = 10.0
_REQUEST_LINE = re.compile(r"^\w+\s+(\S+)\s+SIP/2\.0", re.IGNORECASE)


class SessionError(Exception):
    """A session operation could not be done (e.g. no audio stream to send DTMF on)."""


class IllegalStateError(SessionError):
    """A Session method was called in a state that does not allow it."""


def check_transition(method: str, state: str) -> None:
    """Raise IllegalStateError unless method may be called in state."""
    if state not in ALLOWED[method]:
        allowed = " or ".join(sorted(ALLOWED[method]))
        raise IllegalStateError(f"Session.{method}() is not allowed in state {state} (only in {allowed})")


def _uri_of(value: str | None) -> SIPURI | None:
    """A SIPURI from a name-addr or addr-spec ('"Bob" <sip:bob@host>;tag=x'), or None."""
    if not value:
        return None
    text = value[value.index("<") + 1:value.index(">")] if "<" in value else value.split(";", 1)[0]
    try:
        return SIPURI.parse(text)
    except ValueError:
        return None


class Session:
    """One SIP session, incoming or outgoing; see the reference document for the API."""

    _ids = itertools.count(1)
    # What makes the pjsua side of a call: (hooks, on_event) -> driver. Tests put a fake driver here.
    driver_factory: Any = CallDriver

    def __init__(self, account: Any) -> None:
        self.account = account
        self.notification_id = f"session/{next(self._ids)}"
        self.state = "NULL"
        self.direction: str | None = None
        self.start_time: datetime | None = None
        self.stop_time: datetime | None = None
        self.on_hold_by_local = False
        self.on_hold_by_remote = False
        self.remote_user_agent: str | None = None
        self.local_uri: SIPURI | None = None
        self.remote_uri: SIPURI | None = None
        self.route: Route | None = None
        self.streams: dict[str, Any] = {}
        self.proposed_streams: list[str] = []
        self.dtmf_method = "rfc2833"
        self.proposal_timeout = PROPOSAL_TIMEOUT
        self.ack_timeout = ACK_TIMEOUT
        # Seconds without RTP (or between keep-alives when none is expected) before the peer counts as lost; 0: never
        self.rtp_timeout = _rtp_timeout()
        self._monitor: PeerMonitor | None = None
        self._peer_gone = False  # lost (sipcli.liveness) or never ACKed: its BYE is not waited for
        self._remote_proposal_streams: list[str] = []  # what the pending remote proposal adds
        self._local_proposal_streams: list[str] = []  # what our pending proposal adds
        self._proposal_timer: asyncio.TimerHandle | None = None
        self._streams_posted: list[str] = []  # as last announced (DidStart, GotStreamUpdate)
        self._proposal_answer: asyncio.Future | None = None
        self._driver: CallDriver | None = None  # the pjsua side of the call, driven with commands
        self._ended = asyncio.Event()
        self._end_requested = False
        self._failure_reported = False
        self._local_refusal: str | None = None  # why we refuse an incoming offer ourselves (set before announcing)
        self._will_start_posted = False
        self._timers: list[asyncio.TimerHandle] = []
        # DTMF INFO requests awaiting a response, in the order sent: the digit and its SendDTMF command's future
        self._info_digits: collections.deque[tuple[str, asyncio.Future]] = collections.deque()
        self._stats_task: asyncio.Task | None = None
        self._offer_codecs: tuple[str, ...] | None = None  # what our offers list when not every codec fits
        self._routes: list[Route] = []  # connect()'s routes; self.route is the one being tried
        self._monitor_task: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<Session {self.notification_id} {self.direction} {self.state}>"

    # -- attributes ------------------------------------------------------------------------------------------------

    @property
    def on_hold(self) -> bool:
        return self.on_hold_by_local or self.on_hold_by_remote

    @property
    def caller_uri(self) -> SIPURI | None:
        return self.local_uri if self.direction == "outgoing" else self.remote_uri

    @property
    def callee_uri(self) -> SIPURI | None:
        return self.remote_uri if self.direction == "outgoing" else self.local_uri

    @property
    def audio(self) -> AudioStream | None:
        return self.streams.get("audio")

    @property
    def has_audio(self) -> bool:
        return self.audio is not None and self.audio.started

    @property
    def audio_transport(self) -> AudioStream | None:
        return self.audio

    @property
    def chat(self) -> ChatStream | None:
        return self.streams.get("chat")

    @property
    def has_chat(self) -> bool:
        return self.chat is not None and self.chat.connected

    @property
    def chat_transport(self) -> Any:
        """The MSRPTransport of the chat stream, when connected."""
        chat = self.chat
        return chat.transport if chat is not None and chat.connected else None

    def _audio_attribute(self, name: str) -> Any:
        return getattr(self.audio, name) if self.audio is not None else None

    audio_codec = property(lambda self: self._audio_attribute("codec"))
    audio_sample_rate = property(lambda self: self._audio_attribute("sample_rate"))
    audio_srtp_active = property(lambda self: bool(self._audio_attribute("srtp_active")))
    audio_local_rtp_address = property(lambda self: self._audio_attribute("local_rtp_address"))
    audio_local_rtp_port = property(lambda self: self._audio_attribute("local_rtp_port"))
    audio_remote_rtp_address_sdp = property(lambda self: self._audio_attribute("remote_rtp_address_sdp"))
    audio_remote_rtp_port_sdp = property(lambda self: self._audio_attribute("remote_rtp_port_sdp"))
    audio_remote_rtp_address_received = property(lambda self: self._audio_attribute("remote_rtp_address_received"))
    audio_remote_rtp_port_received = property(lambda self: self._audio_attribute("remote_rtp_port_received"))
    audio_was_received = property(lambda self: bool(self._audio_attribute("was_received")))
    audio_recording_file_name = property(lambda self: self._audio_attribute("recording_file_name"))

    def __json__(self) -> str:
        return self.notification_id

    # -- methods ---------------------------------------------------------------------------------------------------

    def connect(self, callee_uri: SIPURI | str, routes: Iterable[Route] = (), audio: bool = True,
                chat: bool = False) -> asyncio.Future:
        """Call callee_uri (state CALLING); the result comes as notifications. routes: where to send the INVITE
        (e.g. the RFC 3263 results for the callee's domain), tried in order until one does not fail at the
        transport (no response: refused, unreachable, timed out); none: the account's own routing."""
        check_transition("connect", self.state)
        if not audio and not chat:
            raise SessionError("a session needs at least one stream")
        uri = SIPURI.parse(callee_uri) if isinstance(callee_uri, str) else callee_uri
        self._routes = list(routes)
        engine = Engine()
        capabilities = engine.capabilities
        if capabilities is not None and \
                any(":" in host for host in (uri.host, *(r.address for r in self._routes[:1]))):
            capabilities.require_ipv6(f"calling {uri}")
        first_hop = self._routes[0].transport if self._routes else _first_hop_transport(self.account, uri)
        if first_hop == "tls" and engine.is_running and "tls" not in engine.transports:
            raise SessionError(f"calling {uri} needs a TLS transport and the engine has none (setting "
                               "sip.transport_list)")
        self.route = self._routes[0] if self._routes else None
        self.direction = "outgoing"
        self.remote_uri = uri
        if audio:
            self._add_stream(self._new_audio())
        if chat:
            from sipcli.streams.chat import ChatStream  # only sessions with chat load MSRP

            self._add_stream(ChatStream(self, use_tls=_msrp_tls(self.account)))
            self.streams["chat"].audio_inactive = not audio  # chat-only: pjsua needs an audio line
        self._driver = self.driver_factory(_DriverHooks(self), self._driver_event)
        SessionManager()._add(self)
        self._post("SIPSessionNewOutgoing", streams=list(self.streams))
        self._transition("connect")
        if chat:
            return asyncio.ensure_future(self._connect_with_chat(str(uri)))
        return self._send(self._make_call(str(uri)))

    async def _connect_with_chat(self, uri: str) -> None:
        """Our MSRP path (dispatcher or relay grant) must be known before pjsua writes the offer, which offers only
        the codecs that leave room for the chat line in pjsua2's SDP buffer."""
        try:
            self._offer_codecs = self._codecs_with_chat()
        except SDPTooLarge as error:
            self._fail("local", 0, str(error))
            self._finish("local")
            return
        try:
            await self.streams["chat"].prepare(self.account)
        except Exception as error:
            self._fail("local", 0, f"MSRP: {error}")
            self._finish("local")
            return
        if self.state == "TERMINATING":  # ended meanwhile: no INVITE was sent
            self._finish("local")
        elif self.state == "CALLING":
            await self._send(self._make_call(uri))

    def _make_call(self, uri: str) -> MakeCall:
        return MakeCall(self.account, uri, str(self.route.uri) if self.route is not None else None,
                        "chat" in self.streams, self._offer_codecs)

    def _codecs_with_chat(self) -> tuple[str, ...] | None:
        """The codecs an offer with a chat line may list (the negotiated one first), None when all of them fit;
        SDPTooLarge when not even one does."""
        manager = SessionManager()
        configured = list(manager.codec_list)
        if self.audio_codec:
            current = next((name for name in configured if name.lower() == str(self.audio_codec).lower()), None)
            if current is not None:
                configured.remove(current)
                configured.insert(0, current)
        srtp = str(getattr(getattr(self.account, "rtp", None), "srtp_encryption", "disabled")) != "disabled"
        fitting = fit_codecs(configured, media_lines=2, crypto_lines=len(SRTP_SUITES) if srtp else 0,
                             limit=manager.sdp_buffer_size)
        return None if fitting == list(manager.codec_list) else tuple(fitting)

    def accept(self, audio: bool = True, chat: bool = False) -> asyncio.Future:
        """Answer an incoming session with 200 OK (state ACCEPTING, then ESTABLISHED on ACK)."""
        check_transition("accept", self.state)
        offered = ", ".join(self.proposed_streams) or "nothing"
        if (audio and "audio" not in self.proposed_streams) or (chat and "chat" not in self.proposed_streams):
            raise SessionError(f"only offered streams can be accepted (the offer has: {offered})")
        if not audio and not chat:
            raise SessionError("accept at least one stream")
        if chat and self.chat is None:
            raise SessionError("chat was offered but is not available (ChatSupport not started)")
        if self.chat is not None and not chat:
            self.chat.decline_on_start = True  # pjsua already answered it: removed by a re-INVITE after the ACK
        self._transition("accept")
        self._timers.append(asyncio.get_running_loop().call_later(self.ack_timeout, self._ack_timed_out))
        return self._send(Answer(200))

    def reject(self, is_busy: bool = False) -> asyncio.Future:
        """Refuse an incoming session: 486 Busy Here when is_busy, else 603 Decline."""
        check_transition("reject", self.state)
        self._end_requested = True
        self._post("SIPSessionWillEnd")
        self._transition("end")
        return self._send(Answer(486 if is_busy else 603))

    def end(self, is_busy: bool = False) -> asyncio.Future:
        """End the session at any stage: CANCEL while calling, 486/603 while incoming, else BYE."""
        if self.state in ("NULL", "TERMINATING", "TERMINATED"):
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            if self.state == "NULL":
                self._transition("end")
            return future
        check_transition("end", self.state)
        unanswered = self.state == "INCOMING"
        self._end_requested = True
        self._post("SIPSessionWillEnd")
        self._transition("end")
        if unanswered:
            return self._send(Answer(486 if is_busy else 603))
        return self._send(Hangup(cancel=self.direction == "outgoing" and self.start_time is None,
                                 abandon=self._peer_gone))

    def hold(self) -> asyncio.Future:
        """Put the session on hold (a re-INVITE with sendonly); GotHoldRequest(originator=local) follows."""
        check_transition("hold", self.state)
        self._require_audio()
        return self._send(Hold())

    def unhold(self) -> asyncio.Future:
        """Take the session out of hold; GotUnholdRequest(originator=local) follows."""
        check_transition("unhold", self.state)
        self._require_audio()
        return self._send(Unhold())

    def send_dtmf(self, digit: str) -> asyncio.Future:
        """Send one DTMF digit (0-9, *, #, A-D) as RFC 4733 events, or SIP INFO when dtmf_method is 'info'."""
        check_transition("send_dtmf", self.state)
        self._require_audio()
        if len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r} (0-9, *, #, A-D)")
        future = self._send(SendDTMF(digit.upper(), self.dtmf_method))
        if self.dtmf_method == "info":
            entry = (digit.upper(), future)
            self._info_digits.append(entry)
            future.add_done_callback(functools.partial(self._info_not_sent, entry))
        return future

    def _info_not_sent(self, entry: tuple[str, asyncio.Future], future: asyncio.Future) -> None:
        """An INFO that pjsua could not send gets no response: its digit leaves the queue of those awaiting one."""
        if (future.cancelled() or future.exception() is not None) and entry in self._info_digits:
            self._info_digits.remove(entry)

    def start_recording_audio(self, file_name: str | os.PathLike | None = None) -> asyncio.Future:
        """Record the received audio to a WAV file (mono 16-bit at the bridge rate); the whole call, holds too."""
        check_transition("start_recording_audio", self.state)
        audio = self._require_audio()
        if audio.recording_file_name is not None:
            raise SessionError(f"already recording to {audio.recording_file_name}")
        return asyncio.ensure_future(self._start_recording(file_name))

    def stop_recording_audio(self) -> asyncio.Future:
        check_transition("stop_recording_audio", self.state)
        if self.audio is None or self.audio.recording_file_name is None:
            raise SessionError("not recording")
        return asyncio.ensure_future(self._stop_recording())

    def send_message(self, content: str | bytes, content_type: str = "text/plain", to_uri: Any = None,
                     dt: datetime | None = None) -> str:
        """Send a chat message (CPIM-wrapped when the peer accepts it); returns its id, which the
        SIPSessionDidDeliverMessage / SIPSessionDidNotDeliverMessage notification carries."""
        check_transition("send_message", self.state)
        if self.chat is None:
            raise SessionError("the session has no chat stream")
        from sipcli.chat import ChatError  # loaded already: the session has a chat stream

        try:
            return self.chat.send_message(content, content_type, to_uri, dt)
        except ChatError as error:
            raise SessionError(str(error)) from None

    def add_chat(self) -> asyncio.Future:
        """Propose a chat stream (a re-INVITE; state PROPOSING until Accepted/RejectedStreamProposal)."""
        check_transition("add_chat", self.state)
        if self.chat is not None and self.chat.negotiated:
            raise SessionError("the session already has a chat stream")
        from sipcli.streams.chat import ChatStream  # only sessions with chat load MSRP

        chat = self.chat or ChatStream(self, use_tls=_msrp_tls(self.account))
        return asyncio.ensure_future(self._propose_chat(chat))

    async def _propose_chat(self, chat: ChatStream) -> None:
        self._transition("propose")
        self._local_proposal_streams = ["chat"]
        self._post("SIPSessionGotStreamProposal", proposer="local", streams=["chat"])
        try:
            codecs = self._codecs_with_chat()
            await chat.prepare(self.account)
            self._add_stream(chat)
            await self._send(Reinvite(chat_slot=True, codecs=codecs))
        except Exception as error:
            chat.enabled = False
            self._transition("proposal_done")
            self._post("SIPSessionRejectedStreamProposal", proposer="local", reason=str(error))

    def remove_chat(self) -> asyncio.Future:
        """Stop the chat stream (a re-INVITE with the chat line disabled)."""
        check_transition("remove_chat", self.state)
        chat = self.chat
        if chat is None or not chat.negotiated:
            raise SessionError("the session has no chat stream")
        if self.audio is None:
            raise SessionError("chat is the session's only stream: end() the session instead")
        chat.enabled = False
        future = self._send(Reinvite(chat_slot=True))
        # MSRP closes once the peer has the offer: closed earlier, the peer would see a failed connection
        future.add_done_callback(lambda _: chat.removed())
        return future

    def remove_audio(self) -> asyncio.Future:
        """Stop sending and receiving audio, keeping the chat (the audio line becomes a=inactive)."""
        check_transition("remove_audio", self.state)
        if self.audio is None:
            raise SessionError("the session has no audio stream")
        if self.chat is None or not self.chat.negotiated:
            raise SessionError("audio is the session's only stream: end() the session instead")
        self.chat.audio_inactive = True
        self.streams.pop("audio").close()
        future = self._send(Reinvite(chat_slot=True))
        self._stream_update(self._active_streams())
        return future

    def add_audio(self) -> asyncio.Future:
        """Propose audio in a session that has only chat (the inactive audio line becomes sendrecv; state
        PROPOSING until Accepted/RejectedStreamProposal)."""
        check_transition("add_audio", self.state)
        if self.audio is not None or self.chat is None:
            raise SessionError("the session already has audio")
        self.chat.audio_inactive = False
        self._add_stream(self._new_audio())
        self._transition("propose")
        self._local_proposal_streams = ["audio"]
        self._post("SIPSessionGotStreamProposal", proposer="local", streams=["audio"])
        return self._send(Reinvite(chat_slot=True, unhold=True))

    def accept_proposal(self, audio: bool = False, chat: bool = False) -> asyncio.Future:
        """Accept the remote proposal (SIPSessionGotStreamProposal, state PROPOSED): 200 OK with the streams
        asked for; SIPSessionAcceptedStreamProposal and SIPSessionGotStreamUpdate follow."""
        check_transition("accept_proposal", self.state)
        proposed = self._remote_proposal_streams
        if (audio and "audio" not in proposed) or (chat and "chat" not in proposed):
            raise SessionError(f"only proposed streams can be accepted (proposed: {', '.join(proposed)})")
        if not audio and not chat:
            raise SessionError("accept at least one proposed stream, or reject_proposal()")
        if chat:
            from sipcli.chat import ChatSupport  # only sessions with chat load MSRP
            from sipcli.streams.chat import ChatStream

            if not ChatSupport().running:
                raise SessionError("chat was proposed but is not available (ChatSupport not started)")
        self._cancel_proposal_timer()
        if audio:
            self._add_stream(self._new_audio())
        if chat and self.chat is None:
            self._add_stream(ChatStream(self))
        return asyncio.ensure_future(self._answer_proposal(audio, chat))

    def reject_proposal(self) -> asyncio.Future:
        """Refuse the remote proposal (state PROPOSED): a 200 OK that declines the proposed streams (see
        sipcli.pjsua.call.CallDriver for why not 488); SIPSessionRejectedStreamProposal follows."""
        check_transition("reject_proposal", self.state)
        self._cancel_proposal_timer()
        return asyncio.ensure_future(self._answer_proposal(False, False, "rejected by the application"))

    # Set before connect()/accept(): they act from the first audio frame.
    def play_audio(self, file_name: str | os.PathLike | None) -> None:
        """Play a WAV into the call (looped) from the moment audio starts; None stops."""
        if self.audio is None:
            raise SessionError("the session has no audio stream")
        self.audio.set_play(file_name)
        if self.has_audio:
            self._send(ConnectMedia())

    def echo_audio(self, enabled: bool = True) -> None:
        """Send the received audio back to the remote party."""
        if self.audio is None:
            raise SessionError("the session has no audio stream")
        self.audio.echo = enabled
        if self.has_audio:
            self._send(ConnectMedia())

    async def wait_ended(self) -> None:
        """Wait until SIPSessionDidEnd was posted."""
        await self._ended.wait()

    @property
    def audio_quality(self) -> dict[str, Any] | None:
        """The audio figures read so far and the estimated MOS (as in SIPSessionGotAudioStatistics), or None."""
        return self.audio.quality() if self.audio is not None else None

    async def report_audio_statistics(self) -> None:
        """Read the audio stream's figures now and post SIPSessionGotAudioStatistics (final: false)."""
        if self.state != "ESTABLISHED" or self.audio is None or not self.audio.started:
            return
        with contextlib.suppress(EngineError):
            await self._send(ReadStatistics())  # its AudioStatistics event is handled before this returns
        quality = self.audio_quality
        if quality is not None and self.state != "TERMINATED":
            self._post("SIPSessionGotAudioStatistics", final=False, **quality)

    # -- internals (loop thread) -----------------------------------------------------------------------------------

    def _require_audio(self) -> AudioStream:
        audio = self.audio
        if audio is None or not audio.started:
            raise SessionError("the session has no active audio stream")
        return audio

    def _active_streams(self) -> list[str]:
        return [name for name, stream in self.streams.items() if stream.started]

    def _stream_update(self, streams: list[str]) -> None:
        """SIPSessionGotStreamUpdate when the active streams changed (not for a hold or a refresh)."""
        if streams != self._streams_posted:
            self._streams_posted = list(streams)
            self._post("SIPSessionGotStreamUpdate", streams=list(streams))

    def _post(self, name: str, **data: Any) -> None:
        # The reference gives every session notification a ``timestamp`` data field.
        NotificationCenter().post_notification(name, sender=self,
                                               data=NotificationData(timestamp=datetime.now(UTC), **data))

    def _transition(self, trigger: str) -> bool:
        """Take the transition of trigger from the current state (sipcli.sessionstate); whether there was one."""
        state = next_state(self.state, trigger)
        if state is None:
            return False
        previous, self.state = self.state, state
        self._post("SIPSessionChangedState", prev_state=previous, state=state)
        return True

    def _send(self, command: CallCommand) -> asyncio.Future:
        """Send command to the call's driver (the pjsua thread); a failed call set-up fails the session."""
        assert self._driver is not None
        future = self._driver.send(command)
        future.add_done_callback(functools.partial(self._command_done, command))
        return future

    def _command_done(self, command: CallCommand, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is None:
            return
        error = future.exception()
        log.debug("%s %s failed: %r", self.notification_id, command, error)
        if isinstance(command, MakeCall) and self._next_route():
            return
        if isinstance(command, MakeCall | Answer) and self.state not in ("ESTABLISHED", "TERMINATED"):
            self._fail("local", 0, getattr(error, "reason", None) or str(error) or type(error).__name__)
            self._finish("local")

    def _fail(self, originator: str, code: int, reason: str) -> None:
        if self._failure_reported or self.state == "TERMINATED":
            return
        self._failure_reported = True
        self._post("SIPSessionDidFail", originator=originator, code=code, reason=reason)

    def _finish(self, originator: str) -> None:
        if self.state == "TERMINATED":
            return
        for timer in self._timers:
            timer.cancel()
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self._monitor_task is not None:
            self._monitor_task.cancel()
        if self.audio is not None and self.audio.recording_file_name is not None:
            file_name = self.audio.recording_file_name
            self._post("SIPSessionWillStopRecordingAudio", file_name=file_name)
            self.audio.recording_file_name = None
            self._post("SIPSessionDidStopRecordingAudio", file_name=file_name)
        self.stop_time = datetime.now(UTC)
        self._transition("finish")
        quality = self.audio.quality() if self.audio is not None else None
        if quality is not None:  # the call's final figures: read by the driver before pjsua destroyed the stream
            self._post("SIPSessionGotAudioStatistics", final=True, **quality)
        self._post("SIPSessionDidEnd", originator=originator)
        self._ended.set()
        SessionManager()._remove(self)

    async def _start_recording(self, file_name: str | os.PathLike | None) -> None:
        if file_name is None:
            from sipcli.configuration.settings import SIPSimpleSettings

            directory = Path(os.path.expanduser(str(SIPSimpleSettings().audio.recordings_directory)))
            directory.mkdir(parents=True, exist_ok=True)
            remote = safe_token(f"{self.remote_uri.user or 'unknown'}@{self.remote_uri.host}" if self.remote_uri
                                else None)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            file_name = path_in(directory, f"{stamp}-{remote}-{safe_token(self.notification_id)}.wav")
        path = str(Path(file_name).expanduser().resolve())
        self._post("SIPSessionWillStartRecordingAudio", file_name=path)
        await self._send(StartRecording(path))
        self._require_audio().recording_file_name = path
        self._post("SIPSessionDidStartRecordingAudio", file_name=path)

    async def _stop_recording(self) -> None:
        audio = self.audio
        assert audio is not None  # stop_recording_audio() checked
        file_name = audio.recording_file_name
        self._post("SIPSessionWillStopRecordingAudio", file_name=file_name)
        await self._send(StopRecording())
        audio.recording_file_name = None
        self._post("SIPSessionDidStopRecordingAudio", file_name=file_name)

    # what the pjsua thread reports

    def _driver_event(self, event: CallEvent) -> None:
        """Loop thread: an event of the call's driver."""
        if isinstance(event, CallStateChanged):
            self._call_state(event)
        elif isinstance(event, IncomingCall):
            self._incoming(event.message)
        elif isinstance(event, MediaChanged):
            self._media_update(event)
        elif isinstance(event, MediaFailed):
            self._media_failed(event.reason)
        elif isinstance(event, InviteResponse):
            self._invite_response(event.code, event.reason, event.body)
        elif isinstance(event, RemoteProposal):
            self._remote_proposal(event.streams)
        elif isinstance(event, ProposalDeclined):
            self._proposal_declined_at_once(event.streams)
        elif isinstance(event, InfoResponse):
            self._info_response(event.code, event.reason)
        elif isinstance(event, DTMFReceived):
            self._dtmf(event.digit, event.method)
        elif isinstance(event, AudioStatistics):
            self._audio_stats(event)
        elif isinstance(event, PagerRequest):  # a MESSAGE inside the call's dialog
            got_request(self.account, event.data, event.composing)
        elif isinstance(event, KeepAliveResult) and self._monitor is not None:
            self._monitor.probe_result(event.code, event.local, event.reason, time.monotonic())

    def _new_audio(self) -> AudioStream:
        return AudioStream(Engine().settings.clock_rate, f"{self.notification_id}/audio")

    def _add_stream(self, stream: MediaStream) -> None:
        stream.on_event = self._stream_event
        self.streams[stream.kind] = stream

    def _stream_event(self, event: StreamEvent) -> None:
        """Loop thread: what a stream tells its session."""
        if isinstance(event, SessionNotification):
            self._post(event.name, **event.data)
        elif isinstance(event, StreamsChanged) and self.state == "ESTABLISHED":
            self._stream_update(self._active_streams())
        elif isinstance(event, StreamFailed) and self.state in ("CALLING", "INCOMING", "ACCEPTING"):
            # the session would go on without a stream it was asked for: it fails instead
            self._fail("local", 0, event.reason)
            self.end()

    def _release(self) -> None:
        if self._driver is not None:
            self._driver.release()

    def _incoming(self, request: str) -> None:
        self.direction = "incoming"
        self.remote_user_agent = header(request, "User-Agent")
        self.remote_uri = _uri_of(header(request, "From", "f"))
        self.local_uri = _uri_of(header(request, "To", "t"))
        body = message_body(request)
        try:
            self.proposed_streams = SessionDescription.parse(body).streams() if body.strip() else ["audio"]
            if "audio" in self.proposed_streams and body.strip() and not audio_active(body):
                self.proposed_streams.remove("audio")  # sipcli's chat-only offers keep an inactive audio line
        except ValueError:
            self.proposed_streams = []
        if "audio" in self.proposed_streams:
            self._add_stream(self._new_audio())
        SessionManager()._add(self)
        self._transition("incoming")
        from_header, to_header = header(request, "From", "f"), header(request, "To", "t")
        call_id = "".join(c for c in (header(request, "Call-ID", "i") or "") if c.isprintable())[:256]
        user_agent = "".join(c for c in (self.remote_user_agent or "") if c.isprintable())[:256]
        self._post("SIPSessionNewIncoming", streams=list(self.proposed_streams), remote_uri=self.remote_uri,
                   remote_display_name=display_name_of(from_header), local_uri=self.local_uri,
                   local_display_name=display_name_of(to_header), call_id=call_id or None,
                   user_agent=user_agent or None)
        if self._local_refusal is not None:  # answered 488 already (SessionManager._incoming_call)
            self._end_requested = True
            self._transition("end")

    def _call_state(self, event: CallStateChanged) -> None:
        state, code, reason, local_uri = event.state, event.code, event.reason, event.local_uri
        remote_response, message = event.remote_response, event.message
        if self.state == "TERMINATED":
            return
        if self.direction is None:  # an INVITE refused at once (404/480): no Session was announced
            if state == "DISCONNECTED":
                self._release()
            return
        if local_uri and self.local_uri is None:
            self.local_uri = _uri_of(local_uri)
        if message and self.direction == "outgoing" and code // 100 == 2:
            self.remote_user_agent = header(message, "Server", "User-Agent") or self.remote_user_agent
            body = message_body(message)
            if self.chat is not None and remote_response and body.strip():
                # onCallTsxState brings the 200 OK's answer only after CONFIRMED: DidStart must list the chat
                chat_failure = None if self.chat.answer_received(body) else self.chat.failure
                if chat_failure is not None and self.state == "CALLING" and \
                        not (self.audio is not None and audio_active(body)):
                    # the answer declined our chat and left no active stream (linphonec): the session fails here,
                    # before the CONFIRMED state could start it, whenever the application hears of it
                    self._fail("local", 0, chat_failure)
                    self.end()
        if state == "EARLY" and self.direction == "outgoing" and code in (180, 183):
            self._post("SIPSessionGotRingIndication")
        elif state in ("CONNECTING", "CONFIRMED") and not self._will_start_posted and self.state != "TERMINATING":
            self._will_start_posted = True
            self._post("SIPSessionWillStart")
        if state == "CONFIRMED" and self.state in ("CALLING", "ACCEPTING", "TERMINATING"):
            if self.state != "TERMINATING":
                self.start_time = datetime.now(UTC)
                self._transition("confirmed")
                self._streams_posted = self._active_streams()
                self._post("SIPSessionDidStart", streams=list(self._streams_posted), **self._negotiated_audio())
                self._stats_task = asyncio.get_running_loop().create_task(self._watch_audio())
                self._monitor_task = asyncio.get_running_loop().create_task(self._watch_peer())
        elif state == "DISCONNECTED":
            if remote_response and code in (401, 407):  # unanswered: say so when it challenged another realm
                reason = foreign_realm_reason(message, self.account.credentials.realm) or reason
            self._disconnected(code, reason, remote_response)

    def _stream_failure(self) -> str | None:
        """Why one of the session's streams failed (MediaStreamDidFail), if one did."""
        return next((stream.failure for stream in self.streams.values() if stream.failure is not None), None)

    def _next_route(self) -> bool:
        """Our INVITE failed at the transport (nothing answered): send it along the next route, if there is one
        (RFC 3263 section 4.3); whether it was sent."""
        if self.direction != "outgoing" or self._end_requested or self.state != "CALLING" or self.route is None:
            return False
        index = self._routes.index(self.route) + 1
        if index >= len(self._routes):
            return False
        log.info("%s: %s failed at the transport, trying %s", self.notification_id, self.route, self._routes[index])
        self.route = self._routes[index]
        self._release()
        self._driver = self.driver_factory(_DriverHooks(self), self._driver_event)
        assert self.remote_uri is not None
        self._send(self._make_call(str(self.remote_uri)))
        return True

    def _disconnected(self, code: int, reason: str, remote_response: bool) -> None:
        if self.start_time is None and not remote_response and code in (408, 503) and self._next_route():
            return
        self._release()
        if self.start_time is None:
            if self._end_requested and self._local_refusal is None:
                originator = "local"
                failure = self._stream_failure() if code // 100 == 2 else None
                if failure is not None:
                    # answered, then ended by us because a stream failed (e.g. the answer declined the chat line):
                    # the 2xx is no failure reason; code 0 as for any failure of our own
                    self._fail("local", 0, failure)
                elif self.direction == "outgoing":
                    self._fail("local", code or 487, reason or "Session cancelled")
            elif self.direction == "incoming" and self._refused_locally(code):
                originator = "local"
                self._fail("local", code or 488, self._local_refusal or reason or "Unable to create media session")
            elif self.direction == "incoming":
                originator = "remote"  # the caller gave up (CANCEL)
                self._fail("remote", code or 487, reason or "Session cancelled")
            else:
                originator = "remote" if remote_response else "local"
                self._fail(originator, code, reason)
        else:
            originator = "local" if self._end_requested else "remote"
            if not self._end_requested:
                # no SIPSessionWillEnd: the reference sends it only before ending "at the request of the application"
                self._transition("remote_end")
        self._finish(originator)

    def _refused_locally(self, code: int) -> bool:
        """An incoming session that ended unanswered by our side: refused by us before it was announced, or our
        200 OK could not be sent (pjsua answers 488 itself when it cannot create the media). A caller's CANCEL
        ends it with 487."""
        return self._local_refusal is not None or (self.state == "ACCEPTING" and code != 487)

    def _negotiated_audio(self) -> dict[str, Any]:
        """What scripts look for in SIPSessionDidStart: the audio codec, its sample rate and whether SRTP is on
        (None when the session has no active audio)."""
        started = self.has_audio
        return {"audio_codec": self.audio_codec if started else None,
                "audio_sample_rate": self.audio_sample_rate if started else None,
                "audio_srtp_active": self.audio_srtp_active if started else None}

    def _remote_removed_audio(self) -> bool:
        """A remote offer that makes the audio a=inactive next to a negotiated chat removes the audio (how sipcli's
        remove_audio() and chat-only sessions say it: pjsua cannot take an audio line with port 0), it does not
        hold the session: the stream goes, SIPSessionGotStreamUpdate tells it. Without chat it is a hold."""
        chat = self.chat
        if chat is None or not chat.negotiated or self.on_hold_by_local or self.state != "ESTABLISHED":
            return False
        self.streams.pop("audio").close()
        chat.audio_inactive = True
        self.on_hold_by_remote = False
        self._stream_update(self._active_streams())
        return True

    def _media_update(self, event: MediaChanged) -> None:
        """Loop thread: the audio stream (re)started (audio: its parameters) or went away (None); event.inactive:
        the remote offer made it a=inactive."""
        stream = self.audio
        if stream is None:
            return
        if event.hold == "remote" and event.inactive and self._remote_removed_audio():
            return
        first = not stream.started
        hold = event.hold
        if event.audio is not None:
            stream.update(dataclasses.asdict(event.audio))
            stream.started = True
        local, remote = hold == "local", hold == "remote"
        if local != self.on_hold_by_local:
            self.on_hold_by_local = local
            self._post("SIPSessionGotHoldRequest" if local else "SIPSessionGotUnholdRequest", originator="local")
        if remote != self.on_hold_by_remote:
            self.on_hold_by_remote = remote
            self._post("SIPSessionGotHoldRequest" if remote else "SIPSessionGotUnholdRequest", originator="remote")
        if not first and self.state == "ESTABLISHED":
            self._stream_update(self._active_streams())

    def _media_failed(self, reason: str) -> None:
        """The audio line died with the SDP just negotiated (e.g. an unusable SRTP answer to a re-INVITE; pjsua
        keeps the call): MediaStreamDidFail, and a session left without an active stream fails and ends (BYE)."""
        audio = self.audio
        if audio is None or self.state == "TERMINATED":
            return
        audio.fail(reason)
        if self.state not in ("ESTABLISHED", "PROPOSING", "PROPOSED"):
            return  # a failed initial negotiation: pjsua ends the call itself
        if self._active_streams():
            self._stream_update(self._active_streams())  # chat goes on
            return
        self._fail("local", 0, reason)
        self.end()

    def _invite_response(self, code: int, reason: str, body: str) -> None:
        """A final response to one of our INVITEs (initial or re-INVITE): the answer for the chat stream, and
        the outcome of our proposal."""
        chat = self.chat
        if self.state == "TERMINATED":
            return
        chat_accepted = chat.answer_received(body) if chat is not None and code // 100 == 2 and body.strip() \
            else False
        if self.state != "PROPOSING":
            return
        self._transition("proposal_done")
        proposed, self._local_proposal_streams = self._local_proposal_streams, []
        if "audio" in proposed:
            accepted = code // 100 == 2 and audio_active(body)
            if not accepted:
                self.streams.pop("audio").close()
                if chat is not None:
                    chat.audio_inactive = True
        else:
            accepted = chat_accepted
            if not accepted and chat is not None:
                chat.enabled = False
        if accepted:
            self._post("SIPSessionAcceptedStreamProposal", proposer="local")
            self._stream_update(sorted({*self._active_streams(), *proposed}, key=list(self.streams).index))
        else:
            self._post("SIPSessionRejectedStreamProposal", proposer="local",
                       reason=f"{code} {reason}" if code >= 300 else f"the answer disabled {', '.join(proposed)}")

    def _remote_proposal(self, streams: list[str]) -> None:
        """A re-INVITE proposes streams: pjsua holds it until accept_proposal()/reject_proposal() or the timeout."""
        if self.state != "ESTABLISHED":  # e.g. our own proposal is pending
            self._proposal_answer = asyncio.ensure_future(
                self._answer_proposal(False, False, f"proposal received in state {self.state}"))
            return
        self._remote_proposal_streams = list(streams)
        self._transition("proposal")
        self._post("SIPSessionGotStreamProposal", proposer="remote", streams=list(streams))
        if self.state == "PROPOSED":  # an observer may have decided already
            self._proposal_timer = asyncio.get_running_loop().call_later(self.proposal_timeout,
                                                                        self._proposal_timed_out)
            self._timers.append(self._proposal_timer)

    def _proposal_declined_at_once(self, streams: list[str]) -> None:
        """A proposal in an offer pjsua answered itself (an UPDATE cannot be held for the application's
        decision): reported as proposed and rejected."""
        if self.state != "ESTABLISHED":
            return
        self._post("SIPSessionGotStreamProposal", proposer="remote", streams=list(streams))
        self._post("SIPSessionRejectedStreamProposal", proposer="remote",
                   reason="proposed in an offer the engine answers at once (UPDATE): declined")

    def _proposal_timed_out(self) -> None:
        if self.state == "PROPOSED":
            self._proposal_answer = asyncio.ensure_future(
                self._answer_proposal(False, False, f"no decision within {self.proposal_timeout:g} s"))

    def _cancel_proposal_timer(self) -> None:
        if self._proposal_timer is not None:
            self._proposal_timer.cancel()
            self._timers.remove(self._proposal_timer)
            self._proposal_timer = None

    async def _answer_proposal(self, audio: bool, chat: bool, reason: str = "") -> None:
        """Answer the pending remote proposal: 200 OK accepting the streams asked for, declining the others."""
        proposed, self._remote_proposal_streams = self._remote_proposal_streams, []
        try:
            await self._send(AnswerProposal(audio, chat))
        except Exception as error:
            log.info("%s: answering the proposal failed: %r", self.notification_id, error)
            if audio or chat:
                reason = f"could not set up {', '.join(proposed)}: {error}"
                audio = chat = False
                with contextlib.suppress(Exception):
                    await self._send(AnswerProposal(False, False))
            else:
                reason = str(error) or reason
        if not audio and "audio" in proposed:
            self.streams.pop("audio", None)
        if self.state == "PROPOSED":
            self._transition("proposal_done")
        if audio or chat:
            self._post("SIPSessionAcceptedStreamProposal", proposer="remote")
            accepted = [name for name, wanted in (("audio", audio), ("chat", chat)) if wanted]
            self._stream_update(sorted({*self._active_streams(), *accepted}, key=list(self.streams).index))
            if chat and self.chat is not None:
                self.chat.start()  # held back while PROPOSED (ChatStream._negotiated)
        elif self.state != "TERMINATED":
            self._post("SIPSessionRejectedStreamProposal", proposer="remote", reason=reason)

    def _info_response(self, code: int, reason: str) -> None:
        """The final response to one of our DTMF INFO requests (sent in order, one digit each): a refusal is
        SIPSessionDidNotSendDTMF (digit, code, reason)."""
        digit = self._info_digits.popleft()[0] if self._info_digits else None
        if code >= 300 and self.state != "TERMINATED":
            self._post("SIPSessionDidNotSendDTMF", digit=digit, code=code, reason=reason)

    def _dtmf(self, digit: str, method: str) -> None:
        if self.state != "TERMINATED":
            self._post("SIPSessionGotDTMF", digit=digit, method=method)

    def _audio_stats(self, statistics: AudioStatistics) -> None:
        stream = self.audio
        if stream is None:
            return
        stream.packets_received = max(stream.packets_received, statistics.packets)
        if statistics.figures is not None:
            stream.add_figures(statistics.figures, statistics.stream_ended)
        if self._monitor is not None:  # raw counts: they restart at 0 when pjsua recreates the stream
            self._monitor.packets(statistics.packets + statistics.rtcp_reports, time.monotonic())
        if statistics.address:
            stream.remote_rtp_address_received = statistics.address
            stream.remote_rtp_port_received = statistics.port

    async def _watch_audio(self) -> None:
        """Poll RTP statistics while established; GotNoAudio when nothing arrived 5 s after audio started."""
        started = time.monotonic()
        warned = False
        while self.state not in ("TERMINATING", "TERMINATED"):
            await asyncio.sleep(STATS_INTERVAL)
            with contextlib.suppress(EngineError):
                await self._send(ReadStatistics())  # the figures come as an AudioStatistics event first
            audio = self.audio
            if not warned and audio is not None and audio.started and not audio.was_received and \
                    time.monotonic() - started >= NO_AUDIO_TIMEOUT and not self.on_hold:
                warned = True
                self._post("SIPSessionGotNoAudio")


    async def _watch_peer(self) -> None:
        """While established: end the session when its peer is lost (sipcli.liveness)."""
        monitor = self._monitor = PeerMonitor(self.rtp_timeout, time.monotonic())
        while self.state not in ("TERMINATING", "TERMINATED"):
            await asyncio.sleep(STATS_INTERVAL)
            audio = self.audio
            now = time.monotonic()
            monitor.rtp_expected(audio is not None and audio.started and not self.on_hold, now)
            action = monitor.tick(now)
            if isinstance(action, Probe):
                try:
                    await self._send(KeepAlive())
                except EngineError as error:  # not even sent: as good as a transport failure
                    monitor.probe_result(503, True, getattr(error, "reason", "") or str(error), time.monotonic())
            elif isinstance(action, PeerLost):
                self._peer_lost(action.code, action.reason)
                return

    def _peer_lost(self, code: int, reason: str) -> None:
        if self.state not in ("ESTABLISHED", "PROPOSING", "PROPOSED"):
            return
        log.info("%s: %s", self.notification_id, reason)
        self._fail("local", code, reason)
        self._peer_gone = True
        self.end()

    def _ack_timed_out(self) -> None:
        if self.state == "ACCEPTING":
            self._fail("local", 408, f"no ACK within {self.ack_timeout:g} s")
            self._peer_gone = True
            self.end()


class _DriverHooks:
    """What the call driver asks the session synchronously on the pjsua thread (sipcli.pjsua.call.CallHooks):
    plain reads of the session's streams, and their SDP rewrite (each stream's ``rewrite_sdp`` hook)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        local = without_needless_lines(local)  # in every SDP, also a chat-only one's inactive audio line
        for stream in list(self.session.streams.values()):
            local = stream.rewrite_sdp(local, remote)
        return local

    def proposed_streams(self, offer: str) -> list[str]:
        session = self.session
        streams = []
        if "audio" not in session.streams and audio_active(offer):
            streams.append("audio")
        chat = session.chat
        if offered_chat(offer) is not None and (chat is None or not chat.negotiated):
            streams.append("chat")
        return streams

    def prepare_proposal_answer(self, offer: str, chat: bool) -> None:
        session = self.session
        stream = session.chat
        media = offered_chat(offer)
        if chat and stream is not None:
            chat = media is not None and stream.pj_prepare_answer(session.account, media)
            stream.enabled = chat
        elif stream is not None and not stream.negotiated:
            stream.enabled = False
        if stream is not None:
            stream.audio_inactive = "audio" not in session.streams

    def answer_sdp(self) -> str | None:
        chat = self.session.chat
        if chat is not None and chat.chat_only_offer is not None:
            return chat.pj_chat_only_answer()
        return None

    def media_output(self) -> tuple[str | None, bool]:
        stream = self.session.audio
        return (stream.play_file, stream.echo) if stream is not None else (None, False)


class SessionManager(metaclass=Singleton):
    """Tracks the sessions (a singleton) and turns incoming INVITEs into Sessions (SIPSessionNewIncoming)."""

    notification_id = "session_manager"

    def __init__(self) -> None:
        self._sessions: list[Session] = []
        self._started = False
        self.codecs: list[str] | None = None  # set before start(): overrides SIPSimpleSettings.audio.codec_list
        self.codec_list: list[str] = []  # the codecs in use since start(), in order of preference
        self.sdp_buffer_size = SDP_BUFFER_SIZE  # what the engine hands to Python of an SDP (sipcli.pjsua.media)
        self.rtp_timeout: float | None = None  # overrides setting rtp.timeout for new sessions

    def start(self) -> None:
        """Take incoming calls and apply the codec order (SIPSimpleSettings.audio.codec_list, or ``codecs``)."""
        if self._started:
            return
        self._started = True
        engine = Engine()
        engine.incoming_call_hook = self._incoming_call
        engine.rejected_call_hook = self._rejected_call
        engine.add_shutdown_hook(CallDriver.shutdown_all)
        engine.connection_lost_hook = self._connection_lost
        # Before the first pj.Account is made: activation only queued its creation on the engine.
        engine.media_settings = MediaSettings(_rtp_port_range())
        codecs = self.codecs
        capabilities = engine.capabilities
        if capabilities is not None:
            if codecs is not None:
                capabilities.require_codecs(codecs)
            # the buffer measured in the loaded engine: 16 KB in sipcli's build (chat then keeps every codec)
            self.sdp_buffer_size = max(self.sdp_buffer_size, capabilities.sdp_buffer)
        if codecs is None:
            from sipcli.configuration.settings import SIPSimpleSettings

            codecs = [str(codec) for codec in SIPSimpleSettings().audio.codec_list]
        self.codec_list = list(codecs)
        # capabilities.require_codecs refused codecs the engine lacks (one line, exit 2): set_codecs fails only
        # without capabilities, and every call then says so
        engine.run(set_codecs, list(codecs)).add_done_callback(_log_codec_failure)

    async def stop(self, timeout: float = HANGUP_TIMEOUT) -> None:
        """End every session (CANCEL, BYE or a refusal) and wait for them to end."""
        if not self._started:
            return
        self._started = False
        engine = Engine()
        if engine.incoming_call_hook == self._incoming_call:
            engine.incoming_call_hook = None
        if engine.rejected_call_hook == self._rejected_call:
            engine.rejected_call_hook = None
        sessions = self.sessions
        for session in sessions:
            with contextlib.suppress(SessionError, EngineError):
                session.end()
        if sessions:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s.wait_ended() for s in sessions)), timeout)

    @property
    def sessions(self) -> list[Session]:
        """A copy of the list of active sessions (neither NULL nor TERMINATED), as the reference says."""
        return [session for session in self._sessions if session.state not in ("NULL", "TERMINATED")]

    def _connection_lost(self) -> None:
        """Engine hook (loop thread): a SIP connection closed; every established session checks its peer."""
        for session in self.sessions:
            if session._monitor is not None:
                session._monitor.connection_lost()

    def _add(self, session: Session) -> None:
        if session not in self._sessions:
            self._sessions.append(session)

    def _remove(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
        for stream in session.streams.values():
            stream.close()

    def _incoming_call(self, account: Any, driver: CallDriver, message: str) -> int | tuple[int, str]:
        """Engine hook (pjsua thread) for each incoming INVITE: the Session takes the driver; returns the code to
        answer with (180, or a refusal that announces nothing: its DISCONNECTED releases the driver), or 488 and
        the reason for an offer this engine cannot take (sessiondescription.media_refusal): that Session is
        announced and reported as our failure, not as pjsua's 488 after our 200 (which read as the caller's)."""
        session = Session(account)
        offer = offered_chat(message_body(message))
        if offer is not None:  # pjsua writes the answer SDP while ringing: the chat stream must exist
            from sipcli.streams.chat import ChatStream  # only sessions with chat load MSRP

            chat = ChatStream(session)
            if chat.pj_prepare_answer(account, offer):
                session._add_stream(chat)
                if chat_slot(message_body(message)) == 0:
                    chat.chat_only_offer = offer
        session._driver = driver
        driver.attach(_DriverHooks(session), session._driver_event)
        if not self._started or not self._for_us(account, message):
            return 404 if self._started else 480
        refusal = media_refusal(message_body(message), _engine_has_ipv6())
        if refusal is not None:
            session._local_refusal = refusal  # set before the loop sees the session
            driver.post(IncomingCall(message))
            return 488, refusal
        # Posted before answering: answer() reports EARLY at once, and the Session must be INCOMING by then.
        driver.post(IncomingCall(message))
        return 180

    def _rejected_call(self, event: RejectedCall) -> None:
        """Engine hook (loop thread): pjsua refused an INVITE before any Call existed (488 for an offer without a
        codec in common or without active audio): tell who called, what was offered and why it was refused."""
        message = event.message
        body = message_body(message)
        try:
            streams = SessionDescription.parse(body).streams() if body.strip() else []
        except ValueError:
            streams = []
        NotificationCenter().post_notification("SIPSessionManagerDidRefuseSession", sender=self, data=NotificationData(
            timestamp=datetime.now(UTC), caller=_bounded(header(message, "From", "f")),
            callee=_bounded(header(message, "To", "t")), user_agent=_bounded(header(message, "User-Agent")),
            code=event.code, reason=refusal_reason(body, event.codecs, _engine_has_ipv6()) or event.reason,
            streams=streams,
            offer=body[:MAX_REPORTED_OFFER]))

    @staticmethod
    def _for_us(account: Any, message: str) -> bool:
        """Whether the request URI names this account: its contact user or its id (P2P takes any user)."""
        if not hasattr(account, "sip"):
            return True
        match = _REQUEST_LINE.match(message)
        uri = _uri_of(match.group(1)) if match else None
        if uri is None:
            return False
        return uri.user in (account.contact.username, account.id.username)


def _bounded(value: str | None, limit: int = 256) -> str | None:
    """A header value from the network, cut to limit characters for reporting."""
    return value[:limit] if value is not None else None


def _engine_has_ipv6() -> bool:
    capabilities = Engine().capabilities
    return capabilities is not None and capabilities.ipv6


def _first_hop_transport(account: Any, uri: SIPURI) -> str | None:
    """The transport an INVITE to uri leaves on without a route given: the account's outbound proxy's, the URI's
    when the account has neither proxy nor registrar (P2P); None when its registrar's route decides."""
    sip = getattr(account, "sip", None)
    proxy = getattr(sip, "outbound_proxy", None)
    if proxy:
        try:
            return SIPURI.parse(str(proxy)).transport
        except ValueError:
            return None
    return None if getattr(sip, "register", False) else uri.transport


def _msrp_tls(account: Any) -> bool:
    """Whether the account's chats use MSRP over TLS (setting msrp.transport)."""
    return str(getattr(getattr(account, "msrp", None), "transport", "tcp")) == "tls"


def _rtp_timeout() -> float:
    """SessionManager.rtp_timeout, else setting rtp.timeout when the configuration is loaded."""
    from sipcli.configuration import ConfigurationManager
    from sipcli.configuration.settings import SIPSimpleSettings

    override = SessionManager().rtp_timeout
    if override is not None:
        return float(override)
    if not ConfigurationManager().started:
        return DEFAULT_TIMEOUT
    return float(SIPSimpleSettings().rtp.timeout)


def _log_codec_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.info("%s", future.exception())


def _rtp_port_range() -> tuple[int, int] | None:
    """Setting rtp.port_range ('start:end'), when the configuration is loaded."""
    from sipcli.configuration import ConfigurationManager
    from sipcli.configuration.settings import SIPSimpleSettings

    if not ConfigurationManager().started:
        return None
    start, end = (int(port) for port in str(SIPSimpleSettings().rtp.port_range).split(":"))
    return start, end
