"""The `sipcli` click group: lazy subcommands, global options anywhere, and how every run ends.

``cli.main()`` (standalone, as click's CliRunner calls it) runs one subcommand and, whatever happened, writes
the ``SIPCLIDidEnd`` summary as the last output line, puts one line on stderr for a failure and raises
SystemExit with the code. It never calls ``os._exit``: that is ``sipcli.commands.main``'s, around it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode, JobResult, result_for
from sipcli.commands.options import CLIContext, global_options, harden

from sipcli import __version__

__all__ = ["CLIContext", "cli"]

# Subcommand name -> module under sipcli.commands; imported only when the subcommand runs, so that
# `sipcli --help` and `sipcli accounts` never import the SIP engine.
SUBCOMMANDS = {
    "accounts": ("accounts", "Manage SIP accounts in the configuration."),
    "register": ("register", "Register an account with its registrar and report the outcome."),
    "call": ("call", "Place an audio call and report every event."),
    "listen": ("listen", "Answer incoming sessions (auto-answer, reject, echo)."),
    "neighbours": ("neighbours", "List SIP neighbours advertised on the link (mDNS/DNS-SD)."),
    "record": ("record", "Call a URI and record the remote audio to a WAV file."),
    "message": ("message", "Send pager-mode instant messages (SIP MESSAGE): each stdin line is one."),
    "chat": ("chat", "Chat over MSRP: each stdin line is a message."),
    "demo": ("demo", "Call a listener on loopback: audio both ways, DTMF, no server needed."),
    "check": ("check", "Run the checks a file lists (TOML), each as its own sipcli process; JUnit report."),
    "engine": ("engine", "Report what the installed SIP engine (pjsua2) can do."),
    "completion": ("completion", "Print the shell completion script (bash, zsh or fish)."),
}


def _exit_code(code: int) -> ExitCode:
    """code as an ExitCode; one outside the table (never sipcli's own) counts as refused."""
    return ExitCode(code) if code in iter(ExitCode) else ExitCode.REFUSED


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                            list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.ensure_object(CLIContext).command_path = f"{ctx.command_path} {name}"  # for usage errors in jobs
        return name, command, rest

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module = importlib.import_module(f"sipcli.commands.{SUBCOMMANDS[name][0]}")
        return harden(module.command, lambda: global_options(show_defaults=False))

    def main(self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True,
             state: CLIContext | None = None, **extra: Any) -> Any:
        """click's main; standalone, every ending (return, usage error, job result, exception) becomes one
        SIPCLIDidEnd line on state.out (default: sys.stdout), at most one stderr line, and SystemExit(code)."""
        completing = f"_{prog_name or 'sipcli'}_COMPLETE".replace("-", "_").upper() in os.environ
        if not standalone_mode or completing:  # shell completion prints candidates, never a summary
            return super().main(args, prog_name, standalone_mode=standalone_mode, **extra)
        state = state if state is not None else CLIContext()
        result = self._run(state, args, prog_name, **extra)
        if result is None:  # --help, --version: information, not a run
            sys.exit(0)
        state.finish(result)
        sys.exit(int(result.exit_code))

    def _run(self, state: CLIContext, args: Any, prog_name: str | None, **extra: Any) -> JobResult | None:
        try:
            returned = super().main(args, prog_name, standalone_mode=False, obj=state, **extra)
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()  # `sipcli` alone: the help text on stderr
            return JobResult(ExitCode.USAGE, "no subcommand given")
        except SystemExit as done:  # a command that printed its own line and exited
            return JobResult(_exit_code(done.code if isinstance(done.code, int) else ExitCode.USAGE), "exit")
        except BaseException as error:  # every ending becomes a summary and a code
            result = result_for(error)
            if result.exit_code == ExitCode.USAGE and "missing_capability" not in result.data:  # not the user's slip
                path = error.ctx.command_path if getattr(error, "ctx", None) is not None else state.command_path
                click.echo(f"{path}: {result.reason} (see '{path} --help')", err=True)
            elif result.exit_code not in (ExitCode.OK, ExitCode.INTERRUPTED):
                click.echo(f"sipcli: {result.reason}", err=True)
            return result
        if isinstance(returned, int):  # click's ctx.exit(code): --help and --version (0), or a command's own code
            return None if returned == 0 else JobResult(_exit_code(returned), "exit")
        return JobResult(ExitCode.OK, "ok")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             params=global_options(show_defaults=True))
@click.version_option(__version__, prog_name="sipcli")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Scriptable SIP: every event is a JSON line on stdout; the exit code says how the job ended."""
    from sipcli.configuration.storage import default_config_dir

    state = ctx.ensure_object(CLIContext)
    if state.config_dir is None:
        state.config_dir = default_config_dir()
    state.configure_logging()
