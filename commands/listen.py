"""`sipcli listen`: wait for incoming sessions and answer (or refuse) them, reporting every event."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import click
from sipcli.commands.chatjob import chat_account
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import (
    DTMF,
    READY_TIMEOUT,
    RELAY,
    AccountChoice,
    Expectations,
    MediaSetup,
    account_options,
    engine_options,
    expectation_options,
    junit_option,
    media_options,
    proposal_options,
    writable_dir,
)
from sipcli.commands.pager import MessageCounter, message_options
from sipcli.commands.runner import JobContext, JobFailed, JobResult, run_job
from sipcli.commands.sessionjob import (
    MediaOptions,
    drive_session,
    expected_code_result,
    prepare_account,
    recording_path,
    tls_transport,
    wait_ready,
)

from sipcli.notification import NotificationCenter, NotificationData

__all__ = ["command"]



class _Listener:
    """Handles each SIPSessionNewIncoming: refuse, or answer after a delay and drive the session to its end."""

    def __init__(self, options: MediaOptions, auto_answer: float | None, reject: str | None, count: int | None,
                 record_dir: str | None, chat: bool = False) -> None:
        self.options = options
        self.chat = chat
        self.auto_answer = auto_answer
        self.reject = reject
        self.count = count
        self.record_dir = record_dir
        self.results: list[JobResult] = []
        self.tasks: set[asyncio.Task] = set()
        self.sessions: set[Any] = set()  # those being handled
        self.over_limit = 0  # INVITEs pjsua refused (486) because its call limit was reached
        self.done = asyncio.Event()
        self.local_failures: set[Any] = set()  # sessions that failed on our side before they started

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "SIPSessionDidFail":
            if notification.data.originator == "local":
                self.local_failures.add(notification.sender)
            return
        if notification.name == "SIPEngineDidRefuseIncomingCall":  # over the engine's call limit: reported
            self.over_limit += 1
            return
        if self.count is not None and len(self.results) + len(self.tasks) >= self.count:
            return  # beyond --count: leave it ringing; the process is about to end
        task = asyncio.get_running_loop().create_task(self._handle(notification.sender))
        self.tasks.add(task)
        self.sessions.add(notification.sender)

    async def _handle(self, session: Any) -> None:
        try:
            result = await self._session(session)
        except Exception as error:
            result = JobResult(ExitCode.NETWORK, f"{session.notification_id}: {error}")
        self.tasks.discard(asyncio.current_task())
        self.sessions.discard(session)
        self.local_failures.discard(session)
        if result is None:
            return  # an offer the engine refused (reported by the session): not one of the --count sessions
        self.results.append(result)
        if self.count is not None and len(self.results) >= self.count:
            self.done.set()

    async def _ended_unanswered(self, session: Any) -> JobResult | None:
        """A session that ended before we answered: None (not counted) when the engine refused its offer."""
        await session.wait_ended()
        return None if session in self.local_failures else JobResult(ExitCode.OK, "cancelled before the answer")

    async def _session(self, session: Any) -> JobResult | None:
        if session.state != "INCOMING":  # refused by the engine at once (e.g. IPv6 media), or cancelled
            return await self._ended_unanswered(session)
        if self.reject is not None:
            session.reject(is_busy=self.reject == "busy")
            await session.wait_ended()
            code = 486 if self.reject == "busy" else 603
            return expected_code_result(JobResult(ExitCode.OK, "rejected", {"code": code}), self.options.expectations)
        if self.auto_answer is None:
            await session.wait_ended()  # left ringing: reported, never answered
            return JobResult(ExitCode.OK, "not answered")
        if self.auto_answer:
            await asyncio.sleep(self.auto_answer)
            if session.state != "INCOMING":
                return await self._ended_unanswered(session)
        options = self.options
        if self.record_dir:
            options = MediaOptions(**{**vars(options), "record": recording_path(self.record_dir, session)})
        audio = "audio" in session.proposed_streams
        chat = self.chat and session.chat is not None
        if not audio and not chat:
            return await _refuse_unaccepted_streams(session)
        if not audio:  # chat only: nothing to play, record or echo as audio
            options = MediaOptions(**{**vars(options), "play": None, "record": None, "echo": False})
        if self.chat and self.options.echo:  # a chat added later is echoed too
            echo_messages(session)
        result = await drive_session(session, options, accept=lambda: session.accept(audio=audio, chat=chat))
        if session.start_time is None and session in self.local_failures:
            return None  # our 200 OK could not go out: pjsua refused the offer (488)
        return result


async def _refuse_unaccepted_streams(session: Any) -> JobResult:
    """An offer with nothing this listener accepts (chat without --chat): declined (603), and a refusal."""
    session.reject()
    await session.wait_ended()
    offered = ", ".join(session.proposed_streams) or "no stream"
    return JobResult(ExitCode.REFUSED, f"refused: 603 Decline (offered: {offered}; chat is accepted with --chat)",
                     {"code": 603})


def echo_messages(session: Any) -> None:
    """Send every chat message the session receives back to its sender. Through a relay a message can arrive
    before this side's chat stream is connected (MediaStreamDidStart): it is echoed once it is."""

    class Echo:
        """Messages that arrive before the session and its chat stream started (through a relay the caller's
        first message can beat the ACK) are echoed once they did: send_message() needs both."""

        def __init__(self) -> None:
            self.early: list[tuple[str, str]] = []

        def handle_notification(self, notification: Any) -> None:
            if notification.name == "SIPSessionDidEnd":
                NotificationCenter().purge_observer(self)
            elif notification.name in ("SIPSessionDidStart", "MediaStreamDidStart"):
                if session.state == "ESTABLISHED" and session.has_chat:
                    early, self.early = self.early, []
                    for content, content_type in early:
                        session.send_message(content, content_type)
            elif session.state == "ESTABLISHED" and session.has_chat:
                session.send_message(notification.data.content, notification.data.content_type)
            elif session.state in ("INCOMING", "ACCEPTING", "ESTABLISHED"):
                self.early.append((notification.data.content, notification.data.content_type))

    echo = Echo()
    for name in ("SIPSessionGotMessage", "SIPSessionDidStart", "SIPSessionDidEnd"):
        NotificationCenter().add_observer(echo, name=name, sender=session)
    NotificationCenter().add_observer(echo, name="MediaStreamDidStart")


