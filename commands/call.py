"""`sipcli call URI`: place an audio call, script it (play, record, DTMF, hold), report every event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import Expectations, expectation_options, junit_option
from sipcli.commands.runner import (
    AccountChoice,
    JobContext,
    JobFailed,
    JobResult,
    account_options,
    engine_options,
    fail_usage,
    parse_target,
    run_job,
)
from sipcli.commands.sessionjob import (
    MediaOptions,
    drive_session,
    media_options,
    prepare_account,
    proposal_options,
    tls_transport,
    wait_ready,
)

__all__ = ["call_options", "command", "run_call"]

NEIGHBOUR_TIMEOUT = 5.0  # seconds to find a bonjour:NAME neighbour when --timeout is not given


def call_options(command: Any) -> Any:
    """The options of `call` that `record` shares."""
    for decorator in reversed([
        click.option("--dtmf", metavar="DIGITS", default="", help="Send these DTMF digits once the call starts."),
        click.option("--dtmf-delay", type=click.FloatRange(0), default=1.0, show_default=True,
                     help="Seconds after the call starts before sending --dtmf."),
        click.option("--dtmf-info", is_flag=True, help="Send DTMF as SIP INFO instead of RFC 4733 events."),
        click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
                     help="Stop ringing (CANCEL, exit 3) when not answered within this many seconds."),
        click.option("--hold-after", type=click.FloatRange(0), default=None,
                     help="Put the call on hold this many seconds after it starts."),
        click.option("--unhold-after", type=click.FloatRange(0), default=None,
                     help="Take the call off hold this many seconds after it starts."),
    ]):
        command = decorator(command)
    return command


def run_call(cli: Any, uri: str, choice: AccountChoice, engine: dict[str, Any], codecs: tuple[str, ...],
             srtp: str | None, options: MediaOptions, timeout: float | None) -> None:
    """Run the call job and exit with its code."""
    neighbour_name = uri[len("bonjour:"):].strip() if uri.lower().startswith("bonjour:") else None
    if neighbour_name is not None:
        if not neighbour_name:
            fail_usage("URI: bonjour:NAME needs a neighbour name (see `sipcli neighbours`)")
        if not choice.is_p2p:
            fail_usage("URI: bonjour:NAME is for P2P mode (no --account or --from)")
    target = parse_target(uri) if neighbour_name is None else None
    if options.dtmf and any(d not in "0123456789*#ABCDabcd" for d in options.dtmf):
        fail_usage(f"--dtmf: not DTMF digits: {options.dtmf!r} (0-9, *, #, A-D)")
    if options.unhold_after is not None and options.hold_after is None:
        fail_usage("--unhold-after goes with --hold-after")
    if target is not None and choice.is_p2p and not target.port and not target.user:
        fail_usage(f"URI: {uri} has no user or port; in P2P mode call sip:user@host:port")
    if options.remove_chat_after is not None and (options.add_chat_after is None or
                                                  options.remove_chat_after <= options.add_chat_after):
        fail_usage("--remove-chat-after goes with an earlier --add-chat-after")
    if options.chat_messages and options.add_chat_after is None:
        fail_usage("--chat-message goes with --add-chat-after")
    with_chat = options.add_chat_after is not None

    async def job(context: JobContext) -> JobResult:
        from sipcli.session import Session

        await wait_ready(context.account, timeout or 30)
        session = Session(context.account)
        session.connect(target or await _neighbour_uri(context.account, neighbour_name, timeout))
        return await drive_session(session, options, answer_timeout=timeout)

    if with_chat:
        from sipcli.commands.chat import chat_account

        prepare = chat_account(codecs, srtp, None, False)
    else:
        prepare = prepare_account(codecs, srtp)
    if neighbour_name is not None:
        prepare = _browsing(prepare)
    run_job(cli, job, choice=choice, engine=engine, prepare=prepare, chat=with_chat,
            engine_for=tls_transport(target))


def _browsing(prepare: Callable[[Any], None]) -> Callable[[Any], None]:
    """prepare, and then: the P2P account browses for neighbours this run (only for bonjour:NAME targets)."""

    def browse(account: Any) -> None:
        from sipcli.commands.neighbours import browse_account

        prepare(account)
        browse_account(account)

    return browse


async def _neighbour_uri(account: Any, name: str, timeout: float | None) -> Any:
    """The SIPURI of the neighbour called name, on a transport we have (udp, tcp, tls); exit 3 when not found."""
    from sipcli.commands.neighbours import started_services

    from sipcli.bonjour import SERVICE_TYPES, find_neighbour
    from sipcli.uri import SIPURI

    await started_services(account)
    wait = timeout or NEIGHBOUR_TIMEOUT
    neighbour = await find_neighbour(account, name, wait)
    if neighbour is None:
        raise JobFailed(ExitCode.TIMEOUT, f"no neighbour called {name!r} found within {wait:g} s")
    usable = [neighbour.uris[t] for t in SERVICE_TYPES if t in neighbour.uris and t in account.contact.transports]
    if not usable:
        raise JobFailed(ExitCode.NETWORK, f"neighbour {name!r} listens on {', '.join(neighbour.uris)} only")
    try:
        return SIPURI.parse(usable[0])
    except ValueError as error:
        raise JobFailed(ExitCode.REFUSED, f"neighbour {name!r} advertises a bad URI: {error}") from None


@click.command("call")
@click.argument("uri")
@account_options
@engine_options
@media_options
@call_options
@expectation_options
@junit_option
@click.option("--record", type=click.Path(dir_okay=False), default=None,
              help="Record the received audio to this WAV file (the whole call, holds included).")
@click.option("--add-chat-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Propose an MSRP chat stream (re-INVITE) this many seconds after the call starts "
                   "[implies a short codec list].")
@click.option("--remove-chat-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Remove the chat stream again this many seconds after the call starts (audio goes on).")
@click.option("--chat-message", "chat_messages", metavar="TEXT", multiple=True,
              help="Send this chat message (repeatable) once the added chat is connected; exit 1 if refused.")
@click.option("--chat-messages-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Send the --chat-message texts this many seconds after the call starts instead.")
@proposal_options
@click.pass_obj
def command(cli: Any, uri: str, choice: AccountChoice, engine: dict[str, Any], codecs: tuple[str, ...],
            srtp: str | None, play: str | None, record: str | None, dtmf: str, dtmf_delay: float, dtmf_info: bool,
            expect_dtmf: str, expect_audio: bool, duration: float | None, timeout: float | None,
            hold_after: float | None, unhold_after: float | None, add_chat_after: float | None,
            remove_chat_after: float | None, chat_messages: tuple[str, ...], chat_messages_after: float | None,
            proposals: str, proposal_timeout: float | None, expectations: Expectations,
            stats_interval: float | None) -> None:
    """Call URI (sip:user@domain, or sip:user@host:port with no account) and report every event.

    With no account, URI may be bonjour:NAME: the neighbour advertised as NAME (see `sipcli neighbours`), found
    by mDNS within --timeout [default: 5 s]; only then does the call browse the link.

    Exit codes: 0 answered and ended as asked; 1 refused (the SIP code is in the JSON); 3 not answered within
    --timeout (CANCEL sent), or no bonjour:NAME neighbour found within it; 4 transport failure, or the peer was
    lost mid-call (--rtp-timeout); 6 a media expectation failed (--expect-*: the failed one is named in
    SIPCLIDidEnd), or the audio failed mid-call (BYE sent); 2 usage; 130 interrupted (BYE or CANCEL sent first).
    """
    options = MediaOptions(play=play, record=record, dtmf=dtmf, dtmf_delay=dtmf_delay,
                           dtmf_method="info" if dtmf_info else "rfc2833", expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, hold_after=hold_after,
                           unhold_after=unhold_after, add_chat_after=add_chat_after,
                           remove_chat_after=remove_chat_after, chat_messages=chat_messages,
                           chat_messages_after=chat_messages_after, proposals=proposals,
                           proposal_timeout=proposal_timeout, expectations=expectations,
                           stats_interval=stats_interval)
    run_call(cli, uri, choice, engine, codecs, srtp, options, timeout)


