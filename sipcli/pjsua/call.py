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
    InviteResponse,
    MediaChanged,
    RemoteProposal,
)
from sipcli.sipmessage import header, message_body

__all__ = ["Answer", "AnswerProposal", "CallCommand", "CallDriver", "CallError", "CallHooks", "ConnectMedia",
           "Hangup", "Hold", "MakeCall", "ReadStatistics", "Reinvite", "SendDTMF", "StartRecording",
           "StopRecording", "Unhold"]

log = logging.getLogger(__name__)

HANGUP_TIMEOUT = 2.0
CANCEL_GRACE = 0.2

# pjsua_call_state and pjsua_call_media_status values (stable C enums).
_CALL_STATES = {0: "NULL", 1: "CALLING", 2: "INCOMING", 3: "EARLY", 4: "CONNECTING", 5: "CONFIRMED",
                6: "DISCONNECTED"}
_MEDIA_ACTIVE, _MEDIA_LOCAL_HOLD, _MEDIA_REMOTE_HOLD = 1, 2, 3
_DTMF_METHODS = {0: "rfc2833", 1: "info"}
_SRTP_ACTIVE = re.compile(r"SRTP status:\s*Active", re.IGNORECASE)


class CallError(EngineError):
    """A call command could not be done (no active account, no pending proposal...)."""


class CallHooks(Protocol):
    """What the driver asks the middleware synchronously, on the pjsua thread (plain data only)."""

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        """Every SDP pjsua produces for the call (offers, answers, re-offers), remote: the offer it answers."""

    def proposed_streams(self, offer: str) -> list[str]:
        """The streams a re-INVITE's offer adds to the session (none for hold, refreshes, removals)."""

    def prepare_proposal_answer(self, offer: str, chat: bool) -> bool:
        """Before the answer to a held proposal is written: set the streams up; whether chat is accepted."""

    def media_output(self) -> tuple[str | None, bool]:
        """The WAV to play into the call (or None) and whether to echo the received audio."""


# -- commands (sent from the loop thread, executed on the pjsua thread) -----------------------------------------


@dataclass(frozen=True)
class MakeCall:
    """account: the middleware's account; its ``pj_account`` slot is read when the command runs (it is filled
    on this thread by a queued activation). target_uri: the INVITE's Request-URI when it is not uri (To keeps
    uri). chat_slot: a second media slot for the chat line."""

    account: Any
    uri: str
    target_uri: str | None = None
    chat_slot: bool = False


@dataclass(frozen=True)
class Answer:
    code: int


@dataclass(frozen=True)
class Hangup:
    """BYE, or CANCEL (cancel=True: an outgoing call not answered yet)."""

    cancel: bool = False


@dataclass(frozen=True)
class Hold:
    pass


@dataclass(frozen=True)
class Unhold:
    pass


@dataclass(frozen=True)
class Reinvite:
    """A re-offer with the session's media slots (chat_slot: two, the second rewritten to the chat line)."""

    chat_slot: bool
    unhold: bool = False


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


