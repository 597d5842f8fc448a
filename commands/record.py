"""`sipcli record URI FILE`: call URI and record the remote audio to FILE (a thin front on `call`)."""

from __future__ import annotations

from typing import Any

import click
from sipcli.commands.call import call_options, run_call
from sipcli.commands.options import Expectations, expectation_options, junit_option
from sipcli.commands.runner import AccountChoice, account_options, engine_options
from sipcli.commands.sessionjob import MediaOptions, media_options

__all__ = ["command"]


@click.command("record")
@click.argument("uri")
@click.argument("file", type=click.Path(dir_okay=False))
@account_options
@engine_options
@media_options
@call_options
@expectation_options
@junit_option
@click.pass_obj
def command(cli: Any, uri: str, file: str, choice: AccountChoice, engine: dict[str, Any], codecs: tuple[str, ...],
            srtp: str | None, play: str | None, dtmf: str, dtmf_delay: float, dtmf_info: bool, expect_dtmf: str,
            expect_audio: bool, duration: float | None, timeout: float | None, hold_after: float | None,
            unhold_after: float | None, expectations: Expectations, stats_interval: float | None) -> None:
    """Call URI and record what the remote party sends to FILE (WAV, mono 16-bit), until either side hangs up
    or --duration passes. Exit codes as for `call`."""
    options = MediaOptions(play=play, record=file, dtmf=dtmf, dtmf_delay=dtmf_delay,
                           dtmf_method="info" if dtmf_info else "rfc2833", expect_dtmf=expect_dtmf,
                           expect_audio=expect_audio, duration=duration, hold_after=hold_after,
                           unhold_after=unhold_after, expectations=expectations, stats_interval=stats_interval)
    run_call(cli, uri, choice, engine, codecs, srtp, options, timeout)
