"""Suite-wide rules: every process a test starts is gone when the test ends."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.sipcli import SIPCLIProcess
from tests.support.sipp import start_sipp


def descendants(pid: int) -> set[int]:
    """Live (non-zombie) processes below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def pytest_configure(config):
    config.addinivalue_line("markers", "full_engine(*needs): needs what only sipcli's engine build has, e.g. "
                                       "full_engine('ipv6', 'codec:opus', 'tls:TLSv1.3', 'calls:100'); skipped, with "
                                       "the reason, on an engine that lacks it")


def pytest_collection_modifyitems(config, items):
    from tests.support.engine import missing

    for item in items:
        for marker in item.iter_markers("full_engine"):
            lacking = missing(*marker.args)
            if lacking:
                item.add_marker(pytest.mark.skip(reason=f"the installed pjsua2 lacks {', '.join(lacking)} "
                                                        "(sipcli's engine build has it: engine/build.py)"))


@pytest.fixture(autouse=True)
def no_process_left():
    """Fails a test that leaves a process running (wider-scoped fixtures' processes, started before, stay)."""
    before = descendants(os.getpid())

    def left() -> set[int]:
        # what such a process forks later (kamailio's workers) is theirs, not the test's
        return descendants(os.getpid()) - before - set().union(*(descendants(pid) for pid in before))

    yield
    deadline = time.monotonic() + 3
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left(), f"processes left running: {sorted(left())}"


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


@pytest.fixture
def sipp(tmp_path):
    """start(scenario, target=None, **kwargs) runs a SIPp scenario from tests/support/sipp (see start_sipp)."""
    started = []

    def start(scenario: str, target: str | None = None, **kwargs):
        process = start_sipp(scenario, tmp_path / "sipp", target, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
