"""`sipcli chat`: not built yet."""

import click


@click.command("chat", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Not available yet."""
    click.echo("sipcli chat: not available in this version yet", err=True)
    raise SystemExit(2)
