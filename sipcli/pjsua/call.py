"""The pjsua side of one call: a pj.Call subclass and the ``CallDriver`` that runs commands on it.

The middleware (``sipcli.session``) sends commands with ``driver.send(Command(...))`` from the loop thread and
gets an awaitable future; the driver executes them on the pjsua thread. What pjsua reports comes back as events
(``sipcli.pjsua.events``) to ``on_event`` on the loop thread. Four questions pjsua asks synchronously, on the pjsua
thread, go to the ``CallHooks`` the middleware gives (plain data only): the SDP rewrite, which streams a re-INVITE
proposes, the streams of a proposal answer, and what audio to play or echo.

Every live pj.Call is kept referenced here (pjsua2 hangs up a collected Call); ``release`` drops one once its
call is over, and ``shutdown_all`` (an engine shutdown hook) hangs up and drops them all before ``libDestroy``
(alive, with their players and recorders, they abort it).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sipcli.pjsua.engine import Engine, EngineError
from sipcli.pjsua.events import (
    AudioInfo,
    AudioStatistics,
    CallEvent,
    CallStateChanged,
    DTMFReceived,
    InfoResponse,
    InviteResponse,
    KeepAliveResult,
    MediaChanged,
    MediaFailed,
    ProposalDeclined,
    RemoteProposal,
    StreamFigures,
)
from sipcli.pjsua.media import SRTP_SUITES, call_codecs
from sipcli.pjsua.pager import PagerCallMixin
from sipcli.sdes import answer_problem, offer_key_under_tags
from sipcli.sessiondescription import SessionDescription
from sipcli.sipmessage import header, message_body

__all__ = ["Answer", "AnswerProposal", "CallCommand", "CallDriver", "CallError", "CallHooks", "ConnectMedia",
           "Hangup", "Hold", "KeepAlive", "MakeCall", "ReadStatistics", "Reinvite", "SendDTMF", "StartRecording",
           "StopRecording", "Unhold"]

log = logging.getLogger(__name__)

HANGUP_TIMEOUT = 2.0
CANCEL_GRACE = 0.2

# pjsua_call_state and pjsua_call_media_status values (stable C enums).
_CALL_STATES = {0: "NULL", 1: "CALLING", 2: "INCOMING", 3: "EARLY", 4: "CONNECTING", 5: "CONFIRMED",
                6: "DISCONNECTED"}
_MEDIA_ACTIVE, _MEDIA_LOCAL_HOLD, _MEDIA_REMOTE_HOLD = 1, 2, 3
_DTMF_RFC2833 = 0
_DTMF_METHODS = {_DTMF_RFC2833: "rfc2833", 1: "info"}
_SRTP_ACTIVE = re.compile(r"SRTP status:\s*Active", re.IGNORECASE)
_ROUTE_TRANSPORT = re.compile(r";transport=(udp|tcp|tls)", re.IGNORECASE)


class CallError(EngineError):
    """A call command could not be done (no active account, no pending proposal...)."""


class CallHooks(Protocol):
    """What the driver asks the middleware synchronously, on the pjsua thread (plain data only)."""

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        """Every SDP pjsua produces for the call (offers, answers, re-offers), remote: the offer it answers."""

    def proposed_streams(self, offer: str) -> list[str]:
        """The streams a re-INVITE's offer adds to the session (none for hold, refreshes, removals)."""

    def prepare_proposal_answer(self, offer: str, chat: bool) -> None:
        """Before the answer to a held proposal is written: set the streams up (chat: whether it is accepted)."""

    def answer_sdp(self) -> str | None:
        """The whole answer to send with a 200 instead of pjsua's, or None: for an offer pjsua wrote no answer
        for (another client's chat-only offer, accepted by sipcli's engine build)."""

    def media_output(self) -> tuple[str | None, bool]:
        """The WAV to play into the call (or None) and whether to echo the received audio."""


# -- commands (sent from the loop thread, executed on the pjsua thread) -----------------------------------------


