"""`sipcli demo`: not built yet."""

import click


@click.command("demo", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Not available yet."""
    click.echo("sipcli demo: not available in this version yet", err=True)
    raise SystemExit(2)
