"""The attacks run against real `sipcli` processes: the CLI tests' runner fixture."""

from tests.commands.conftest import run  # noqa: F401 - a fixture, found by pytest under this name
