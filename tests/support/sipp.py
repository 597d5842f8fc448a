"""Run SIPp scenarios (tests/support/sipp/*.xml) on free loopback ports; stopped by the caller's fixture."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.kamailio import listening
from tests.support.ports import free_port
from tests.support.processes import stop_process

SCENARIOS = Path(__file__).parent / "sipp"


@dataclass
class SIPp:
    """One sipp process: its SIP port, log files and exit status."""

    scenario: str
    workdir: Path
    port: int
    media_port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"sip:service@127.0.0.1:{self.port}"

    def output(self) -> str:
        return (self.workdir / f"{self.scenario}.out").read_text(errors="replace")

    def messages(self) -> str:
        """Every SIP message sipp sent or received (its -trace_msg log)."""
        logs = sorted(self.workdir.glob(f"{self.scenario}_*_messages.log"))
        return "".join(log.read_text(errors="replace") for log in logs)

    def received(self) -> list[str]:
        """Each SIP message sipp received, in order (from its -trace_msg log)."""
        blocks = re.split(r"^-{20,} .*$", self.messages(), flags=re.MULTILINE)
        return [block.split("\n", 2)[2].strip("\n") for block in blocks
                if block.strip().startswith(("UDP message received", "TCP message received"))]

    def wait(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 3)


def start_sipp(scenario: str, workdir: Path, target: str | None = None, calls: int | None = 1,
               extra: list[str] | tuple[str, ...] = (), timeout: float = 5.0, address: str = "127.0.0.1") -> SIPp:
    """Start sipp with a scenario (ending after `calls` calls; None: never) on address (e.g. "::1"); a UAS (no
    target) is returned once its UDP port listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    sipp = SIPp(scenario, workdir, free_port("udp"), free_port("udp"))
    command = ["sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", address, "-p", str(sipp.port),
               "-mi", address, "-mp", str(sipp.media_port), *(["-m", str(calls)] if calls else []), "-nostdin",
               "-trace_msg", "-message_file", str(workdir / f"{scenario}_{sipp.port}_messages.log"),
               "-trace_err", "-error_file", str(workdir / f"{scenario}_{sipp.port}_errors.log"), *extra]
    if target:
        command.append(target)
    out = open(workdir / f"{scenario}.out", "w")  # noqa: SIM115 - owned by the process
    sipp.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=workdir)
    if target is None:
        deadline = time.monotonic() + timeout
        while not listening(sipp.port, "udp"):
            if sipp.process.poll() is not None or time.monotonic() > deadline:
                sipp.stop()
                raise RuntimeError(f"sipp did not start:\n{sipp.output()[-2000:]}")
            time.sleep(0.01)
    return sipp
