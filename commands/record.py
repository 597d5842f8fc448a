"""`sipcli record URI FILE`: call URI and record the remote audio to FILE (`call --record FILE`)."""

from __future__ import annotations

from typing import Any

import click
from sipcli.commands.calljob import run_session
from sipcli.commands.options import (
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
    writable_file,
)
from sipcli.commands.sessionjob import MediaOptions

__all__ = ["command"]


@click.command("record")
@click.argument("uri", type=TARGET)
@click.argument("file", type=writable_file)
@account_options
@engine_options
@media_options
@call_options
@expectation_options
@junit_option
@click.pass_obj
def command(cli: Any, uri: Target, file: str, choice: AccountChoice, engine: dict[str, Any], media: MediaSetup,
            play: str | None, dtmf: str, dtmf_delay: float, dtmf_info: bool, expect_dtmf: str,
            expect_audio: bool, duration: float | None, timeout: float | None, hold_after: float | None,
            unhold_after: float | None, expectations: Expectations, stats_interval: float | None) -> None:
    """Call URI and record what the remote party sends to FILE (WAV, mono 16-bit), until either side hangs up
    or --duration passes. The account and exit codes are those of `call`; so are the waits: an account that
    registers must be registered within 30 s, a peer that never responds fails after 32 s (exit 3)."""
    options = MediaOptions(play=play, record=file, dtmf=dtmf, dtmf_delay=dtmf_delay,
                           dtmf_method="info" if dtmf_info else "rfc2833", expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, hold_after=hold_after,
                           unhold_after=unhold_after, expectations=expectations, stats_interval=stats_interval)
    run_session(cli, uri, choice, engine, media, options, timeout)
