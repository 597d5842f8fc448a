"""Options and click types shared by every subcommand: the global options (accepted before or after the
subcommand), finite numbers, and account id completion."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem
from sipcli.commands.exitcodes import ExitCode, JobResult, fail_usage

__all__ = ["AccountId", "CLIContext", "Expectations", "FiniteFloatRange", "Percent", "expectation_options",
           "global_options", "harden", "junit_option"]


class _Summary:
    notification_id = "sipcli"


@dataclass
class CLIContext:
    """Global options, shared by every subcommand through click's context object, and the output they go to."""

    config_dir: Path | None = None
    output_format: str = "json"
    verbose: int = 0
    log_file: Path | None = None
    out: Any = field(default=None, repr=False)  # a LineSink (main) or a text stream (in-process runs)
    finished: bool = False  # the summary is written: the run's exit code is decided
    command_path: str = "sipcli"  # the subcommand that runs, for messages
    junit: Any = field(default=None, repr=False)  # a sipcli.commands.junit.Report with --junit

    def writer(self) -> Any:
        """A JSONLinesWriter (or TextWriter for --format text) on this run's output."""
        from sipcli.jsonlines import JSONLinesWriter, TextWriter

        out = self.out if self.out is not None else sys.stdout
        return TextWriter(out) if self.output_format == "text" else JSONLinesWriter(out)

    def finish(self, result: JobResult) -> None:
        """Write the run's last line: SIPCLIDidEnd with outcome, exit_code, reason and the result's data."""
        from sipcli.notification import Notification, NotificationData

        self.finished = True
        code = result.exit_code
        data = {"outcome": code.outcome if isinstance(code, ExitCode) else str(code), "exit_code": int(code),
                "reason": result.reason, **result.data}
        summary = Notification("SIPCLIDidEnd", sender=_Summary(), data=NotificationData(**data))
        self.writer().write_summary(summary)
        if self.junit is not None:
            self.junit.finish(summary, self.command_path)

    def configure_logging(self) -> None:
        """Diagnostics to stderr, or to --log-file (opened now: a bad path is a usage error before any traffic)."""
        handler: logging.Handler
        if self.log_file is not None:
            try:
                handler = logging.FileHandler(self.log_file)
            except OSError as error:
                fail_usage(f"--log-file: cannot open {self.log_file}: {error.strerror or error}")
        else:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        for old in root.handlers:
            old.close()
        root.handlers[:] = [handler]
        verbose = self.verbose
        root.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)


def _context(ctx: click.Context) -> CLIContext:
    return ctx.find_root().ensure_object(CLIContext)


def _set_config_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _context(ctx).config_dir = value


def _set_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _context(ctx).output_format = value


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        state = _context(ctx)
        state.verbose += value
        state.configure_logging()


def _set_log_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        state = _context(ctx)
        state.log_file = value
        state.configure_logging()


def global_options(*, show_defaults: bool) -> list[click.Option]:
    """--config-dir, --format, -v, --log-file: on the group (with defaults shown) and on every subcommand, so they
    work before or after it (``sipcli call URI --format text -v``). Each updates the run's CLIContext."""
    return [
        click.Option(["--config-dir"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_set_config_dir, is_eager=True,
                     help="Configuration directory [default: $SIPCLI_CONFIG_DIR or ~/.config/sipcli]."),
        click.Option(["--format", "output_format"], type=click.Choice(["json", "text"]), default=None,
                     expose_value=False, callback=_set_format, is_eager=True,
                     help="Event output: JSON lines, or a human view" + (" [default: json]." if show_defaults
                                                                         else ".")),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_set_verbose, is_eager=True,
                     help="More diagnostics on stderr (-vv: pjsip logs too)."),
        click.Option(["--log-file"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_set_log_file, is_eager=True,
                     help="Write diagnostics to this file instead of stderr."),
    ]


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and infinities (a ``--timeout nan`` would wait forever or never)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class AccountId(click.ParamType):
    """An account id (user@domain), completed from the configured accounts."""

    name = "account"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(account_id) for account_id in _configured_account_ids(ctx)
                if account_id.startswith(incomplete)]


def _configured_account_ids(ctx: click.Context) -> list[str]:
    """The account ids in the configuration (none when it cannot be read: completion never fails loudly)."""
    from sipcli.configuration import ConfigurationError
    from sipcli.configuration.storage import FileStorage, default_config_dir

    config_dir = _context(ctx).config_dir or default_config_dir()
    try:
        accounts = FileStorage(config_dir).load().get("accounts")
    except ConfigurationError:
        return []
    return sorted(accounts) if isinstance(accounts, dict) else []


