"""The child processes tests start (sipcli, peers): ending them by PID, reading their JSON-lines output."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Callable
from typing import IO


def stop_process(process: subprocess.Popen, grace: float = 5.0, ask: Callable[[], object] | None = None) -> None:
    """End a child by its PID: ask it to go (SIGTERM unless `ask` says how), then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(OSError, ValueError):
        (ask or process.terminate)()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def collect_json_lines(stream: IO[str], events: list[dict], changed: threading.Condition) -> None:
    """A reader thread's body: each line of stream, parsed, onto events; waiters on changed are woken for each
    and once more at the end of the stream."""
    for line in stream:
        with changed:
            events.append(json.loads(line))
            changed.notify_all()
    with changed:
        changed.notify_all()
