"""`sipcli completion SHELL`: print the completion script click generates for bash, zsh or fish."""

from __future__ import annotations

import click

__all__ = ["command", "script"]

SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    """The completion script for shell; it calls back into `sipcli` (``_SIPCLI_COMPLETE=...``) to complete."""
    from click.shell_completion import get_completion_class
    from sipcli.commands.cli import cli

    completion_class = get_completion_class(shell)
    return completion_class(cli, {}, "sipcli", "_SIPCLI_COMPLETE").source().rstrip("\n") + "\n"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish) on stdout, e.g.
    `sipcli completion bash > ~/.local/share/bash-completion/completions/sipcli`.
    Subcommands, options and --account IDs (from the configuration) complete."""
    click.echo(script(shell), nl=False)
    click.get_current_context().exit(0)  # like --help: a script for the shell, no SIPCLIDidEnd line after it