def harden(command: click.Command, options: Callable[[], list[click.Option]]) -> click.Command:
    """Give command (and, for a group, each of its subcommands) the global options, finite float ranges and
    account id completion for ``--account``. Idempotent."""
    if getattr(command, "_sipcli_hardened", False):
        return command
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    command.params.extend(option for option in options() if not names.intersection(option.opts))
    for param in command.params:
        if isinstance(param.type, click.FloatRange) and not isinstance(param.type, FiniteFloatRange):
            old = param.type
            param.type = FiniteFloatRange(old.min, old.max, min_open=old.min_open, max_open=old.max_open,
                                          clamp=old.clamp)
        elif param.type is click.FLOAT:
            param.type = FiniteFloatRange()
        if isinstance(param, click.Option) and "--account" in param.opts and param.type is click.STRING:
            param.type = AccountId()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            harden(sub, options)
    command._sipcli_hardened = True  # type: ignore[attr-defined]
    return command


def _set_junit(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        from sipcli.commands.junit import Report

        _context(ctx).junit = Report(value)


def junit_option(command: Callable) -> Callable:
    """--junit FILE: add this run as a JUnit XML testcase to FILE (made if missing; safe with parallel runs)."""
    return click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, expose_value=False,
                        callback=_set_junit, is_eager=True, metavar="FILE",
                        help="Add this run to FILE as a JUnit XML testcase (failure: the exit reason and key "
                             "events); several runs can add to one file.")(command)


class Percent(FiniteFloatRange):
    """A percentage, 0 to 100, written with or without '%' (``2%``, ``2.5``)."""

    name = "percent"

    def __init__(self) -> None:
        super().__init__(0, 100)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = value.strip().removesuffix("%")
        return super().convert(value, param, ctx)


@dataclass(frozen=True)
class Expectations:
    """What a session must achieve for exit 0 (else exit 6, the failed one named in SIPCLIDidEnd)."""

    mos: float | None = None
    max_loss: float | None = None  # percent of the packets expected
    max_jitter: float | None = None  # ms, the largest RFC 3550 interarrival jitter
    codec: str | None = None
    code: int | None = None  # the final SIP response of the INVITE
    duration_min: float | None = None  # seconds

    @property
    def need_quality(self) -> bool:
        return self.mos is not None or self.max_loss is not None or self.max_jitter is not None


def expectation_options(command: Callable) -> Callable:
    """--expect-mos, --expect-max-loss, --expect-max-jitter, --expect-codec, --expect-code, --expect-duration-min and
    --stats-interval; the command gets ``expectations`` (Expectations) and ``stats_interval``."""

    @click.option("--stats-interval", type=FiniteFloatRange(0, min_open=True), default=None, metavar="SECONDS",
                  help="Report the audio figures (SIPSessionGotAudioStatistics) every SECONDS during a session "
                       "[default: once, at its end].")
    @click.option("--expect-duration-min", type=FiniteFloatRange(0), default=None, metavar="SECONDS",
                  help="Exit 6 unless the session lasted at least this long.")
    @click.option("--expect-code", type=click.IntRange(100, 699), default=None, metavar="CODE",
                  help="Exit 0 only when the INVITE's final response is CODE (e.g. 486 for a busy check; an "
                       "answered session is 200), else 6.")
    @click.option("--expect-codec", metavar="NAME", default=None,
                  help="Exit 6 unless the audio used this codec (e.g. PCMU).")
    @click.option("--expect-max-jitter", type=FiniteFloatRange(0), default=None, metavar="MS",
                  help="Exit 6 when the received audio's interarrival jitter (RFC 3550) exceeded MS milliseconds.")
    @click.option("--expect-max-loss", type=Percent(), default=None, metavar="PERCENT",
                  help="Exit 6 when more than PERCENT of the audio packets were lost (e.g. 2%).")
    @click.option("--expect-mos", type=FiniteFloatRange(1, 5), default=None, metavar="MOS",
                  help="Exit 6 when the estimated MOS of the received audio (ITU-T G.107 E-model) is below MOS.")
    @functools.wraps(command)
    def wrapper(*args: Any, expect_mos: float | None, expect_max_loss: float | None,
                expect_max_jitter: float | None, expect_codec: str | None, expect_code: int | None,
                expect_duration_min: float | None, **kwargs: Any) -> Any:
        expectations = Expectations(expect_mos, expect_max_loss, expect_max_jitter, expect_codec, expect_code,
                                    expect_duration_min)
        return command(*args, expectations=expectations, **kwargs)

    return wrapper
