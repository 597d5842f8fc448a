"""`sipcli chat URI`: an MSRP chat session (`call --chat --no-audio`); stdin lines or --message are sent."""

from __future__ import annotations

from typing import Any

import click
from sipcli.commands.calljob import run_session
from sipcli.commands.chatjob import ChatOptions
from sipcli.commands.options import (
    RELAY,
    TARGET,
    AccountChoice,
    MediaSetup,
    Target,
    account_options,
    call_options,
    engine_options,
    junit_option,
    media_options,
    writable_file,
)
from sipcli.commands.sessionjob import MediaOptions

__all__ = ["command"]


@click.command("chat")
@click.argument("uri", type=TARGET)
@account_options
@engine_options
@media_options
@call_options
@click.option("--message", "messages", metavar="TEXT", multiple=True,
              help="Send this message (repeatable) and hang up once all are delivered [default: stdin lines].")
@click.option("--content-type", default="text/plain", show_default=True, help="Content type of the messages.")
@click.option("--cpim/--no-cpim", default=None, help="Wrap messages in CPIM [default: when the peer accepts it].")
@click.option("--relay", type=RELAY, metavar="URI", help="Use this MSRP relay (msrp://host:port;tcp), with the "
                                                         "account's credentials.")
@click.option("--msrp-tls", is_flag=True, help="Offer MSRP over TLS (the answerer needs tls.certificate).")
@click.option("--audio", is_flag=True, help="Audio next to the chat (`call --chat`): the audio options apply.")
@click.option("--record", type=writable_file, default=None, help="With --audio: record the received audio here.")
@click.option("--expect-messages", type=click.IntRange(0), default=0, metavar="N",
              help="Stay until N chat messages were received (e.g. replies), then hang up as usual; exit 6 when "
                   "the session ends with fewer.")
@junit_option
@click.pass_obj
def command(cli: Any, uri: Target, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
            play: str | None, expect_dtmf: str, expect_audio: bool, duration: float | None, dtmf: str,
            dtmf_delay: float, dtmf_info: bool, timeout: float | None, hold_after: float | None,
            unhold_after: float | None, messages: tuple[str, ...], content_type: str, cpim: bool | None,
            relay: str | None, msrp_tls: bool, audio: bool, record: str | None, expect_messages: int) -> None:
    """Chat with URI over MSRP: each stdin line (or --message) is a message; received messages and delivery
    reports are JSON lines. Ends after stdin EOF (or the last --message) once everything was delivered, or after
    --duration. The account is chosen as for `call`, and the waits are those of `call`: an account that registers
    must be registered within 30 s; a peer that never responds fails after 32 s (exit 3).

    Exit codes: 0 everything sent was delivered; 1 a message (or the session) was refused; 3 --timeout (the chat
    was not up in time); 4 the MSRP connection failed; 6 (with --audio) a media expectation failed; 2 usage;
    130 interrupted.
    """
    if not audio and (play or record or dtmf or expect_dtmf or expect_audio or hold_after is not None):
        raise click.UsageError("--play, --record, --dtmf, --expect-dtmf, --expect-audio, --hold-after go with --audio")
    options = MediaOptions(audio=audio, play=play, record=record, dtmf=dtmf, dtmf_delay=dtmf_delay,
                           dtmf_method="info" if dtmf_info else "rfc2833", expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, hold_after=hold_after,
                           unhold_after=unhold_after)
    run_session(cli, uri, choice, engine, media, options, timeout,
                chat=ChatOptions(messages=messages, content_type=content_type, cpim=cpim,
                                 expect_messages=expect_messages), relay=relay,
                msrp_tls=msrp_tls)