def _announce(account: Any) -> None:
    """SIPCLIListenDidStart: calls are taken from now on, at these URIs (scripts wait for this line)."""
    contact = account.contact
    uris = {transport: str(contact[transport]) for transport in contact.transports}
    NotificationCenter().post_notification("SIPCLIListenDidStart", sender=account,
                                           data=NotificationData(account=account, uris=uris))


def _advertised_name(advertise: str | None) -> str | None:
    """The DNS-SD instance name for --advertise (None: not advertising); usage error when it cannot be one."""
    if advertise is None:
        return None
    name = advertise.strip() or socket.gethostname().split(".")[0]
    if not name or len(name.encode("utf-8")) > 63 or any(ord(c) < 32 for c in name):
        raise click.UsageError(f"--advertise: {advertise!r} is not a DNS-SD instance name (1-63 bytes, printable)")
    return name


def _advertising(prepare: Callable[[Any], None], name: str) -> Callable[[Any], None]:
    """prepare, and then: the P2P account publishes itself as name this run (in memory, never saved)."""

    def advertise(account: Any) -> None:
        prepare(account)
        account.display_name = name
        account.discovery.publish = True

    return advertise


@click.command("listen")
@account_options
@engine_options
@media_options
@click.option("--auto-answer", type=click.FloatRange(0), is_flag=False, flag_value=0.0, default=None,
              metavar="[DELAY]", help="Answer every incoming session, after DELAY seconds (default 0).")
@click.option("--reject", type=click.Choice(["busy", "decline"]), default=None,
              help="Refuse every incoming session with 486 Busy Here or 603 Decline.")
@click.option("--count", type=click.IntRange(1), default=None, help="Exit after this many sessions ended.")
@click.option("--record", "record_dir", type=writable_dir, default=None,
              help="Record each session's received audio to a WAV file in this directory (named after the "
                   "caller's user, reduced to a safe token).")
@click.option("--dtmf", type=DTMF, metavar="DIGITS", default="",
              help="Send these DTMF digits in each answered session (each is reported as it is sent).")