@dataclass(frozen=True)
class MakeCall:
    """account: the middleware's account; its ``pj_account`` slot is read when the command runs (it is filled
    on this thread by a queued activation). chat_slot: a second media slot for the chat line."""

    account: Any
    uri: str
    route_uri: str | None = None  # send the INVITE (and the dialog's requests) along this loose route
    chat_slot: bool = False
    codecs: tuple[str, ...] | None = None  # what this call offers, its re-offers too (None: the configured codecs)


@dataclass(frozen=True)
class Answer:
    code: int
    reason: str = ""  # the reason phrase, when not pjsua's default for code


@dataclass(frozen=True)
class Hangup:
    """BYE, or CANCEL (cancel=True: an outgoing call not answered yet). abandon: the peer is gone (lost, or it never
    ACKed): end the INVITE session at once without a BYE, which nobody would answer while pjsip retransmits it for
    64*T1 = 32 s over UDP, keeping the call slot."""

    cancel: bool = False
    abandon: bool = False


@dataclass(frozen=True)
class Hold:
    pass


@dataclass(frozen=True)
class Unhold:
    pass


@dataclass(frozen=True)
class Reinvite:
    """A re-offer with the session's media lines (chat_slot: the session has or adds a chat line; a call with a
    single line gets a second audio slot for it, rewritten to the chat line)."""

    chat_slot: bool
    unhold: bool = False
    codecs: tuple[str, ...] | None = None  # from now on the call offers these (None: as before)


@dataclass(frozen=True)
class AnswerProposal:
    audio: bool
    chat: bool


@dataclass(frozen=True)
class SendDTMF:
    digit: str
    method: str  # 'rfc2833' or 'info'


@dataclass(frozen=True)
class ConnectMedia:
    """(Re)connect player, recorder and echo as CallHooks.media_output says."""


@dataclass(frozen=True)
class StartRecording:
    path: str


@dataclass(frozen=True)
class StopRecording:
    pass


@dataclass(frozen=True)
class ReadStatistics:
    """Result: AudioStatistics or None (also reported as an event)."""


@dataclass(frozen=True)
class KeepAlive:
    """An in-dialog OPTIONS; its final answer comes back as a KeepAliveResult event."""


CallCommand = (MakeCall | Answer | Hangup | Hold | Unhold | Reinvite | AnswerProposal | SendDTMF | ConnectMedia
               | StartRecording | StopRecording | ReadStatistics | KeepAlive)


