"""What `call`, `listen`, `record` and `demo` share: media options, and driving one audio session to its end.

``drive_session`` takes a Session that was just connected or is about to be accepted, and does what the options
ask once it is established (record, DTMF, hold/unhold, hang up after --duration), then checks the expectations
and maps how the session ended to an exit code (README: "Exit codes").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipcli.commands.exitcodes import ExitCode, registration_failure_code
from sipcli.commands.options import Expectations, MediaSetup
from sipcli.commands.runner import JobFailed, JobResult

from sipcli.filenames import path_in, safe_token
from sipcli.notification import NotificationCenter, NotificationData

__all__ = [
    "MediaOptions",
    "browse_account",
    "drive_session",
    "expectations",
    "expected_code_result",
    "prepare_account",
    "recording_path",
    "run_audio_script",
    "session_failure_result",
    "show_progress",
    "started_services",
    "tls_transport",
    "wait_ready",
]

log = logging.getLogger("sipcli")



@dataclass
class MediaOptions:
    """The per-session options of the audio commands."""

    audio: bool = True  # the session has audio (False: chat only)
    play: str | None = None
    record: str | None = None
    dtmf: str = ""
    dtmf_delay: float = 1.0
    dtmf_method: str = "rfc2833"
    expect_dtmf: str = ""
    expect_audio: bool = False
    duration: float | None = None
    hold_after: float | None = None
    unhold_after: float | None = None
    echo: bool = False
    add_chat_after: float | None = None
    remove_chat_after: float | None = None
    chat_messages: tuple[str, ...] = ()
    chat_messages_after: float | None = None  # None: as soon as the chat is connected
    proposals: str = "accept"  # what to do with the remote party's stream proposals: accept, reject, ignore
    proposal_timeout: float | None = None
    expectations: Expectations = field(default_factory=Expectations)
    stats_interval: float | None = None  # seconds between SIPSessionGotAudioStatistics while established


class _ProposalAnswerer:
    """Answers the remote party's stream proposals on one session, as MediaOptions.proposals says."""

    def __init__(self, session: Any, options: MediaOptions) -> None:
        self.session = session
        self.policy = options.proposals
        if options.proposal_timeout is not None:
            session.proposal_timeout = options.proposal_timeout
        NotificationCenter().add_observer(self, name="SIPSessionGotStreamProposal", sender=session)

    def close(self) -> None:
        NotificationCenter().purge_observer(self)

    def handle_notification(self, notification: Any) -> None:
        if notification.data.proposer != "remote" or self.policy == "ignore":
            return
        streams = notification.data.streams
        audio = "audio" in streams
        chat = False
        if "chat" in streams:
            from sipcli.chat import ChatSupport  # loads MSRP: only when chat is proposed

            chat = ChatSupport().running
        if self.policy == "accept" and (audio or chat):
            self.session.accept_proposal(audio=audio, chat=chat)
        else:
            self.session.reject_proposal()


def prepare_account(media: MediaSetup) -> Callable[[Any], None]:
    """A runner ``prepare`` hook: this run's SRTP mode, codec order and RTP ports (in memory, never saved)."""

    def prepare(account: Any) -> None:
        from sipcli.configuration.datatypes import AudioCodec
        from sipcli.session import SessionManager

        if media.srtp is not None:
            account.rtp.srtp_encryption = media.srtp
        if media.rtp_ports is not None:
            from sipcli.configuration.settings import SIPSimpleSettings

            SIPSimpleSettings().rtp.port_range = "{}:{}".format(*media.rtp_ports)
        if media.codecs:
            names = {name.lower(): name for name in AudioCodec.values}
            unknown = [codec for codec in media.codecs if codec.lower() not in names]
            if unknown:
                raise JobFailed(ExitCode.USAGE, f"--codec: unknown codec {unknown[0]!r} "
                                                f"(known: {', '.join(AudioCodec.values)})")
            SessionManager().codecs = [names[codec.lower()] for codec in media.codecs]

    return prepare


