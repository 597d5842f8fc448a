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
    MediaSetup,
    account_options,
    engine_options,
    media_options,
    proposal_options,
    writable_dir,
)
from sipcli.commands.runner import JobContext, JobFailed, JobResult, run_job
from sipcli.commands.sessionjob import (
    MediaOptions,
    check_codecs,
    drive_session,
    prepare_account,
    recording_path,
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

    def handle_notification(self, notification: Any) -> None:
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
        self.results.append(result)
        if self.count is not None and len(self.results) >= self.count:
            self.done.set()

    async def _session(self, session: Any) -> JobResult:
        if self.reject is not None:
            session.reject(is_busy=self.reject == "busy")
            await session.wait_ended()
            return JobResult(ExitCode.OK, "rejected")
        if self.auto_answer is None:
            await session.wait_ended()  # left ringing: reported, never answered
            return JobResult(ExitCode.OK, "not answered")
        if self.auto_answer:
            await asyncio.sleep(self.auto_answer)
            if session.state != "INCOMING":
                await session.wait_ended()
                return JobResult(ExitCode.OK, "cancelled before the answer")
        options = self.options
        if self.record_dir:
            options = MediaOptions(**{**vars(options), "record": recording_path(self.record_dir, session)})
        audio = "audio" in session.proposed_streams
        chat = self.chat and session.chat is not None
        if not audio:  # chat only: nothing to play, record or echo as audio
            options = MediaOptions(**{**vars(options), "play": None, "record": None, "echo": False})
        if self.chat and self.options.echo:  # a chat added later is echoed too
            echo_messages(session)
        return await drive_session(session, options, accept=lambda: session.accept(audio=audio, chat=chat))


def echo_messages(session: Any) -> None:
    """Send every chat message the session receives back to its sender. Through a relay a message can arrive
    before this side's chat stream is connected (MediaStreamDidStart): it is echoed once it is."""

    class Echo:
        def __init__(self) -> None:
            self.waiting: list[tuple[Any, str]] = []

        def handle_notification(self, notification: Any) -> None:
            if notification.name == "SIPSessionDidEnd":
                NotificationCenter().purge_observer(self)
            elif notification.name in ("MediaStreamDidStart", "SIPSessionDidStart"):
                if notification.sender in (session, session.chat):
                    waiting, self.waiting = self.waiting, []
                    for content, content_type in waiting:
                        self.echo(content, content_type)
            else:
                self.echo(notification.data.content, notification.data.content_type)

        def echo(self, content: Any, content_type: str) -> None:
            if session.state in ("TERMINATING", "TERMINATED"):
                return
            try:
                session.send_message(content, content_type)
            except SessionError:  # not established or not connected yet
                self.waiting.append((content, content_type))

    from sipcli.session import SessionError

    echo = Echo()
    NotificationCenter().add_observer(echo, name="SIPSessionGotMessage", sender=session)
    NotificationCenter().add_observer(echo, name="SIPSessionDidEnd", sender=session)
    NotificationCenter().add_observer(echo, name="SIPSessionDidStart", sender=session)
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
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop listening after this many seconds: exit 3 when no session arrived, else as after --count "
                   "(sessions still going are ended first) [default: listen until --count or interrupted].")
@click.option("--record", "record_dir", type=writable_dir, default=None,
              help="Record each session's received audio to a WAV file in this directory.")
@click.option("--dtmf", type=DTMF, metavar="DIGITS", default="",
              help="Send these DTMF digits in each answered session (each is reported as it is sent).")
@click.option("--dtmf-delay", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Seconds after a session starts before sending --dtmf.")
@click.option("--echo", is_flag=True, help="Send the received audio (and chat messages) back to the caller.")
@click.option("--chat", is_flag=True, help="Accept chat (MSRP) streams too [implies a short codec list].")
@click.option("--relay", type=RELAY, metavar="URI",
              help="With --chat: take chats through this MSRP relay (account credentials).")
@click.option("--advertise", is_flag=False, flag_value="", default=None, metavar="[NAME]",
              help="P2P: advertise this listener on the link (mDNS/DNS-SD) as NAME [default: the host name], "
                   "for `sipcli neighbours` and `sipcli call bonjour:NAME`.")
@proposal_options
@click.pass_obj
def command(cli: Any, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
            play: str | None, expect_dtmf: str, expect_audio: bool, duration: float | None,
            auto_answer: float | None, reject: str | None, count: int | None, timeout: float | None,
            record_dir: str | None, dtmf: str, dtmf_delay: float,
            echo: bool, chat: bool, relay: str | None, advertise: str | None, proposals: str,
            proposal_timeout: float | None) -> None:
    """Wait for incoming sessions (P2P on --port, or registered with an account) and report every event.

    The account is chosen as for `call` (--account, --from, the default account, else P2P; --p2p forces P2P).
    Without --auto-answer or --reject, sessions ring and are reported, never answered. An account that registers
    must be registered within 30 s (exit 3 otherwise). Exit codes: 0 after --count sessions, or after --timeout
    with at least one; 3 --timeout and no session arrived; 6 a media expectation failed in some session; 130
    interrupted (sessions ended, the account unregistered first); 1/3/4 when the account could not register.
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
                           expect_audio=expect_audio, duration=duration,
                           echo=echo, proposals=proposals, proposal_timeout=proposal_timeout)

    async def job(context: JobContext) -> JobResult:
        from sipcli.account import BonjourAccount

        if relay and isinstance(context.account, BonjourAccount):
            raise JobFailed(ExitCode.USAGE, "--relay needs an account (--account or --from): it authenticates "
                                            "with it")
        await check_codecs(media)
        await wait_ready(context.account, READY_TIMEOUT)
        if chat:
            from sipcli.chat import ChatSupport

            await ChatSupport().start()
            await ChatSupport().keep_spare(context.account)
        listener = _Listener(options, auto_answer, reject, count, record_dir, chat)
        NotificationCenter().add_observer(listener, name="SIPSessionNewIncoming")
        NotificationCenter().add_observer(listener, name="SIPEngineDidRefuseIncomingCall")
        _announce(context.account)
        try:
            if timeout is None:
                await listener.done.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listener.done.wait(), timeout)
        finally:
            NotificationCenter().purge_observer(listener)
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
            return JobResult(failed[0].exit_code, failed[0].reason, {**data, "failed": len(failed)})
        return JobResult(ExitCode.OK, f"{sessions} session(s) handled", data)

    prepare = chat_account(media, relay, False) if chat else prepare_account(media)
    if advertised_name is not None:
        prepare = _advertising(prepare, advertised_name)
    run_job(cli, job, choice=choice, engine=engine, prepare=prepare)