class CallDriver:
    """One call's pjsua side. Loop thread: ``send``, ``release``; every other method runs on the pjsua thread."""

    _live: ClassVar[list[CallDriver]] = []  # pjsua thread only: every driver holding a pj.Call
    _cancelled_at: ClassVar[float | None] = None  # pjsua thread only: when a CANCEL was last sent

    def __init__(self, hooks: CallHooks | None = None,
                 on_event: Callable[[CallEvent], None] | None = None) -> None:
        self.hooks = hooks
        self.on_event = on_event
        self.call: Any = None
        self.player: Any = None
        self.player_file: str | None = None
        self.recorder: Any = None
        self.codecs: list[str] | None = None  # what our offers list (sipcli.pjsua.media.call_codecs)
        self.route_account: Any = None  # the pj.Account of this call only (MakeCall.route_uri, or a sips: call)
        # a re-INVITE that proposes streams, answered later by AnswerProposal: its offer, and the answer pjsua
        # wrote for it while the application decides
        self.proposal: dict[str, str | None] | None = None
        self.media_kinds: list[str] = []  # the m-line kinds of the last SDP pjsua wrote (before the rewrite)
        # our last SDP offer and the answer to it once received (None: not yet), and whether the audio failed
        # with that answer before the answer itself was reported (onCallMediaState comes before onCallTsxState)
        self.offer: str | None = None
        self.answer: str | None = None
        self.audio_failure_pending = False
        self.audio_lines: set[int] = set()  # media indexes that carried audio at the last media update
        self.keepalive_pending = False  # an OPTIONS of ours awaits its final answer (at most one at a time)
        self.dialog: int | None = None  # the call's pjsip_dialog*, once a transaction of it was seen

    # -- loop thread ---------------------------------------------------------------------------------------------

    def send(self, command: CallCommand) -> Any:
        """Run command on the pjsua thread; the future has its result or exception."""
        return Engine().run(self.execute, command)

    def release(self) -> None:
        """The call is over: drop the pj.Call (and player/recorder) once the current callback returned."""
        engine = Engine()
        if engine.is_running or engine.state == "stopping":
            engine.run(self._drop)

    # -- pjsua thread ---------------------------------------------------------------------------------------------

    def attach(self, hooks: CallHooks, on_event: Callable[[CallEvent], None]) -> None:
        self.hooks, self.on_event = hooks, on_event

    @classmethod
    def incoming(cls, pj_account: Any, call_id: int) -> CallDriver:
        """The driver of an incoming INVITE, its pj.Call kept at once."""
        driver = cls()
        driver.call = _pj_call_class()(driver, pj_account, call_id)
        driver._keep()
        return driver

    def answer_now(self, code: int, reason: str = "") -> None:
        self._answer(Answer(code, reason))

    def execute(self, command: CallCommand) -> Any:
        return self._handlers[type(command)](self, command)

    def post(self, event: CallEvent) -> None:
        """Hand event to on_event on the loop thread."""
        if self.on_event is not None:
            Engine().post(self.on_event, event)

    def _keep(self) -> None:
        self._live.append(self)

    def _drop(self) -> None:
        self.player = self.recorder = None
        self.call = None
        if self.route_account is not None:
            route_account, self.route_account = self.route_account, None
            with contextlib.suppress(Exception):
                route_account.driver.drop(route_account)
        if self in self._live:
            self._live.remove(self)

    def _make_call(self, command: MakeCall) -> None:
        import pjsua2 as pj

        pj_account = command.account.pj_account
        if pj_account is None:
            raise CallError(f"account {command.account.id} is not active")
        if command.route_uri is not None:
            transport = _ROUTE_TRANSPORT.search(command.route_uri)
            self.route_account = pj_account = pj_account.driver.route_account(
                command.route_uri, transport.group(1).lower() if transport else "udp")
        elif command.uri[:5].lower() == "sips:":
            secure = pj_account.driver.sips_account()
            if secure is not None:
                self.route_account = pj_account = secure
        self.call = _pj_call_class()(self, pj_account)
        self._keep()
        self.codecs = list(command.codecs) if command.codecs else None
        param = pj.CallOpParam(True)
        if command.chat_slot:
            param.opt.audioCount = 2  # the second audio slot becomes the m=message line (sipcli.chat)
        try:
            with call_codecs(self.codecs):
                self.call.makeCall(command.uri, param)
        except Exception:
            self._drop()
            raise

    def _answer(self, command: Answer) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.statusCode = command.code
        if command.reason:
            param.reason = command.reason
        if command.code == 200 and self.hooks is not None:
            sdp = self.hooks.answer_sdp()
            if sdp is not None:  # Call.answer parses it into a pool of its own (engine patch 0002)
                param.sdp.wholeSdp = sdp
        self.call.answer(param)

    def _hangup(self, command: Hangup) -> None:
        import pjsua2 as pj

        call = self.call
        if call is None or not call.isActive():
            return
        self._read_statistics()
        if command.cancel:
            CallDriver._cancelled_at = time.monotonic()
        if command.abandon and self.dialog is not None:
            # The call is active, so its INVITE session and the dialog that holds it exist.
            library = _pjsip_library()
            session = library.pjsip_dlg_get_inv_session(self.dialog)
            if session:
                library.pjsip_inv_terminate(session, 408, 1)  # DISCONNECTED (onCallState) before it returns
                return
        call.hangup(pj.CallOpParam(True))

    def _hold(self, command: Hold) -> None:
        import pjsua2 as pj

        with call_codecs(self.codecs):
            self.call.setHold(pj.CallOpParam(True))

    def _unhold(self, command: Unhold) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.opt.flag = pj.PJSUA_CALL_UNHOLD
        with call_codecs(self.codecs):
            self.call.reinvite(param)

    def _reinvite(self, command: Reinvite) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.opt.audioCount = self._audio_slots(command.chat_slot)
        if command.unhold:
            param.opt.flag = pj.PJSUA_CALL_UNHOLD
        if command.codecs:
            self.codecs = list(command.codecs)
        with call_codecs(self.codecs):
            self.call.reinvite(param)

    def _audio_slots(self, chat_slot: bool) -> int:
        """The audio count for a re-offer. pjsua adds an audio line for each one the call lacks, and an m=message
        line the remote added is no audio slot to pjsua (pjsua2's CallInfo does not even list it): so once the
        call has a second line, ask for the audio lines pjsua itself wrote last time (ours: two, the second
        rewritten into m=message; a remote-added chat: one); a call with one line gets a slot for an added chat."""
        kinds = self.media_kinds
        if len(kinds) >= 2:
            return max(1, kinds.count("audio"))
        return 2 if chat_slot else 1

    def _answer_proposal(self, command: AnswerProposal) -> None:
        """Answer the held re-INVITE: 200 OK with pjsua's answer passed through the hooks, which decline (port 0,
        or a=inactive audio) what is not accepted. Measured with pjsua 2.15.1: a 488 to a held re-INVITE leaves
        pjsua's media operation pending, and it refuses every later offer (hold included) with 488 "another
        media operation is in progress"; so 488 is only the fallback when pjsua wrote no answer."""
        proposal, self.proposal = self.proposal, None
        call = self.call
        if proposal is None or call is None or not call.isActive():
            raise CallError("the proposal is no longer pending")
        param = _answer_param()
        offer, answer = proposal["offer"] or "", proposal["answer"]
        assert self.hooks is not None
        self.hooks.prepare_proposal_answer(offer, command.chat)
        if not answer:  # pjsua2 prints SDPs into a fixed buffer (Capabilities.sdp_buffer): a longer one reads empty
            param.statusCode = 488
            call.answer(param)
            capabilities = Engine().capabilities
            size = capabilities.sdp_buffer if capabilities is not None else 0
            raise CallError(f"refused with 488: the answer exceeds the engine's {size}-byte SDP buffer")
        param.statusCode = 200
        param.sdp.wholeSdp = self.hooks.rewrite_sdp(answer, offer)
        call.answer(param)

    def _send_dtmf(self, command: SendDTMF) -> None:
        import pjsua2 as pj

        if command.method == "info":
            param = pj.CallSendDtmfParam()
            param.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            param.digits = command.digit
            self.call.sendDtmf(param)
        else:
            self.call.dialDtmf(command.digit)

    def _audio_media(self) -> Any:
        """The call's active audio media, or None."""
        import pjsua2 as pj

        call = self.call
        if call is None or not call.isActive():
            return None
        info = call.getInfo()
        media = info.media  # bind first: iterating getInfo().media directly reads freed memory
        for index in range(len(media)):
            item = media[index]
            if item.type == pj.PJMEDIA_TYPE_AUDIO and item.status in (_MEDIA_ACTIVE, _MEDIA_LOCAL_HOLD,
                                                                      _MEDIA_REMOTE_HOLD):
                try:
                    return call.getAudioMedia(index)
                except pj.Error:  # an a=inactive line (chat only) has no conference port to connect
                    return None
        return None

    def _audio_failed(self, answered: bool) -> None:
        """onCallMediaState found the audio line in error: report it, with why the answer to our offer cannot be
        used (answered: the SDP just negotiated is the peer's answer to our offer) once that answer is known."""
        if answered and self.offer is not None and self.answer is None:
            self.audio_failure_pending = True
            return
        self.audio_failure_pending = False
        problem = answer_problem(self.offer, self.answer) if answered and self.offer and self.answer else None
        self.post(MediaFailed(f"the audio stream could not be started with the SDP answer: {problem}" if problem
                              else "the audio stream could not be started with the negotiated SDP"))

    def _offer_answered(self, code: int, body: str) -> None:
        """onCallTsxState: the final response to one of our INVITEs or UPDATEs."""
        if code // 100 == 2 and body.strip():
            self.answer = body
        if self.audio_failure_pending:
            self._audio_failed(True)

    def _connect_media(self, command: ConnectMedia | None = None) -> None:
        """(Re)connect player, recorder and echo to the current audio media; startTransmit is idempotent."""
        import pjsua2 as pj

        media = self._audio_media()
        if media is None:
            return
        play_file, echo = self.hooks.media_output() if self.hooks is not None else (None, False)
        if play_file and (self.player is None or self.player_file != play_file):
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(play_file)
            self.player_file = play_file
        elif not play_file and self.player is not None:
            self.player.stopTransmit(media)
            self.player = None
            self.player_file = None
        if self.player is not None:
            self.player.startTransmit(media)
        if self.recorder is not None:
            media.startTransmit(self.recorder)
        if echo:
            media.startTransmit(media)

    def _start_recording(self, command: StartRecording) -> None:
        import pjsua2 as pj

        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(command.path)
        self.recorder = recorder
        self._connect_media()

    def _stop_recording(self, command: StopRecording) -> None:
        self.recorder = None  # the destructor closes the file and writes the WAV header

    def _read_statistics(self, command: ReadStatistics | None = None) -> AudioStatistics | None:
        import pjsua2 as pj

        call = self.call
        if call is None or (command is not None and not call.isActive()):
            return None
        try:
            info = call.getInfo()
            media = info.media
            for index in range(len(media)):
                if media[index].type != pj.PJMEDIA_TYPE_AUDIO or media[index].status == 0:
                    continue
                stat = call.getStreamStat(index)
                source = call.getMedTransportInfo(index).srcRtpName
                host, _, port = source.rpartition(":")
                statistics = AudioStatistics(int(stat.rtcp.rxStat.pkt), host or None,
                                             int(port) if port.isdigit() and int(port) else None,
                                             _stream_figures(call, index, stat),
                                             rtcp_reports=int(stat.rtcp.txStat.updateCount))
                self.post(statistics)
                return statistics
        except Exception as error:  # the call ended meanwhile
            log.debug("stream statistics unavailable: %r", error)
        return None

    def _keepalive(self, command: KeepAlive) -> None:
        import pjsua2 as pj

        call = self.call
        if call is None or not call.isActive() or self.keepalive_pending:
            return
        param = pj.CallSendRequestParam()
        param.method = "OPTIONS"
        self.keepalive_pending = True
        try:
            call.sendRequest(param)
        except Exception:
            self.keepalive_pending = False
            raise

    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {
        MakeCall: _make_call, Answer: _answer, Hangup: _hangup, Hold: _hold, Unhold: _unhold, Reinvite: _reinvite,
        AnswerProposal: _answer_proposal, SendDTMF: _send_dtmf, ConnectMedia: _connect_media,
        StartRecording: _start_recording, StopRecording: _stop_recording, ReadStatistics: _read_statistics,
        KeepAlive: _keepalive,
    }

    @classmethod
    def shutdown_all(cls) -> None:
        """Engine shutdown hook: hang up what is left, pump until calls are gone, drop every pj object."""
        import pjsua2 as pj

        engine = Engine()
        for driver in list(cls._live):
            with contextlib.suppress(Exception):
                if driver.call is not None and driver.call.isActive():
                    driver.call.hangup(pj.CallOpParam(True))
        engine.pump(lambda: not any(_is_active(driver.call) for driver in cls._live), HANGUP_TIMEOUT)
        cancelled_at = cls._cancelled_at
        if cancelled_at is not None:
            # pjsua reports a CANCELled call over at once; the 487 that ends the INVITE still needs its ACK.
            engine.pump(lambda: time.monotonic() - cancelled_at > CANCEL_GRACE, CANCEL_GRACE)
        for driver in list(cls._live):
            driver._drop()
        gc.collect()