def tls_transport(target: Any = None, listen_port: int | None = None,
                  certificate: str | None = None) -> Callable[[Any], dict[str, Any]]:
    """A runner ``engine_for`` hook: a TLS transport when the run needs one, verified as for register (setting
    tls.verify_server, --tls-ca or tls.ca_list, else the system's CAs). Needed by a ``sips:`` or ``;transport=tls``
    target, by an account whose outbound proxy (or --proxy) asks for TLS, and, with listen_port (listen), by a
    certificate to accept TLS with (certificate, else setting tls.certificate): then it listens on listen_port."""

    def engine_for(account: Any) -> dict[str, Any]:
        from sipcli.configuration.settings import SIPSimpleSettings
        from sipcli.uri import SIPURI

        overrides: dict[str, Any] = {}
        if certificate:
            overrides["tls_certificate"] = os.path.abspath(certificate)
        proxy = getattr(getattr(account, "sip", None), "outbound_proxy", None)
        needed = (target is not None and target.transport == "tls") or \
            (proxy is not None and SIPURI.parse(str(proxy)).transport == "tls")
        if listen_port is not None and (certificate or SIPSimpleSettings().tls.certificate):
            overrides["tls_port"] = listen_port
        elif needed:
            overrides["tls_port"] = 0
        return overrides

    return engine_for


async def wait_ready(account: Any, timeout: float) -> None:
    """Wait until the account can place and take calls (see Registration.wait_ready); JobFailed when it was
    refused, failed or was not done in time (the failure was reported as SIPAccountRegistrationDidFail)."""
    from sipcli.registration import RegistrationFailed, registration_of

    registration = registration_of(account)
    if registration is None:
        raise JobFailed(ExitCode.NETWORK, f"account {account.id} is not active")
    progress = show_progress(lambda elapsed: f"no response from the registrar {registration.route or ''} yet, "
                                             f"{elapsed:.0f} s (gives up after {timeout:g} s)") \
        if registration.register else None
    try:
        await registration.wait_ready(timeout)
    except RegistrationFailed as error:
        failure = error.failure
        what = "registration failed" if registration.register else f"account {account.id} could not be activated"
        raise JobFailed(registration_failure_code(failure.kind), f"{what}: {failure.reason}",
                        code=failure.code) from None
    finally:
        if progress is not None:
            progress.cancel()


def show_progress(describe: Callable[[float], str]) -> asyncio.Task | None:
    """While a wait lasts (cancel the task when it ends): on a terminal, say on stderr what is awaited, after 2 s
    and then every 2 s (every 5 s after 10 s). Nothing when stderr is not a terminal (scripts read the JSON)."""
    if not sys.stderr.isatty():
        return None

    async def report() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            elapsed = loop.time() - start
            await asyncio.sleep(2 if elapsed < 10 else 5)
            sys.stderr.write(f"sipcli: {describe(loop.time() - start)}\n")
            sys.stderr.flush()

    return asyncio.ensure_future(report())


def _peer(session: Any) -> str:
    """Where an outgoing session's INVITE went: its route, else the URI's host[:port]."""
    route = getattr(session, "route", None)
    if route is not None:
        return f"{route.address}:{route.port}"
    uri = session.remote_uri
    return f"{uri.host}:{uri.port}" if uri is not None and uri.port else str(getattr(uri, "host", "the peer"))


