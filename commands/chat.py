"""`sipcli chat URI`: an MSRP chat session; stdin lines (or --message) are sent, everything is reported."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import junit_option
from sipcli.commands.runner import (
    AccountChoice,
    JobContext,
    JobFailed,
    JobResult,
    account_options,
    engine_options,
    parse_target,
    run_job,
)
from sipcli.commands.sessionjob import (
    media_options,
    prepare_account,
    session_failure_result,
    tls_transport,
    wait_ready,
)

from sipcli.notification import NotificationCenter

__all__ = ["chat_account", "command"]


def chat_account(codecs: tuple[str, ...], srtp: str | None, relay: str | None, msrp_tls: bool) -> Any:
    """A runner ``prepare`` hook for chat: codecs and SRTP as for any session (the library offers as many codecs
    as fit next to the chat line), the MSRP relay and transport for this run (in memory, never saved)."""
    from sipcli.chat import relay_uri

    media = prepare_account(codecs, srtp)

    def prepare(account: Any) -> None:
        media(account)
        if relay:
            try:
                uri = relay_uri(relay)
            except ValueError as error:
                raise JobFailed(ExitCode.USAGE, f"--relay: {error}") from None
            account.msrp.relay = f"{uri.host}:{uri.port};transport={'tls' if uri.use_tls else 'tcp'}"
        if msrp_tls:
            account.msrp.transport = "tls"

    return prepare


class _Chat:
    """Follows one chat session: what is pending, what failed, when it can end."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pending: set[str] = set()
        self.refused: list[Any] = []
        self.delivered = 0
        self.failure: Any = None
        self.chat_failure: str | None = None
        self.changed = asyncio.Event()
        center = NotificationCenter()
        center.add_observer(self, sender=session)
        center.add_observer(self, name="MediaStreamDidStart")
        center.add_observer(self, name="MediaStreamDidFail")

    def close(self) -> None:
        NotificationCenter().purge_observer(self)

    def handle_notification(self, notification: Any) -> None:
        name, data = notification.name, notification.data
        if name.startswith("MediaStream") and notification.sender is not self.session.chat:
            return
        if name == "SIPSessionDidDeliverMessage":
            self.pending.discard(data.message_id)
            self.delivered += 1
        elif name == "SIPSessionDidNotDeliverMessage":
            self.pending.discard(data.message_id)
            self.refused.append(data)
        elif name == "SIPSessionDidFail":
            self.failure = data
        elif name == "MediaStreamDidFail":
            self.chat_failure = data.reason
        self.queue.put_nowait(name)
        self.changed.set()

    async def wait_for(self, *names: str) -> str:
        while True:
            name = await self.queue.get()
            if name in names:
                return name


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """Thread: every stdin line into queue, then None at EOF (a pipe, or Ctrl-D on a terminal)."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def _send_all(chat: _Chat, messages: tuple[str, ...], content_type: str) -> None:
    """Send --message texts, or stdin lines, until exhausted."""
    session = chat.session
    lines: asyncio.Queue = asyncio.Queue()
    if messages:
        for text in messages:
            lines.put_nowait(text)
        lines.put_nowait(None)
    else:
        threading.Thread(target=_read_lines, args=(asyncio.get_running_loop(), lines), daemon=True).start()
    while (text := await lines.get()) is not None:
        if session.state != "ESTABLISHED" or not session.has_chat:
            return
        if text:
            chat.pending.add(session.send_message(text, content_type))


def _chat_failure_result(reason: str | None) -> JobResult:
    """A chat stream that failed before it started: the peer declining it is a refusal (exit 1), anything else
    a network failure."""
    from sipcli.streams.chat import DECLINED

    if reason == DECLINED:
        return JobResult(ExitCode.REFUSED, reason)
    return JobResult(ExitCode.NETWORK, reason or "MSRP connection failed")


def _result(session: Any, chat: _Chat) -> JobResult:
    sent = chat.delivered + len(chat.refused) + len(chat.pending)
    data = {"session": session.notification_id, "sent": sent, "delivered": chat.delivered,
            "not_delivered": len(chat.refused)}
    if chat.refused:
        first = chat.refused[0]
        return JobResult(ExitCode.REFUSED, f"message not delivered: {first.code} {first.reason or ''}".strip(),
                         {**data, "code": first.code})
    if chat.chat_failure:
        return JobResult(ExitCode.NETWORK, chat.chat_failure, data)
    if chat.pending:
        return JobResult(ExitCode.NETWORK, f"{len(chat.pending)} message(s) without a delivery report", data)
    return JobResult(ExitCode.OK, "session ended", data)


async def run_chat(session: Any, target: Any, audio: bool, messages: tuple[str, ...], content_type: str,
                   cpim: bool | None, duration: float | None, timeout: float | None) -> JobResult:
    """Connect a chat session, send, wait for the delivery reports, hang up; the outcome as a JobResult."""
    chat = _Chat(session)
    try:
        session.connect(target, audio=audio, chat=True)
        session.chat.cpim = cpim
        waiting = chat.wait_for("MediaStreamDidStart", "MediaStreamDidFail", "SIPSessionDidEnd")
        try:
            first = await asyncio.wait_for(waiting, timeout) if timeout else await waiting
        except TimeoutError:
            session.end()
            await session.wait_ended()
            return JobResult(ExitCode.TIMEOUT, f"no chat within {timeout:g} s")
        if first == "SIPSessionDidEnd":
            return session_failure_result(chat.failure) if chat.failure is not None else \
                JobResult(ExitCode.NETWORK, chat.chat_failure or "the session ended before the chat started")
        if first == "MediaStreamDidFail":
            session.end()
            await session.wait_ended()
            return _chat_failure_result(chat.chat_failure)
        ended = asyncio.ensure_future(session.wait_ended())
        sender = asyncio.ensure_future(_send_all(chat, messages, content_type))
        limit = asyncio.ensure_future(asyncio.sleep(duration)) if duration is not None else None
        while not ended.done():
            chat.changed.clear()
            if sender.done() and not chat.pending and duration is None:
                break
            if limit is not None and limit.done():
                break
            waits = [ended, asyncio.ensure_future(chat.changed.wait())]
            waits += [task for task in (sender, limit) if task is not None and not task.done()]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            waits[1].cancel()
        for task in (sender, limit):
            if task is not None:
                task.cancel()
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            raise sender.exception()
        if not ended.done():
            session.end()
        await session.wait_ended()
        return _result(session, chat)
    finally:
        chat.close()


@click.command("chat")
@click.argument("uri")
@account_options
@engine_options
@media_options
@click.option("--message", "messages", metavar="TEXT", multiple=True,
              help="Send this message (repeatable) and hang up once all are delivered [default: stdin lines].")
@click.option("--content-type", default="text/plain", show_default=True, help="Content type of the messages.")
@click.option("--cpim/--no-cpim", default=None, help="Wrap messages in CPIM [default: when the peer accepts it].")
@click.option("--relay", metavar="URI", help="Use this MSRP relay (msrp://host:port;tcp), with the account's "
                                             "credentials.")
@click.option("--msrp-tls", is_flag=True, help="Offer MSRP over TLS (the answerer needs tls.certificate).")
@click.option("--audio", is_flag=True, help="Audio next to the chat.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
              help="Give up (exit 3) when the chat is not up within this many seconds.")
@junit_option
@click.pass_obj
def command(cli: Any, uri: str, choice: AccountChoice, engine: dict[str, Any], codecs: tuple[str, ...],
            srtp: str | None, play: str | None, expect_dtmf: str, expect_audio: bool, duration: float | None,
            messages: tuple[str, ...], content_type: str, cpim: bool | None, relay: str | None, msrp_tls: bool,
            audio: bool, timeout: float | None) -> None:
    """Chat with URI over MSRP: each stdin line (or --message) is a message; received messages and delivery
    reports are JSON lines. Ends after stdin EOF (or the last --message) once everything was delivered.

    Exit codes: 0 everything sent was delivered; 1 a message (or the session) was refused; 3 --timeout; 4 the
    MSRP connection failed; 2 usage; 130 interrupted.
    """
    target = parse_target(uri)
    if choice.is_p2p and not target.port and not target.user:
        raise click.UsageError(f"URI: {uri} has no user or port; in P2P mode chat with sip:user@host:port")
    if relay and choice.is_p2p:
        raise click.UsageError("--relay needs an account (--account or --from): it authenticates with it")

    async def job(context: JobContext) -> JobResult:
        from sipcli.session import Session

        await wait_ready(context.account, timeout or 30)
        session = Session(context.account)
        return await run_chat(session, target, audio, messages, content_type, cpim, duration, timeout)

    run_job(cli, job, choice=choice, engine=engine, prepare=chat_account(codecs, srtp, relay, msrp_tls),
            chat=True, engine_for=tls_transport(target))

