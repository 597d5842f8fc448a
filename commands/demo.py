"""`sipcli demo`: a real session with no server: a `sipcli listen` on loopback, called with audio both ways and DTMF.

The listener runs as a child process (one SIP engine per process). Each of its JSON lines is relayed whole as the
data of a ``SIPCLIDemoListenerEvent`` line (sender ``demo/listener``; re-posting its notifications under their own
names would reach this process's observers), so both sides show on stdout and this process's summary is last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import junit_option
from sipcli.commands.runner import AccountChoice, JobContext, JobFailed, JobResult, run_job
from sipcli.commands.sessionjob import MediaOptions, drive_session

from sipcli.notification import NotificationCenter, NotificationData

__all__ = ["command"]

DIGITS = "1234#"


class _Listener:
    notification_id = "demo/listener"


class _Demo:
    notification_id = "demo"


async def _relay(process: asyncio.subprocess.Process, uri: asyncio.Future) -> None:
    """Relay each JSON line of the listener; resolve port once it takes calls (SIPCLIListenDidStart)."""
    assert process.stdout is not None
    center = NotificationCenter()
    sender = _Listener()
    async for raw in process.stdout:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if record.get("name") == "SIPCLIListenDidStart" and not uri.done():
            uri.set_result(record["data"]["uris"]["udp"])
        center.post_notification("SIPCLIDemoListenerEvent", sender=sender,
                                 data=NotificationData(**{k: v for k, v in record.items() if k != "v"}))
    if not uri.done():
        uri.set_exception(JobFailed(ExitCode.NETWORK, "the demo listener did not start"))


async def _demo(context: JobContext, duration: float) -> JobResult:
    from sipcli.session import Session
    from sipcli.wav import sine, write_wav

    NotificationCenter().post_notification("SIPCLIDemoWillStart", sender=_Demo(), data=NotificationData(
        does=f"start `sipcli listen` on loopback and call it for {duration:g} s: a 440 Hz tone to it, an 880 Hz "
             f"tone back, DTMF {DIGITS} to it; no server, no configuration",
        success=f"audio received on both sides and the listener got {DIGITS}: exit 0"))
    with tempfile.TemporaryDirectory(prefix="sipcli-demo-") as workdir:
        caller_tone, listener_tone = Path(workdir) / "caller-440hz.wav", Path(workdir) / "listener-880hz.wav"
        write_wav(caller_tone, sine(440, 2))
        write_wav(listener_tone, sine(880, 2))
        # -P: the child must not import from the current directory (a source checkout's ./sipcli/ would shadow
        # the installed package, which has sipcli.commands).
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "sipcli.commands", "--config-dir", str(Path(workdir) / "config"), "listen",
            "--local-ip", "127.0.0.1", "--auto-answer", "--count", "1", "--play", str(listener_tone),
            "--expect-dtmf", DIGITS, "--expect-audio", stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        uri: asyncio.Future = asyncio.get_running_loop().create_future()
        relay = asyncio.ensure_future(_relay(process, uri))
        try:
            listener_uri = await asyncio.wait_for(uri, 10)
            session = Session(context.account)
            session.connect(listener_uri)
            options = MediaOptions(play=str(caller_tone), record=str(Path(workdir) / "received.wav"), dtmf=DIGITS,
                                   dtmf_delay=0.3, duration=duration, expect_audio=True)
            result = await drive_session(session, options, answer_timeout=10)
            try:
                listener_code = await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                raise JobFailed(ExitCode.TIMEOUT, "the demo listener did not end") from None
            await relay
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                await process.wait()
            relay.cancel()
    if result.exit_code == ExitCode.OK and listener_code != 0:
        return JobResult(ExitCode(listener_code) if listener_code in iter(ExitCode) else ExitCode.MEDIA,
                         f"the listener ended with exit code {listener_code}", result.data)
    return result


@click.command("demo")
@click.option("--duration", type=click.FloatRange(2), default=3, show_default=True,
              help="How long the demo call lasts, in seconds.")
@junit_option
@click.pass_obj
def command(cli: Any, duration: float) -> None:
    """Call a `sipcli listen` started on loopback: a 440 Hz tone one way, 880 Hz the other, DTMF 1234#.

    Needs no configuration and no server; every event of both sides is a JSON line (the listener's come wrapped
    in SIPCLIDemoListenerEvent lines). Exit 0 when audio flowed both ways and the listener got the digits.
    """
    engine = {"local_ip": "127.0.0.1", "udp_port": 0, "tcp_port": None, "tls_port": None}

    async def job(context: JobContext) -> JobResult:
        return await _demo(context, duration)

    run_job(cli, job, choice=AccountChoice(p2p=True), engine=engine)