def _answer_param() -> Any:
    """A CallOpParam for answering a re-offer: without a call setting. pjsua_call_answer2() applies a call
    setting it gets for the first time on a call (always so on an outgoing call) by re-initialising the media
    without the remote offer, which shrinks the call's media slots back to the setting's audio count; the answer
    pjsua already wrote for the offer (one line per offered m-line) then has more lines than slots and
    pjsua_media_channel_update() aborts the process (assertion med_prov_cnt >= media_count)."""
    import pjsua2 as pj

    return pj.CallOpParam()  # useDefaultCallSetting=False: an empty CallSetting, passed to pjsua as NULL


@functools.cache
def _pjsip_library() -> Any:
    """pjsip's C API in the loaded pjsua2 module, for what pjsua2 does not wrap: ending an INVITE session at once."""
    import pjsua2 as pj

    library = ctypes.CDLL(pj._pjsua2.__file__)
    library.pjsip_tsx_get_dlg.argtypes = [ctypes.c_void_p]
    library.pjsip_tsx_get_dlg.restype = ctypes.c_void_p
    library.pjsip_dlg_get_inv_session.argtypes = [ctypes.c_void_p]
    library.pjsip_dlg_get_inv_session.restype = ctypes.c_void_p
    library.pjsip_inv_terminate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    library.pjsip_inv_terminate.restype = ctypes.c_int
    return library


