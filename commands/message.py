"""`sipcli message URI [TEXT]`: send pager-mode instant messages (RFC 3428 MESSAGE), one JSON line per outcome."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode, fail_usage
from sipcli.commands.options import SIP_URI, AccountChoice, account_options, engine_options
from sipcli.commands.runner import JobContext, JobFailed, JobResult, run_job
from sipcli.commands.sessionjob import tls_transport, wait_ready

__all__ = ["command"]

WINDOW = 16  # MESSAGEs in flight at once (each is its own transaction; RFC 3428 promises no ordering anyway)


async def _texts(texts: tuple[str, ...]) -> AsyncIterator[str]:
    """The given texts, else each stdin line (read as it comes, without blocking the loop)."""
    if texts:
        for text in texts:
            yield text
        return
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\r\n")


def _outcome_code(code: int, originator: str) -> ExitCode:
    if 200 <= code < 300:
        return ExitCode.OK
    if originator == "remote":
        return ExitCode.REFUSED
    return ExitCode.TIMEOUT if code == 408 else ExitCode.NETWORK


@click.command("message")
@click.argument("uri", type=SIP_URI)
@click.argument("text", required=False)
@account_options
@engine_options
@click.option("--message", "messages", metavar="TEXT", multiple=True,
              help="Send TEXT as one MESSAGE (repeatable); without TEXT or --message, each stdin line is one.")
@click.option("--content-type", default="text/plain", show_default=True, help="Content type of each message.")
@click.option("--cpim", is_flag=True, help="Wrap each message in message/cpim (RFC 3862) with From, To, DateTime.")
@click.option("--composing", is_flag=True,
              help="Send an RFC 3994 'active' composing indication before each message (a message itself ends it).")
@click.option("--local-ip", metavar="IP", help="Bind SIP to this address [default: all].")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Local SIP port (UDP and TCP); 0: any free port.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=32.0, show_default=True,
              help="Seconds to wait for each message's final response (exit 3 when none came).")
@click.pass_obj
def command(cli: Any, uri: Any, text: str | None, choice: AccountChoice, engine: dict[str, Any],
            messages: tuple[str, ...], content_type: str, cpim: bool, composing: bool, local_ip: str | None, port: int,
            timeout: float) -> None:
    """Send each message to URI as a SIP MESSAGE (pager mode) and report each outcome as a JSON line.

    Account, ad hoc (--from) and P2P (sip:user@host:port, no account) as in `call`. A sips: or ;transport=tls
    URI, or a proxy that asks for TLS, sends over TLS, verified as `call` verifies it (--tls-ca).

    Exit codes: 0 every message got a 2xx; 1 one was refused (its SIP code is in its SIPMessageDidFail line); 3 no
    final response within --timeout; 4 transport failure (a failed TLS verification too, or a message larger than
    the SIP engine can send).
    """
    target = uri
    if "/" not in content_type or any(c in content_type for c in "\r\n"):
        fail_usage(f"--content-type: not a MIME type: {content_type!r}")
    texts = ((text,) if text is not None else ()) + messages

    async def job(context: JobContext) -> JobResult:
        from sipcli.account import BonjourAccount
        from sipcli.cpim import CPIM_TYPE, encode_cpim, format_address
        from sipcli.message import COMPOSING_TYPE, Message, build_iscomposing

        account = context.account
        if isinstance(account, BonjourAccount) and not target.port and not target.user:
            raise JobFailed(ExitCode.USAGE, f"URI: {target} has no user or port; in P2P mode message "
                                            "sip:user@host:port")
        await wait_ready(account, timeout)
        sender = f"sip:{account.id}" if hasattr(account, "sip") else f"sip:{account.contact}"
        slots = asyncio.Semaphore(WINDOW)
        codes: list[ExitCode] = []
        tasks: set[asyncio.Task] = set()

        async def send(body: bytes, body_type: str, counted: bool = True) -> None:
            async with slots:
                message = Message(sender, target, None, body_type, body, account=account)
                await message.send(timeout)
                if counted:
                    codes.append(_outcome_code(*message.outcome))

        async for line in _texts(texts):
            body, body_type = line.encode("utf-8"), content_type
            if cpim:
                body = encode_cpim(body, content_type, sender=format_address(sender), recipients=[format_address(
                    str(target))], timestamp=datetime.now(UTC))
                body_type = CPIM_TYPE
            if composing:
                await send(build_iscomposing("active", content_type, refresh=60), COMPOSING_TYPE, counted=False)
            task = asyncio.get_running_loop().create_task(send(body, body_type))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(0)
        if tasks:
            await asyncio.gather(*tasks)
        delivered = codes.count(ExitCode.OK)
        data = {"sent": len(codes), "delivered": delivered}
        if not codes:
            return JobResult(ExitCode.USAGE, "no message to send (give TEXT, --message or stdin lines)", data)
        for failure in (ExitCode.REFUSED, ExitCode.NETWORK, ExitCode.TIMEOUT):
            if failure in codes:
                return JobResult(failure, f"{len(codes) - delivered} of {len(codes)} message(s) not delivered", data)
        return JobResult(ExitCode.OK, f"{delivered} message(s) delivered", data)

    engine = {**engine, "udp_port": port, "tcp_port": port, "tls_port": None}
    if local_ip:
        engine["local_ip"] = local_ip
    run_job(cli, job, choice=choice, engine=engine, sessions=False, engine_for=tls_transport(target))