@click.option("--dtmf-delay", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Seconds after a session starts before sending --dtmf.")
@click.option("--echo", is_flag=True, help="Send the received audio (and chat messages) back to the caller.")
@click.option("--chat", is_flag=True, help="Accept chat (MSRP) streams too.")
@click.option("--relay", type=RELAY, metavar="URI",
              help="With --chat: take chats through this MSRP relay (account credentials).")
@click.option("--advertise", is_flag=False, flag_value="", default=None, metavar="[NAME]",
              help="P2P: advertise this listener on the link (mDNS/DNS-SD) as NAME [default: the host name], "
                   "for `sipcli neighbours` and `sipcli call bonjour:NAME`.")
@click.option("--tls-certificate", type=click.Path(exists=True, dir_okay=False), default=None, metavar="PEM",
              help="Accept SIP over TLS with this certificate and its key (one PEM) [default: setting "
                   "tls.certificate; without one, no TLS listener].")
@click.option("--tls-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Local SIP port for TLS, when there is a certificate; 0: any free port.")
@proposal_options
@message_options
@expectation_options
@junit_option
@click.pass_obj
def command(cli: Any, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
            play: str | None, expect_dtmf: str, expect_audio: bool, duration: float | None,
            auto_answer: float | None, reject: str | None, count: int | None, record_dir: str | None, dtmf: str,
            dtmf_delay: float, echo: bool, chat: bool, relay: str | None, advertise: str | None,
            tls_certificate: str | None, tls_port: int, proposals: str, proposal_timeout: float | None,
            messages: int | None, timeout: float | None, expectations: Expectations,
            stats_interval: float | None) -> None:
    """Wait for incoming sessions (P2P on --port, or registered with an account) and report every event.

    The account is chosen as for `call` (--account, --from, the default account, else P2P; --p2p forces P2P).
    Without --auto-answer or --reject, sessions ring and are reported, never answered. An account that registers
    must be registered within 30 s (exit 3 otherwise). An offer this engine cannot take is refused with 488 and
    reported with its reason (IPv6 media: SIPSessionDidFail, originator "local"; no codec in common, or no audio
    at all: SIPSessionManagerDidRefuseSession); it is not one of the --count sessions: listen keeps serving.

    Exit codes: 0 after --count sessions (or --messages MESSAGEs), or after --timeout with at least one session;
    1 a session failed on the caller's side (it cancelled while being answered, or refused a chat message; the
    SIP code is in the JSON), or it offered only streams not accepted here (chat without --chat: declined with
    603); 3 --timeout and no session arrived (with --messages: fewer MESSAGEs came), or an answered session was
    never ACKed; 4 a session's peer was lost mid-call (--rtp-timeout); 6 a media expectation (--expect-*) failed
    in some session; 130 interrupted (sessions ended, the account unregistered first); 1/3/4 when the account
    could not register.
    """
    if auto_answer is not None and reject is not None:
        raise click.UsageError("--auto-answer and --reject are exclusive")
    if relay and not chat:
        raise click.UsageError("--relay goes with --chat")
    if relay and choice.p2p:
        raise click.UsageError("--relay needs an account (--account or --from): it authenticates with it")
    if advertise is not None and choice.is_explicit:
        raise click.UsageError("--advertise is for P2P mode (no --account or --from)")
    advertised_name = _advertised_name(advertise)
    if advertised_name is not None:
        choice = AccountChoice(p2p=True)  # advertising is P2P, whatever the default account
    options = MediaOptions(play=play, dtmf=dtmf, dtmf_delay=dtmf_delay, expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, echo=echo, proposals=proposals,
                           proposal_timeout=proposal_timeout, expectations=expectations,
                           stats_interval=stats_interval)

    async def job(context: JobContext) -> JobResult:
        from sipcli.account import BonjourAccount

        if relay and isinstance(context.account, BonjourAccount):
            raise JobFailed(ExitCode.USAGE, "--relay needs an account (--account or --from): it authenticates "
                                            "with it")
        await wait_ready(context.account, READY_TIMEOUT)
        if chat:
            from sipcli.chat import ChatSupport  # started by the application (run_job chat=True)

            await ChatSupport().keep_spare(context.account)
        listener = _Listener(options, auto_answer, reject, count, record_dir, chat)
        NotificationCenter().add_observer(listener, name="SIPSessionNewIncoming")
        NotificationCenter().add_observer(listener, name="SIPSessionDidFail")
        pager = MessageCounter(messages)  # pager mode (issue 9)
        NotificationCenter().add_observer(listener, name="SIPEngineDidRefuseIncomingCall")
        _announce(context.account)
        try:
            ended = await pager.wait(listener.done if count is not None or messages is None else None, timeout)
        finally:
            NotificationCenter().purge_observer(listener)
            pager.close()
        if not ended and messages is not None and pager.received < messages:
            return JobResult(ExitCode.TIMEOUT, f"{pager.received} of {messages} message(s) within {timeout:g} s",
                             {"messages": pager.received})
        if messages is not None and count is None:
            return JobResult(ExitCode.OK, f"{pager.received} message(s) received", {"messages": pager.received})
        if listener.tasks:  # --timeout: end the sessions still going, and take their outcomes
            for session in list(listener.sessions):
                with contextlib.suppress(Exception):
                    session.end()
            await asyncio.gather(*listener.tasks, return_exceptions=True)
        failed = [result for result in listener.results if result.exit_code != ExitCode.OK]
        sessions = len(listener.results)
        data = {"sessions": sessions, **({"refused_over_limit": listener.over_limit} if listener.over_limit else {})}
        if timeout is not None and sessions == 0:
            return JobResult(ExitCode.TIMEOUT, f"no session arrived within {timeout:g} s", data)
        if failed:
            return JobResult(failed[0].exit_code, failed[0].reason, {**failed[0].data, **data, "failed": len(failed)})
        return JobResult(ExitCode.OK, f"{sessions} session(s) handled", data)

    prepare = chat_account(media, relay, False) if chat else prepare_account(media)
    if advertised_name is not None:
        prepare = _advertising(prepare, advertised_name)
    run_job(cli, job, choice=choice, engine=engine, prepare=prepare, chat=chat,
            engine_for=tls_transport(listen_port=tls_port, certificate=tls_certificate))
