"""What `call --chat`, `chat` and `listen --chat` share: the chat account setup, and driving one chat session
(with or without audio) from connect to hang-up."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import MediaSetup
from sipcli.commands.runner import JobResult
from sipcli.commands.sessionjob import (
    MediaOptions,
    expectations,
    prepare_account,
    run_audio_script,
    session_failure_result,
)

from sipcli.notification import NotificationCenter

__all__ = ["ChatOptions", "chat_account", "run_chat"]


@dataclass(frozen=True)
class ChatOptions:
    """What a chat session sends: --message texts (else stdin lines), their content type, CPIM or not."""

    messages: tuple[str, ...] = ()
    content_type: str = "text/plain"
    cpim: bool | None = None
    expect_messages: int = 0  # stay until this many messages were received (exit 6 when the session ends first)


def chat_account(media: MediaSetup, relay: str | None, msrp_tls: bool) -> Callable[[Any], None]:
    """A runner ``prepare`` hook for chat: codecs and SRTP as for any session (the library offers as many codecs
    as fit next to the chat line), the MSRP relay (as options.RELAY gives it) and transport for this run (in
    memory, never saved)."""
    prepare_media = prepare_account(media)

    def prepare(account: Any) -> None:
        prepare_media(account)
        if relay:
            account.msrp.relay = relay
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
        self.received = 0
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
        elif name == "SIPSessionGotMessage":
            self.received += 1
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


class _Digits:
    """The DTMF digits a session receives, and those it sent so far."""

    def __init__(self, session: Any) -> None:
        self.received = ""
        self.sent = ""
        NotificationCenter().add_observer(self, name="SIPSessionGotDTMF", sender=session)
        NotificationCenter().add_observer(self, name="SIPCLIDidSendDTMF", sender=session)

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "SIPSessionGotDTMF":
            self.received += notification.data.digit
        else:
            self.sent = notification.data.sent

    def close(self) -> None:
        NotificationCenter().purge_observer(self)


async def run_chat(session: Any, target: Any, options: MediaOptions, chat_options: ChatOptions,
                   timeout: float | None, routes: list[Any] | None = None) -> JobResult:
    """Connect a chat session (with audio when options.audio), send, wait for the delivery reports, hang up;
    the outcome as a JobResult. With audio, the audio options (play, DTMF, hold, expectations) apply too."""
    chat = _Chat(session)
    messages, duration = chat_options.messages, options.duration
    digits = _Digits(session) if options.audio else None
    script: asyncio.Future | None = None
    try:
        session.connect(target, routes=routes or (), audio=options.audio, chat=True)
        session.chat.cpim = chat_options.cpim
        if options.audio and options.play:
            session.play_audio(options.play)
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
        if options.audio:
            script = run_audio_script(session, options)
        ended = asyncio.ensure_future(session.wait_ended())
        sender = asyncio.ensure_future(_send_all(chat, messages, chat_options.content_type))
        limit = asyncio.ensure_future(asyncio.sleep(duration)) if duration is not None else None
        while not ended.done():
            chat.changed.clear()
            if sender.done() and not chat.pending and duration is None and \
                    chat.received >= chat_options.expect_messages and (digits is None or digits.sent == options.dtmf):
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
        result = _result(session, chat)
        if result.exit_code == ExitCode.OK and chat.received < chat_options.expect_messages:
            return JobResult(ExitCode.MEDIA, f"expected {chat_options.expect_messages} message(s), received "
                                             f"{chat.received}", result.data)
        if digits is not None and result.exit_code == ExitCode.OK:
            result.data.update(dtmf_received=digits.received, audio_received=session.audio_was_received)
            failed = expectations(session, options, digits.received, result.data)
            if failed is not None:
                return failed
        return result
    finally:
        chat.close()
        if digits is not None:
            digits.close()
        if script is not None:
            script.cancel()
