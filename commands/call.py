"""`sipcli call URI`: place a call (audio by default; --chat adds chat), script it, report every event."""

from __future__ import annotations

from typing import Any

import click
from sipcli.commands.calljob import run_session
from sipcli.commands.chatjob import ChatOptions
from sipcli.commands.options import (
    RELAY,
    TARGET,
    AccountChoice,
    Expectations,
    MediaSetup,
    Target,
    account_options,
    call_options,
    engine_options,
    expectation_options,
    junit_option,
    media_options,
    proposal_options,
    writable_file,
)
from sipcli.commands.sessionjob import MediaOptions

__all__ = ["command"]


@click.command("call")
@click.argument("uri", type=TARGET)
@account_options
@engine_options
@media_options
@call_options
@click.option("--audio/--no-audio", default=True, show_default=True,
              help="Offer audio (--no-audio goes with --chat: a chat-only session, like `sipcli chat`).")
@click.option("--chat", is_flag=True,
              help="Offer an MSRP chat stream too: stdin lines (or --chat-message texts) are sent as messages, as "
                   "`sipcli chat` does; the call then ends once they are delivered, unless --duration.")
@click.option("--record", type=writable_file, default=None,
              help="Record the received audio to this WAV file (the whole call, holds included).")
@click.option("--add-chat-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Propose an MSRP chat stream (re-INVITE) this many seconds after the call starts.")
@click.option("--remove-chat-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Remove the chat stream again this many seconds after the call starts (audio goes on).")
@click.option("--chat-message", "chat_messages", metavar="TEXT", multiple=True,
              help="Send this chat message (repeatable) once the chat is connected; exit 1 if refused.")
@click.option("--chat-messages-after", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="With --add-chat-after: send the --chat-message texts this many seconds after the call starts.")
@click.option("--relay", type=RELAY, metavar="URI", help="With --chat: use this MSRP relay (msrp://host:port;tcp), "
                                                         "with the account's credentials.")
@proposal_options
@click.option("--expect-messages", type=click.IntRange(0), default=0, metavar="N",
              help="Stay until N chat messages were received (e.g. replies), then hang up as usual; exit 6 when "
                   "the session ends with fewer.")
@expectation_options
@junit_option
@click.pass_obj
def command(cli: Any, uri: Target, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
            play: str | None, record: str | None, dtmf: str, dtmf_delay: float, dtmf_info: bool,
            expect_dtmf: str, expect_audio: bool, duration: float | None, timeout: float | None,
            hold_after: float | None, unhold_after: float | None, audio: bool, chat: bool,
            add_chat_after: float | None, remove_chat_after: float | None, chat_messages: tuple[str, ...],
            chat_messages_after: float | None, relay: str | None, proposals: str,
            proposal_timeout: float | None, expect_messages: int, expectations: Expectations,
            stats_interval: float | None) -> None:
    """Call URI (user@domain, sip:user@domain, or sip:user@host:port in P2P mode) and report every event.

    The account: --account, --from, else the configured default account, else P2P (--p2p forces P2P); the first
    line (SIPCLIDidSelectAccount) names it. In P2P mode URI may be bonjour:NAME: the neighbour advertised as NAME
    (see `sipcli neighbours`), found by mDNS within --timeout [default: 5 s].

    Waits: an account that registers must be registered within 30 s (exit 3 otherwise); ringing lasts until
    answered, refused or --timeout; a peer that never responds fails after 32 s (exit 3).

    Exit codes: 0 answered and ended as asked; 1 refused (the SIP code is in the JSON); 3 not answered within
    --timeout (CANCEL sent), or no bonjour:NAME neighbour found within it; 4 transport failure, or the peer was
    lost mid-call (--rtp-timeout); 6 a media expectation failed (--expect-*: the failed one is named in
    SIPCLIDidEnd), or the audio failed mid-call (BYE sent); 2 usage; 130 interrupted (BYE or CANCEL sent first).
    """
    options = MediaOptions(audio=audio, play=play, record=record, dtmf=dtmf, dtmf_delay=dtmf_delay,
                           dtmf_method="info" if dtmf_info else "rfc2833", expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, hold_after=hold_after,
                           unhold_after=unhold_after, add_chat_after=add_chat_after,
                           remove_chat_after=remove_chat_after, chat_messages=() if chat else chat_messages,
                           chat_messages_after=chat_messages_after, proposals=proposals,
                           proposal_timeout=proposal_timeout, expectations=expectations,
                           stats_interval=stats_interval)
    if expect_messages and not chat:
        raise click.UsageError("--expect-messages goes with --chat")
    if relay and not chat and add_chat_after is None:
        raise click.UsageError("--relay goes with --chat or --add-chat-after")
    run_session(cli, uri, choice, engine, media, options, timeout,
                chat=ChatOptions(messages=chat_messages, expect_messages=expect_messages) if chat else None,
                relay=relay)
