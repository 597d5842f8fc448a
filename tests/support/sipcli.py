"""Run `sipcli` subcommands as processes and follow their JSON lines while they run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.processes import collect_json_lines, stop_process

SIPCLI = [sys.executable, "-m", "sipcli.commands"]


class SIPCLIProcess:
    """One running `sipcli ...`: its JSON events as they arrive, its exit code; stop() in a finalizer."""

    def __init__(self, config_dir: Path, *args: str, env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = ()) -> None:
        """prefix: a command that runs sipcli, e.g. ("ip", "netns", "exec", NAME) (it must exec, not fork)."""
        self.args = args
        self.events: list[dict] = []
        self._changed = threading.Condition()
        self.stderr_path = config_dir.parent / f"sipcli-{os.getpid()}-{id(self)}.err"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [*prefix, *SIPCLI, *args], stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, "SIPCLI_CONFIG_DIR": str(config_dir), **(env or {})})
        self._reader = threading.Thread(target=collect_json_lines, args=(self.process.stdout, self.events,
                                                                         self._changed), daemon=True)
        self._reader.start()

    def names(self) -> list[str]:
        return [event["name"] for event in self.events]

    def find(self, name: str) -> list[dict]:
        return [event for event in self.events if event["name"] == name]

    def wait_for(self, name: str, timeout: float = 10.0) -> dict:
        """The first event called name, waiting for it to be printed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.find(name)
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {name} from sipcli {' '.join(self.args)}; got {self.names()}\n"
                                         f"{self.stderr()[-2000:]}")
                self._changed.wait(min(remaining, 0.1))

    def wait_for_count(self, name: str, count: int, timeout: float = 10.0) -> list[dict]:
        """The events called name once there are at least count of them, waiting for them to be printed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.find(name)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{len(found)} of {count} {name} from sipcli {' '.join(self.args)}; "
                                         f"got {self.names()}\n{self.stderr()[-2000:]}")
                self._changed.wait(min(remaining, 0.1))
            return found

    def wait(self, timeout: float = 15.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def signal(self, signum: int = signal.SIGINT) -> None:
        self.process.send_signal(signum)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    @property
    def summary(self) -> dict:
        assert self.events and self.events[-1]["name"] == "SIPCLIDidEnd", self.names()
        return self.events[-1]["data"]

    def stop(self) -> None:
        stop_process(self.process)
        self._stderr.close()
