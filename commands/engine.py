"""`sipcli engine`: what the installed SIP engine (the pjsua2 bindings) can do, detected from the library."""

from __future__ import annotations

from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.runner import AccountChoice, JobContext, JobResult, run_job

__all__ = ["command"]


@click.command("engine")
@click.pass_obj
def command(cli: Any) -> None:
    """Start the SIP engine on loopback (no account, no network traffic) and report its capabilities.

    The capabilities are in the SIPEngineDidStart line (data.capabilities) and in the SIPCLIDidEnd summary: pjsua2
    and pjproject versions, build ("sipcli" for the engine built by engine/build.py), max_calls, conference_ports,
    ipv6, tls_versions, openssl, codecs, srtp (keying), chat_only_offers, sdp_buffer (largest SDP in bytes that
    reaches sipcli whole), max_packet (largest SIP message), oversized_answers (a larger
    one over TCP/TLS is answered 413/513), ioqueue. With --format text they show as a table.

    Exit codes: 0 reported; 4 the engine could not start or is not installed.
    """

    async def job(context: JobContext) -> JobResult:
        capabilities = context.application.engine.capabilities
        data = capabilities.as_dict()
        summary = (f"pjsua2 {data['pjsua2']} ({data['build']} build): {data['max_calls']} calls, "
                   f"IPv6 {'yes' if data['ipv6'] else 'no'}, TLS {'/'.join(data['tls_versions']) or 'none'}")
        return JobResult(ExitCode.OK, summary, {"capabilities": data})

    engine = {"local_ip": "127.0.0.1", "udp_port": 0, "tcp_port": None, "tls_port": None}
    run_job(cli, job, choice=AccountChoice(), engine=engine, sessions=False)
