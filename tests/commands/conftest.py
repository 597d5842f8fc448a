"""Fixtures for the CLI tests: real `sipcli` processes, each stopped when its test ends."""

from __future__ import annotations

import pytest

from tests.support.sipcli import SIPCLIProcess


@pytest.fixture
def run(tmp_path):
    """start(*args, env=None, config="config") runs `sipcli ARGS` with tmp_path/config as its config dir."""
    processes: list[SIPCLIProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, config: str = "config") -> SIPCLIProcess:
        process = SIPCLIProcess(tmp_path / config, *args, env=env)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