class _Events:
    """Every notification of one session, as a queue."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.queue: asyncio.Queue = asyncio.Queue()
        self.digits = ""
        self.digits_sent = ""
        self.failure: Any = None
        self.not_delivered: list[Any] = []
        self.dtmf_refused: list[Any] = []  # SIPSessionDidNotSendDTMF (a DTMF INFO refused by the peer)
        self.ended_by_remote = False
        self.audio_failure: str | None = None
        self.ringing = False
        NotificationCenter().add_observer(self, sender=session)
        NotificationCenter().add_observer(self, name="MediaStreamDidFail")

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "MediaStreamDidFail":
            if notification.sender is self.session.audio:
                self.audio_failure = notification.data.reason
            return
        if notification.name == "SIPSessionGotDTMF":
            self.digits += notification.data.digit
        elif notification.name == "SIPCLIDidSendDTMF":
            self.digits_sent = notification.data.sent
        elif notification.name == "SIPSessionDidFail":
            self.failure = notification.data
        elif notification.name == "SIPSessionDidNotDeliverMessage":
            self.not_delivered.append(notification.data)
        elif notification.name == "SIPSessionDidNotSendDTMF":
            self.dtmf_refused.append(notification.data)
        elif notification.name == "SIPSessionDidEnd":
            self.ended_by_remote = notification.data.originator == "remote"
        elif notification.name == "SIPSessionGotRingIndication":
            self.ringing = True
        self.queue.put_nowait(notification.name)

    @property
    def refused(self) -> list[Any]:
        """Messages the remote side did not take; those still in flight when it hung up (our 408) are not."""
        return [data for data in self.not_delivered if not (self.ended_by_remote and data.code == 408)]

    def close(self) -> None:
        NotificationCenter().purge_observer(self)

    async def wait_for(self, *names: str) -> str:
        while True:
            name = await self.queue.get()
            if name in names:
                return name


def session_failure_result(failure: Any) -> JobResult:
    """The JobResult for a SIPSessionDidFail (its originator, code and reason): exit 1, 3 or 4."""
    code = int(getattr(failure, "code", 0) or 0)
    reason = str(getattr(failure, "reason", "") or "failed")
    data = {"code": code}
    if failure.originator == "remote" and code >= 300:
        return JobResult(ExitCode.REFUSED, f"refused: {code} {reason}", data)
    if code == 408:
        return JobResult(ExitCode.TIMEOUT, f"no response: {reason}", data)
    return JobResult(ExitCode.NETWORK, f"failed: {code} {reason}".replace(" 0 ", " "), data)


def expected_code_result(result: JobResult, expectations: Expectations) -> JobResult:
    """A session that ended with a final response (result.data's code): with --expect-code, exit 0 when it is the
    expected one (e.g. 486 for a busy check), 6 when another; a timeout or transport failure stays what it is."""
    expected, code = expectations.code, result.data.get("code")
    if expected is None or result.exit_code not in (ExitCode.OK, ExitCode.REFUSED) or not code:
        return result
    if code == expected:
        return JobResult(ExitCode.OK, f"expected response {code}: {result.reason}", result.data)
    return _expectation_failed("code", expected, f"the final response was {code}", result.data)


def _expectation_failed(name: str, expected: Any, found: str, data: dict[str, Any]) -> JobResult:
    """Exit 6, the failed expectation named (``expectation``: the option and its value) in SIPCLIDidEnd."""
    option = f"--expect-{name.replace('_', '-')} {expected}"
    return JobResult(ExitCode.MEDIA, f"expectation {option} failed: {found}", {**data, "expectation": option})


def _quality_expectations(session: Any, expectations: Expectations, data: dict[str, Any]) -> JobResult | None:
    """The first failed expectation of an established session (exit 6), or None."""
    quality = session.audio_quality
    if expectations.code is not None and expectations.code != 200:
        return _expectation_failed("code", expectations.code, "the session was answered (200)", data)
    if expectations.codec is not None:
        codec = (quality or {}).get("codec") or session.audio_codec
        if str(codec or "").lower() != expectations.codec.lower():
            return _expectation_failed("codec", expectations.codec, f"the codec was {codec or 'none'}", data)
    duration = data.get("duration")
    if expectations.duration_min is not None and (duration is None or duration < expectations.duration_min):
        return _expectation_failed("duration_min", expectations.duration_min, f"the session lasted {duration} s",
                                   data)
    if not expectations.need_quality:
        return None
    if quality is None:
        name, value = next((n, v) for n, v in (("mos", expectations.mos), ("max_loss", expectations.max_loss),
                                               ("max_jitter", expectations.max_jitter)) if v is not None)
        return _expectation_failed(name, value, "no audio figures (no audio stream)", data)
    if expectations.mos is not None and quality["mos"] < expectations.mos:
        return _expectation_failed("mos", expectations.mos, f"the estimated MOS was {quality['mos']}", data)
    if expectations.max_loss is not None and quality["loss_percent"] > expectations.max_loss:
        return _expectation_failed("max_loss", f"{expectations.max_loss:g}%",
                                   f"{quality['loss_percent']:g}% of the packets were lost", data)
    jitter = quality["jitter_max_ms"]
    if expectations.max_jitter is not None and (jitter is None or jitter > expectations.max_jitter):
        found = "no jitter was measured (no audio received)" if jitter is None else f"the jitter reached {jitter:g} ms"
        return _expectation_failed("max_jitter", expectations.max_jitter, found, data)
    return None


def _quality_summary(session: Any) -> dict[str, Any] | None:
    """The key audio figures for SIPCLIDidEnd (the full ones are in SIPSessionGotAudioStatistics)."""
    quality = session.audio_quality
    if quality is None:
        return None
    keys = ("codec", "mos", "loss_percent", "packets_lost", "jitter_mean_ms", "jitter_max_ms", "rtt_ms")
    return {key: quality[key] for key in keys}


def _subsequence(expected: str, received: str) -> bool:
    it = iter(received)
    return all(digit in it for digit in expected)


async def drive_session(session: Any, options: MediaOptions, *, answer_timeout: float | None = None,
                        accept: Callable[[], Any] | None = None) -> JobResult:
    """Drive an outgoing (already connecting) or incoming (accept() answers it) session to its end."""
    events = _Events(session)
    proposals = _ProposalAnswerer(session, options)
    try:
        if options.play:
            session.play_audio(options.play)
        if options.echo:
            session.echo_audio(True)
        if accept is not None:
            accept()
        waiting = events.wait_for("SIPSessionDidStart", "SIPSessionDidEnd")
        progress = None
        if accept is None:
            progress = show_progress(lambda elapsed: f"ringing at {_peer(session)}, no answer yet, {elapsed:.0f} s"
                                     if events.ringing else f"no response from {_peer(session)} yet, {elapsed:.0f} s")
        try:
            first = await asyncio.wait_for(waiting, answer_timeout) if answer_timeout else await waiting
        except TimeoutError:
            session.end()
            await session.wait_ended()
            return JobResult(ExitCode.TIMEOUT, f"no answer within {answer_timeout:g} s", {"code": 487})
        finally:
            if progress is not None:
                progress.cancel()
        if first == "SIPSessionDidEnd":
            return expected_code_result(session_failure_result(events.failure), options.expectations)
        await _established(session, options)
        await session.wait_ended()
        return _outcome(session, options, events)
    finally:
        events.close()
        proposals.close()


def run_audio_script(session: Any, options: MediaOptions) -> asyncio.Future:
    """The scripted audio actions (record, DTMF, hold) of an established session that something else ends."""
    return asyncio.ensure_future(_established(session, dataclasses.replace(options, duration=None)))


async def _established(session: Any, options: MediaOptions) -> None:
    """Run the scripted actions of an established session until it ends (or --duration passes)."""
    tasks = []
    if options.record:
        with contextlib.suppress(Exception):
            await session.start_recording_audio(options.record)

    async def at(delay: float, action: Callable[[], Any]) -> None:
        await asyncio.sleep(delay)
        if session.state == "ESTABLISHED":
            try:
                result = action()
                if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                    await result
            except Exception as error:  # e.g. the session ended meanwhile: reported by its own events
                log.warning("%s: %s", session.notification_id, error)

    async def send_digits() -> None:
        sent = ""
        for digit in options.dtmf:
            if session.state != "ESTABLISHED":
                return
            await session.send_dtmf(digit)
            await asyncio.sleep(0.25)  # the RFC 4733 event (or INFO) is on its way: report it as sent
            sent += digit
            NotificationCenter().post_notification("SIPCLIDidSendDTMF", sender=session, data=NotificationData(
                digit=digit, sent=sent, remaining=options.dtmf[len(sent):], method=options.dtmf_method))

    if options.dtmf:
        session.dtmf_method = options.dtmf_method
        tasks.append(asyncio.ensure_future(at(options.dtmf_delay, send_digits)))
    if options.hold_after is not None:
        tasks.append(asyncio.ensure_future(at(options.hold_after, session.hold)))
    if options.unhold_after is not None:
        tasks.append(asyncio.ensure_future(at(options.unhold_after, session.unhold)))
    if options.duration is not None:
        tasks.append(asyncio.ensure_future(at(options.duration, session.end)))
    if options.stats_interval is not None:
        tasks.append(asyncio.ensure_future(_report_statistics(session, options.stats_interval)))
    if options.add_chat_after is not None:
        tasks.append(asyncio.ensure_future(at(options.add_chat_after, session.add_chat)))
    if options.remove_chat_after is not None:
        tasks.append(asyncio.ensure_future(at(options.remove_chat_after, session.remove_chat)))
    sender = None
    if options.chat_messages and options.chat_messages_after is not None:
        tasks.append(asyncio.ensure_future(at(options.chat_messages_after,
                                              lambda: [session.send_message(text) for text in options.chat_messages])))
    elif options.chat_messages:
        sender = _ChatSender(session, options.chat_messages)
    try:
        await session.wait_ended()
    finally:
        for task in tasks:
            task.cancel()
        if sender is not None:
            sender.close()


async def _report_statistics(session: Any, interval: float) -> None:
    """SIPSessionGotAudioStatistics every interval seconds while the session is established."""
    while True:
        await asyncio.sleep(interval)
        if session.state == "ESTABLISHED":
            await session.report_audio_statistics()


class _ChatSender:
    """Sends the --chat-message texts each time a chat stream of the session connects."""

    def __init__(self, session: Any, messages: tuple[str, ...]) -> None:
        self.session = session
        self.messages = messages
        NotificationCenter().add_observer(self, name="MediaStreamDidStart")

    def close(self) -> None:
        NotificationCenter().purge_observer(self)

    def handle_notification(self, notification: Any) -> None:
        if notification.sender is not self.session.chat or self.session.state != "ESTABLISHED":
            return
        for text in self.messages:
            self.session.send_message(text)


def expectations(session: Any, options: MediaOptions, digits: str, data: dict[str, Any]) -> JobResult | None:
    """Exit 6 (with data) when --expect-dtmf, --expect-audio or an --expect-* of the session's figures was not
    met, else None."""
    if options.expect_dtmf and not _subsequence(options.expect_dtmf.upper(), digits):
        return JobResult(ExitCode.MEDIA, f"expected DTMF {options.expect_dtmf!r}, received {digits!r}", data)
    if options.expect_audio and not session.audio_was_received:
        return JobResult(ExitCode.MEDIA, "no audio was received", data)
    return _quality_expectations(session, options.expectations, data)


def _outcome(session: Any, options: MediaOptions, events: _Events) -> JobResult:
    data: dict[str, Any] = {"session": session.notification_id, "audio_received": session.audio_was_received}
    if events.digits or options.expect_dtmf:
        data["dtmf_received"] = events.digits
    if options.dtmf:
        data["dtmf_sent"] = events.digits_sent
    if events.refused:
        first = events.refused[0]
        return JobResult(ExitCode.REFUSED, f"chat message not delivered: {first.code} {first.reason or ''}".strip(),
                         {**data, "code": first.code})
    if events.dtmf_refused:
        first = events.dtmf_refused[0]
        return JobResult(ExitCode.REFUSED, f"DTMF {first.digit} not sent: {first.code} {first.reason}".strip(),
                         {**data, "code": first.code})
    if session.start_time and session.stop_time:
        data["duration"] = round((session.stop_time - session.start_time).total_seconds(), 3)
    quality = _quality_summary(session)
    if quality is not None:
        data["quality"] = quality
    if events.audio_failure is not None:
        return JobResult(ExitCode.MEDIA, f"audio failed: {events.audio_failure}", data)
    if events.failure is not None:  # established, then failed: the peer was lost (sipcli.liveness)
        failure = events.failure
        return JobResult(ExitCode.NETWORK, str(failure.reason), {**data, "code": int(failure.code or 0)})
    failed = expectations(session, options, events.digits, data)
    if failed is not None:
        return failed
    return JobResult(ExitCode.OK, "session ended", data)


def recording_path(directory: str, session: Any) -> str:
    """One WAV per session in directory, named by the session and the remote user (reduced to a safe token)."""
    remote = safe_token(session.remote_uri.user if session.remote_uri is not None else None)
    return path_in(directory, f"{safe_token(session.notification_id)}-{remote}.wav")


def browse_account(account: Any) -> None:
    """A runner ``prepare`` hook: the P2P account browses for neighbours this run (in memory, never saved)."""
    account.discovery.browse = True


async def started_services(account: Any) -> Any:
    """The account's running BonjourServices; JobFailed (exit 4) when mDNS could not start."""
    from sipcli import bonjour

    services = bonjour.services_of(account)
    if services is None:
        raise JobFailed(ExitCode.NETWORK, "neighbour discovery did not start")
    await services.wait_started()
    if services.error:
        raise JobFailed(ExitCode.NETWORK, services.error)
    return services
