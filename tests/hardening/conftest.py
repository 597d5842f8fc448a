"""Fixtures for the attack tests: real `sipcli` processes (the CLI tests' runner fixture) and SIPp peers, each
stopped when its test ends."""

from __future__ import annotations

import pytest

from tests.commands.conftest import run  # noqa: F401 - a fixture, found by pytest under this name
from tests.support.sipp import start_sipp


@pytest.fixture
def sipp(tmp_path):
    """start(scenario, target=None, **kwargs) runs a SIPp scenario from tests/support/sipp."""
    started = []

    def start(scenario: str, target: str | None = None, **kwargs):
        process = start_sipp(scenario, tmp_path / "sipp", target, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
