"""`sipcli neighbours`: list the SIP user agents that advertise themselves on the link (mDNS/DNS-SD)."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.runner import AccountChoice, JobContext, JobResult, run_job
from sipcli.commands.sessionjob import browse_account, started_services

from sipcli.notification import NotificationCenter

__all__ = ["command"]


@click.command("neighbours")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=3.0, show_default=True,
              help="Browse this many seconds.")
@click.option("--expect", type=click.IntRange(1), default=None, metavar="N",
              help="Exit 0 as soon as N neighbours are present; exit 3 if fewer are found within --timeout.")
@click.option("--local-ip", metavar="IP",
              help="Browse on the interface of this address [default: the default route's].")
@click.pass_obj
def command(cli: Any, timeout: float, expect: int | None, local_ip: str | None) -> None:
    """Browse for SIP neighbours (_sipuri._udp/_tcp, _sipuris._tcp), e.g. `sipcli listen --advertise NAME`.

    Every neighbour found, changed or gone while browsing is one JSON line (BonjourAccountDidAddNeighbour,
    BonjourAccountDidUpdateNeighbour, BonjourAccountDidRemoveNeighbour; data: neighbour, name, display_name, host,
    uri, uris); call one with `sipcli call bonjour:NAME`. The last line counts those present at the end
    (neighbours) and all seen while browsing (seen).

    Exit codes: 0 browsed for --timeout seconds (also when none was found), or --expect N reached; 3 fewer than
    --expect N neighbours within --timeout; 4 mDNS could not start on the interface; 130 interrupted.
    """

    async def job(context: JobContext) -> JobResult:
        services = await started_services(context.account)
        enough = asyncio.Event()
        seen = set(services.neighbours)

        class Counter:
            def handle_notification(self, notification: Any) -> None:
                seen.add(notification.data.neighbour)
                if expect is not None and len(services.neighbours) >= expect:
                    enough.set()

        counter = Counter()
        NotificationCenter().add_observer(counter, name="BonjourAccountDidAddNeighbour", sender=context.account)
        if expect is not None and len(services.neighbours) >= expect:
            enough.set()
        interrupted = False
        try:
            await asyncio.wait_for(enough.wait(), timeout)
        except TimeoutError:
            pass
        except asyncio.CancelledError:  # SIGINT/SIGTERM: still say what was found (exit 130 all the same)
            interrupted = True
        finally:
            NotificationCenter().purge_observer(counter)
        present = len(services.neighbours)
        data = {"neighbours": present, "seen": len(seen)}
        if interrupted:
            return JobResult(ExitCode.INTERRUPTED, "interrupted", data)
        if expect is not None and present < expect:
            return JobResult(ExitCode.TIMEOUT, f"{present} of {expect} neighbour(s) found within {timeout:g} s",
                             data)
        return JobResult(ExitCode.OK, f"{present} neighbour(s) present ({len(seen)} seen)", data)

    engine = {"udp_port": 0, "tcp_port": None, "tls_port": None}
    if local_ip:
        engine["local_ip"] = local_ip
    run_job(cli, job, choice=AccountChoice(p2p=True), engine=engine, prepare=browse_account, sessions=False)