def _is_active(call: Any) -> bool:
    try:
        return bool(call is not None and call.isActive())
    except Exception:
        return False


def _milliseconds(usec: Any) -> float | None:
    """The mean of a pj MathStat in microseconds, in milliseconds; None before its first sample."""
    return None if int(usec.n) <= 0 else round(int(usec.mean) / 1000, 3)


def _stream_figures(call: Any, index: int, stat: Any) -> StreamFigures | None:
    """The figures of the audio stream at index (pjsua thread, while the stream exists)."""
    try:
        stream = call.getStreamInfo(index)
        codec, clock_rate = str(stream.codecName), int(stream.codecClockRate)
    except Exception:
        codec, clock_rate = "", 0
    rx, tx, rtcp = stat.rtcp.rxStat, stat.rtcp.txStat, stat.rtcp
    jitter = rx.jitterUsec
    return StreamFigures(
        codec=codec, clock_rate=clock_rate, packets_sent=int(tx.pkt), bytes_sent=int(tx.bytes),
        packets_received=int(rx.pkt), bytes_received=int(rx.bytes), packets_lost=int(rx.loss),
        packets_discarded=int(rx.discard), packets_duplicated=int(rx.dup), packets_reordered=int(rx.reorder),
        jitter_mean_ms=_milliseconds(jitter),
        jitter_max_ms=None if int(jitter.n) <= 0 else round(int(jitter.max) / 1000, 3),
        rtt_ms=_milliseconds(rtcp.rttUsec), remote_packets_lost=int(tx.loss))


