"""The `sipcli` command: a click group whose subcommands each run one job against the middleware."""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from sipcli import __version__
from sipcli.configuration.storage import default_config_dir

__all__ = ["CLIContext", "main"]

# Subcommand name -> module under sipcli.commands; imported only when the subcommand runs, so that
# `sipcli --help` and `sipcli accounts` never import the SIP engine.
SUBCOMMANDS = {
    "accounts": ("accounts", "Manage SIP accounts in the configuration."),
    "register": ("register", "Register an account with its registrar and report the outcome."),
    "call": ("call", "Place an audio call and report every event."),
    "listen": ("listen", "Answer incoming sessions (auto-answer, reject, echo)."),
    "neighbours": ("neighbours", "List SIP neighbours advertised on the link (mDNS/DNS-SD)."),
    "record": ("record", "Call a URI and record the remote audio to a WAV file."),
    "chat": ("chat", "Chat over MSRP: each stdin line is a message."),
    "demo": ("demo", "Call a listener on loopback: audio both ways, DTMF, no server needed."),
}


@dataclass
class CLIContext:
    """Global options, shared by every subcommand through click's context object."""

    config_dir: Path
    output_format: str = "json"
    verbose: int = 0
    log_file: Path | None = None


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module = importlib.import_module(f"{__name__}.{SUBCOMMANDS[name][0]}")
        return module.command

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """click's main, except that a usage error is one line on stderr (README: "Exit codes"), not its usage."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()  # `sipcli` alone: the help text, exit 2
            sys.exit(error.exit_code)
        except click.ClickException as error:
            path = error.ctx.command_path if getattr(error, "ctx", None) else "sipcli"
            hint = f" (see '{path} --help')" if isinstance(error, click.UsageError) else ""
            click.echo(f"{path}: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _configure_logging(verbose: int, log_file: Path | None) -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Configuration directory [default: $SIPCLI_CONFIG_DIR or ~/.config/sipcli].")
@click.option("--format", "output_format", type=click.Choice(["json", "text"]), default="json",
              show_default=True, help="Event output: JSON lines, or a human view.")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv: pjsip logs too).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write diagnostics and pjsip logs to this file instead of stderr.")
@click.version_option(__version__, prog_name="sipcli")
@click.pass_context
def main(ctx: click.Context, config_dir: Path | None, output_format: str, verbose: int,
         log_file: Path | None) -> None:
    """Scriptable SIP: every event is a JSON line on stdout; the exit code says how the job ended."""
    _configure_logging(verbose, log_file)
    ctx.obj = CLIContext(config_dir or default_config_dir(), output_format, verbose, log_file)