CallCommand = (MakeCall | Answer | Hangup | Hold | Unhold | Reinvite | AnswerProposal | SendDTMF | ConnectMedia
               | StartRecording | StopRecording | ReadStatistics)


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
        # a re-INVITE that proposes streams, answered later by AnswerProposal: its offer, and the answer pjsua
        # wrote for it while the application decides
        self.proposal: dict[str, str | None] | None = None

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

    def answer_now(self, code: int) -> None:
        self._answer(Answer(code))

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
        if self in self._live:
            self._live.remove(self)

    def _make_call(self, command: MakeCall) -> None:
        import pjsua2 as pj

        pj_account = command.account.pj_account
        if pj_account is None:
            raise CallError(f"account {command.account.id} is not active")
        self.call = _pj_call_class()(self, pj_account)
        self._keep()
        param = pj.CallOpParam(True)
        if command.chat_slot:
            param.opt.audioCount = 2  # the second audio slot becomes the m=message line (sipcli.chat)
        if command.target_uri is not None:
            # pjsip sends a request where its Request-URI points (a Route header set here is not consulted).
            param.txOption.targetUri = command.target_uri
        try:
            self.call.makeCall(command.uri, param)
        except Exception:
            self._drop()
            raise

    def _answer(self, command: Answer) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.statusCode = command.code
        self.call.answer(param)

    def _hangup(self, command: Hangup) -> None:
        import pjsua2 as pj

        call = self.call
        if call is None or not call.isActive():
            return
        self._read_statistics()
        if command.cancel:
            CallDriver._cancelled_at = time.monotonic()
        call.hangup(pj.CallOpParam(True))

    def _hold(self, command: Hold) -> None:
        import pjsua2 as pj

        self.call.setHold(pj.CallOpParam(True))

    def _unhold(self, command: Unhold) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.call.reinvite(param)

    def _reinvite(self, command: Reinvite) -> None:
        import pjsua2 as pj

        param = pj.CallOpParam(True)
        param.opt.audioCount = 2 if command.chat_slot else 1
        if command.unhold:
            param.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.call.reinvite(param)

    def _answer_proposal(self, command: AnswerProposal) -> None:
        """Answer the held re-INVITE: 200 OK with pjsua's answer passed through the hooks, which decline (port 0,
        or a=inactive audio) what is not accepted. Measured with pjsua 2.15.1: a 488 to a held re-INVITE leaves
        pjsua's media operation pending, and it refuses every later offer (hold included) with 488 "another
        media operation is in progress"; so 488 is only the fallback when pjsua wrote no answer."""
        import pjsua2 as pj

        proposal, self.proposal = self.proposal, None
        call = self.call
        if proposal is None or call is None or not call.isActive():
            raise CallError("the proposal is no longer pending")
        param = pj.CallOpParam(True)
        offer, answer = proposal["offer"] or "", proposal["answer"]
        assert self.hooks is not None
        chat = self.hooks.prepare_proposal_answer(offer, command.chat)
        if not answer:
            param.statusCode = 488
            call.answer(param)
            if command.audio or chat:
                raise CallError("pjsua wrote no answer for the proposal")
            return
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
                packets = int(stat.rtcp.rxStat.pkt)
                source = call.getMedTransportInfo(index).srcRtpName
                host, _, port = source.rpartition(":")
                statistics = AudioStatistics(packets, host or None, int(port) if port.isdigit() and int(port) else None)
                self.post(statistics)
                return statistics
        except Exception as error:  # the call ended meanwhile
            log.debug("stream statistics unavailable: %r", error)
        return None

    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {
        MakeCall: _make_call, Answer: _answer, Hangup: _hangup, Hold: _hold, Unhold: _unhold, Reinvite: _reinvite,
        AnswerProposal: _answer_proposal, SendDTMF: _send_dtmf, ConnectMedia: _connect_media,
        StartRecording: _start_recording, StopRecording: _stop_recording, ReadStatistics: _read_statistics,
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


def _is_active(call: Any) -> bool:
    try:
        return bool(call is not None and call.isActive())
    except Exception:
        return False


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
        transport = call.getMedTransportInfo(index)
        local_host, _, local_port = str(transport.localRtpName).rpartition(":")
        remote_host, _, remote_port = str(stream.remoteRtpAddress).rpartition(":")
        audio = AudioInfo(str(stream.codecName), int(stream.codecClockRate),
                          bool(_SRTP_ACTIVE.search(call.dump(True, ""))), local_host, int(local_port or 0),
                          remote_host, int(remote_port or 0))
        return MediaChanged(audio, hold)
    return MediaChanged(None, None)


@functools.cache
def _pj_call_class() -> type:
    import pjsua2 as pj

    class PJCall(pj.Call):
        """Copies what callbacks say into events for the loop thread (pjsua thread)."""

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

        def onCallSdpCreated(self, prm: Any) -> None:
            driver = self.driver
            remote = str(prm.remSdp.wholeSdp) or None
            local = str(prm.sdp.wholeSdp)
            proposal = driver.proposal
            if proposal is not None and remote and proposal["answer"] is None:
                proposal["answer"] = local  # kept until the application decides (pjsua sends no SDP of its own)
                return
            if driver.hooks is None:
                return
            rewritten = driver.hooks.rewrite_sdp(local, remote)
            if rewritten != local:
                prm.sdp.wholeSdp = rewritten

        def onCallTsxState(self, prm: Any) -> None:
            """Final responses to our INVITEs: the answer SDP tells the chat stream what was accepted."""
            with contextlib.suppress(Exception):
                event = prm.e
                if event.type != pj.PJSIP_EVENT_TSX_STATE or event.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
                    return
                message = str(event.body.tsxState.src.rdata.wholeMsg)
                status = message.split("\r\n", 1)[0].split(" ", 2)
                if not message.startswith("SIP/2.0 ") or not (header(message, "CSeq") or "").endswith("INVITE"):
                    return
                code = int(status[1])
                if code >= 200:
                    self.driver.post(InviteResponse(code, status[2] if len(status) > 2 else "", message_body(message)))

        def onDtmfDigit(self, prm: Any) -> None:
            self.driver.post(DTMFReceived(str(prm.digit), _DTMF_METHODS.get(int(prm.method), str(prm.method))))

        def onStreamDestroyed(self, prm: Any) -> None:
            with contextlib.suppress(Exception):
                stat = self.getStreamStat(int(prm.streamIdx))
                self.driver.post(AudioStatistics(int(stat.rtcp.rxStat.pkt), None, None))

    return PJCall