def _audio_statuses(call: Any, pj: Any) -> dict[int, int]:
    """The pjsua media status of each audio slot of the call, by media index."""
    info = call.getInfo()
    media = info.media
    return {index: int(media[index].status) for index in range(len(media))
            if media[index].type == pj.PJMEDIA_TYPE_AUDIO}


def _media_changed(call: Any, pj: Any) -> MediaChanged:
    info = call.getInfo()
    media = info.media
    for index in range(len(media)):
        item = media[index]
        if item.type != pj.PJMEDIA_TYPE_AUDIO or item.status == 0:
            continue
        try:
            stream = call.getStreamInfo(index)
        except pj.Error:
            continue  # no stream: the chat slot, or an inactive audio line (a chat-only session)
        status = int(item.status)
        hold = {_MEDIA_LOCAL_HOLD: "local", _MEDIA_REMOTE_HOLD: "remote"}.get(status)
        inactive = int(item.dir) == pj.PJMEDIA_DIR_NONE
        transport = call.getMedTransportInfo(index)
        local_host, _, local_port = str(transport.localRtpName).rpartition(":")
        remote_host, _, remote_port = str(stream.remoteRtpAddress).rpartition(":")
        audio = AudioInfo(str(stream.codecName), int(stream.codecClockRate),
                          bool(_SRTP_ACTIVE.search(call.dump(True, ""))), local_host, int(local_port or 0),
                          remote_host, int(remote_port or 0))
        return MediaChanged(audio, hold, inactive)
    return MediaChanged(None, None)


