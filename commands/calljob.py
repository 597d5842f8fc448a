"""The one outgoing-session job of `call`, `record` and `chat`: they differ only in their default streams.

Audio only: drive_session (play, record, DTMF, hold, hang up after --duration). With chat (`call --chat`,
`chat`, `chat --audio`): run_chat, which runs the same audio script when the session has audio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from sipcli.commands.chatjob import ChatOptions, chat_account, run_chat
from sipcli.commands.exitcodes import ExitCode
from sipcli.commands.options import NEIGHBOUR_TIMEOUT, READY_TIMEOUT, AccountChoice, MediaSetup, Target
from sipcli.commands.runner import JobContext, JobFailed, JobResult, run_job
from sipcli.commands.sessionjob import (
    MediaOptions,
    browse_account,
    drive_session,
    prepare_account,
    started_services,
    tls_transport,
    wait_ready,
)

__all__ = ["run_session"]


def run_session(cli: Any, target: Target, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
                options: MediaOptions, timeout: float | None, chat: ChatOptions | None = None,
                relay: str | None = None, msrp_tls: bool = False) -> None:
    """Check the options together, run the session job and exit with its code (chat: None for audio only)."""
    explicit_p2p = choice.p2p
    if target.neighbour is not None and choice.is_explicit:
        raise click.UsageError("URI: bonjour:NAME is for P2P mode (no --account or --from)")
    if not options.audio and chat is None and options.add_chat_after is None:
        raise click.UsageError("--no-audio needs --chat: a session needs a stream")
    if options.unhold_after is not None and options.hold_after is None:
        raise click.UsageError("--unhold-after goes with --hold-after")
    if options.remove_chat_after is not None and (options.add_chat_after is None or
                                                  options.remove_chat_after <= options.add_chat_after):
        raise click.UsageError("--remove-chat-after goes with an earlier --add-chat-after")
    if options.chat_messages and options.add_chat_after is None and chat is None:
        raise click.UsageError("--chat-message goes with --chat or --add-chat-after")
    if chat is not None and options.add_chat_after is not None:
        raise click.UsageError("--add-chat-after is for a call without --chat")
    if relay and explicit_p2p:
        raise click.UsageError("--relay needs an account (--account or --from): it authenticates with it")
    if target.neighbour is not None:
        choice = AccountChoice(p2p=True)  # a neighbour is called in P2P mode, whatever the default account
    with_chat = chat is not None or options.add_chat_after is not None

    async def job(context: JobContext) -> JobResult:
        from sipcli.account import BonjourAccount
        from sipcli.session import Session
        from sipcli.uri import is_ip_address

        uri = target.uri
        if isinstance(context.account, BonjourAccount) and uri is not None and not uri.port and not uri.user:
            raise JobFailed(ExitCode.USAGE, f"URI: {target.text} has no user or port; in P2P mode call "
                                            "sip:user@host:port")
        if relay and isinstance(context.account, BonjourAccount):
            raise JobFailed(ExitCode.USAGE, "--relay needs an account (--account or --from): it authenticates "
                                            "with it")
        await wait_ready(context.account, READY_TIMEOUT)
        session = Session(context.account)
        routes: list[Any] = []
        if uri is None:
            uri = await _neighbour_uri(context.account, target.neighbour or "", timeout)
        elif isinstance(context.account, BonjourAccount) and not is_ip_address(uri.host):
            routes = await _routes(uri)  # P2P to a domain: the INVITE goes along its RFC 3263 routes
        if chat is not None:
            result = await run_chat(session, uri, options, chat, timeout, routes=routes)
        else:
            session.connect(uri, routes=routes)
            result = await drive_session(session, options, answer_timeout=timeout)
        return _naming_the_route(result, session, uri) if routes else result

    prepare = chat_account(media, relay, msrp_tls) if with_chat else prepare_account(media)
    if target.neighbour is not None:
        prepare = _browsing(prepare)
    run_job(cli, job, choice=choice, engine=engine, prepare=prepare, chat=with_chat,
            engine_for=tls_transport(target.uri))


def _transport_failure(result: JobResult) -> bool:
    """The session failed before any response from the peer (transport trouble or no response)."""
    return result.exit_code == ExitCode.NETWORK or (result.exit_code == ExitCode.TIMEOUT and
                                                    result.data.get("code") == 408)


async def _routes(uri: Any) -> list[Any]:
    """Where a P2P session to uri goes: RFC 3263 (NAPTR, SRV, A) for a domain, through sipcli.lookup."""
    import asyncio

    from sipcli.lookup import DNSLookup, DNSLookupError
    from sipcli.pjsua import Engine

    engine = Engine()
    lookup = DNSLookup(engine.settings.dns_nameservers)
    supported = tuple(transport for transport in ("udp", "tcp", "tls") if transport in engine.transports)
    try:
        return await asyncio.get_running_loop().run_in_executor(None, lookup.lookup_sip_proxy, uri, supported)
    except (DNSLookupError, ValueError) as error:
        reason = str(error).removeprefix(f"{uri.host}: ")
        raise JobFailed(ExitCode.NETWORK, f"no SIP server for {uri.host}: {reason}") from None


def _naming_the_route(result: JobResult, session: Any, uri: Any) -> JobResult:
    """A P2P session to a domain that failed at the transport on every route (Session.connect tried each in
    order, RFC 3263 section 4.3): the reason names the last address and transport tried, and the domain."""
    route = session.route
    if route is None or not _transport_failure(result):
        return result
    return JobResult(result.exit_code, f"{route.address}:{route.port} ({route.transport}) for {uri.host}: "
                                       f"{result.reason}", result.data)


def _browsing(prepare: Callable[[Any], None]) -> Callable[[Any], None]:
    """prepare, and then: the P2P account browses for neighbours this run (only for bonjour:NAME targets)."""

    def browse(account: Any) -> None:
        prepare(account)
        browse_account(account)

    return browse


async def _neighbour_uri(account: Any, name: str, timeout: float | None) -> Any:
    """The SIPURI of the neighbour called name, on a transport we have (udp, tcp, tls); exit 3 when not found."""
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