@functools.cache
def _pj_call_class() -> type:
    import pjsua2 as pj

    class PJCall(PagerCallMixin, pj.Call):
        """Copies what callbacks say into events for the loop thread (pjsua thread), pager-mode MESSAGEs inside
        the call's dialog included (PagerCallMixin)."""

        def __init__(self, driver: CallDriver, pj_account: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
            super().__init__(pj_account, call_id)
            self.driver = driver

        def onCallState(self, prm: Any) -> None:
            info = self.getInfo()
            state = _CALL_STATES.get(int(info.state), "NULL")
            code, reason = int(info.lastStatusCode), str(info.lastReason)
            message, remote_response = "", False
            with contextlib.suppress(Exception):
                event = prm.e
                if event.type == pj.PJSIP_EVENT_TSX_STATE and event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
                    message = str(event.body.tsxState.src.rdata.wholeMsg)
                    remote_response = message.startswith("SIP/2.0")
            if state == "DISCONNECTED":
                self.driver._read_statistics()
            self.driver.post(CallStateChanged(state, code, reason, str(info.localUri), str(info.remoteUri),
                                              remote_response, message))

        def onCallMediaState(self, prm: Any) -> None:
            # A line that carried audio and is now in error: pjsua gave it up with the SDP just negotiated and
            # closed its transport (e.g. pjmedia refused the SRTP answer to a re-INVITE, ESDPINCRYPTOTAG). The
            # chat slot is an audio slot in error from the start (its m=message line makes no audio stream).
            driver = self.driver
            statuses = _audio_statuses(self, pj)
            failed = any(statuses.get(index) == pj.PJSUA_CALL_MEDIA_ERROR for index in driver.audio_lines)
            driver.audio_lines = {index for index, status in statuses.items()
                                  if status in (_MEDIA_ACTIVE, _MEDIA_LOCAL_HOLD, _MEDIA_REMOTE_HOLD)}
            if failed:
                driver._audio_failed(answered=not self.getInfo().remOfferer)
                return
            changed = _media_changed(self, pj)
            self.driver._connect_media()
            self.driver.post(changed)

        def onCallRxReinvite(self, prm: Any) -> None:
            """A re-INVITE that adds streams is held (prm.isAsync): the application accepts or rejects it later.
            pjsua still writes its answer (onCallSdpCreated, kept in driver.proposal) but would send a 200 OK
            without SDP: the answer is passed back in CallOpParam.sdp (AnswerProposal)."""
            driver = self.driver
            offer = str(prm.offer.wholeSdp)
            streams = driver.hooks.proposed_streams(offer) if offer and driver.hooks is not None else []
            if streams and driver.proposal is None:
                prm.isAsync = True
                driver.proposal = {"offer": offer, "answer": None}
                driver.post(RemoteProposal(streams))

        def onCallRxOffer(self, prm: Any) -> None:
            """An offer pjsua answers at once (an UPDATE; a held re-INVITE never comes here): a chat line it adds
            is declined by pjsua's answer (port 0), and the application is told so."""
            driver = self.driver
            offer = str(prm.offer.wholeSdp)
            if offer and driver.proposal is None and driver.hooks is not None and \
                    "chat" in driver.hooks.proposed_streams(offer):
                driver.post(ProposalDeclined(["chat"]))

        def onCallSdpCreated(self, prm: Any) -> None:
            driver = self.driver
            remote = str(prm.remSdp.wholeSdp) or None
            local = str(prm.sdp.wholeSdp)
            with contextlib.suppress(ValueError):
                driver.media_kinds = [section.kind for section in SessionDescription.parse(local).media]
            proposal = driver.proposal
            if proposal is not None and remote and proposal["answer"] is None:
                proposal["answer"] = local  # kept until the application decides (pjsua sends no SDP of its own)
                return
            rewritten = driver.hooks.rewrite_sdp(local, remote) if driver.hooks is not None else local
            if not self.getInfo().remOfferer:  # our offer (remote also reads empty when over 1024 bytes)
                # pjmedia re-offers the SRTP key in use alone, as tag 1, and refuses an answer naming another tag:
                # for peers that keep the tag of their earlier answer (the reference client does) or pick a new
                # one, our key is offered under every tag pjmedia accepts (1 to the number of suites the account has)
                rewritten = offer_key_under_tags(rewritten, len(SRTP_SUITES)) if rewritten else rewritten
                driver.offer, driver.answer = rewritten or None, None
            if rewritten != local:
                prm.sdp.wholeSdp = rewritten

        def onCallTsxState(self, prm: Any) -> None:
            """Final responses to our INVITEs (the answer SDP tells the chat stream what was accepted), to our
            UPDATEs (pjsua's codec lock: they may carry the answer to an offer too) and to our DTMF INFO requests;
            and the outcome of our keep-alive, received or made up by pjsip (timeout, transport error)."""
            with contextlib.suppress(Exception):
                event = prm.e
                if event.type != pj.PJSIP_EVENT_TSX_STATE or self._our_request(event):
                    return
                if event.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
                    return
                message = str(event.body.tsxState.src.rdata.wholeMsg)
                status = message.split("\r\n", 1)[0].split(" ", 2)
                method = (header(message, "CSeq") or "").rpartition(" ")[2].upper()
                if not message.startswith("SIP/2.0 ") or method not in ("INVITE", "UPDATE", "INFO"):
                    return
                code, reason = int(status[1]), status[2] if len(status) > 2 else ""
                if code < 200:
                    return
                if method == "INFO":
                    self.driver.post(InfoResponse(code, reason))
                    return
                body = message_body(message)
                self.driver._offer_answered(code, body)
                if method == "INVITE":
                    self.driver.post(InviteResponse(code, reason, body))

        def onDtmfEvent(self, prm: Any) -> None:
            """RFC 4733 digits are reported at the start of their event (flags 0: neither update nor end). Not by
            onDtmfDigit: when the stream is recreated mid-event (a hold re-INVITE just after a digit), the new
            stream takes the event's remaining end packets for a digit of its own and onDtmfDigit fires again,
            without an event start."""
            if int(prm.method) == _DTMF_RFC2833 and int(prm.flags) == 0:
                self.driver.post(DTMFReceived(str(prm.digit), _DTMF_METHODS[_DTMF_RFC2833]))

        def _our_request(self, event: Any) -> bool:
            """Notes the call's dialog (Hangup.abandon) from its INVITE transaction; and the final answer to our
            keep-alive: whether event was that."""
            tsx = event.body.tsxState.tsx
            driver = self.driver
            if driver.dialog is None and tsx.method == "INVITE" and tsx.state < pj.PJSIP_TSX_STATE_TERMINATED:
                driver.dialog = _pjsip_library().pjsip_tsx_get_dlg(int(tsx.pjTransaction)) or None
            if tsx.role != pj.PJSIP_ROLE_UAC:
                return False
            if tsx.method == "OPTIONS" and driver.keepalive_pending and int(tsx.statusCode) >= 200:
                driver.keepalive_pending = False
                local = event.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG
                driver.post(KeepAliveResult(int(tsx.statusCode), str(tsx.statusText), local))
                return True
            return False

        def onDtmfDigit(self, prm: Any) -> None:
            method = int(prm.method)
            if method != _DTMF_RFC2833:  # SIP INFO: one request, one digit
                self.driver.post(DTMFReceived(str(prm.digit), _DTMF_METHODS.get(method, str(prm.method))))

        def onStreamDestroyed(self, prm: Any) -> None:
            """The stream's last figures: read here, before pjsua destroys it (on hold, unhold and hang-up)."""
            with contextlib.suppress(Exception):
                index = int(prm.streamIdx)
                stat = self.getStreamStat(index)
                self.driver.post(AudioStatistics(int(stat.rtcp.rxStat.pkt), None, None,
                                                 _stream_figures(self, index, stat), stream_ended=True))

    return PJCall
