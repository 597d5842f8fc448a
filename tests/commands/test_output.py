"""stdout that is slow, stuck, closed, full or cut short never changes a job's outcome or stalls the SIP stack
(issue 12 item 6): output goes through a bounded buffer drained by a writer thread (sipcli.jsonlines.LineSink).

Every command runs as a user runs it: `python -m sipcli.commands` as a process, from a scratch directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.sipcli import SIPCLI

LOOPBACK = ("--local-ip", "127.0.0.1")
PIPE_SIZE = 4096  # the smallest pipe Linux allows: a --trace listener fills it with its first call


def call(tmp_path: Path, port: int, *, stdout: int | None = subprocess.DEVNULL, shell_redirect: str = "",
         timeout: float = 30) -> subprocess.CompletedProcess:
    """`sipcli call sip:x@127.0.0.1:PORT --duration 0.3` from tmp_path; shell_redirect runs it through bash."""
    args = [*SIPCLI, "--config-dir", str(tmp_path / "caller"), "call", f"sip:x@127.0.0.1:{port}", *LOOPBACK,
            "--duration", "0.3"]
    if shell_redirect:
        script = f'set -o pipefail; "$@" {shell_redirect}; echo "exit=${{PIPESTATUS[0]}}" >&2'
        return subprocess.run(["bash", "-c", script, "sipcli", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout)
    return subprocess.run(args, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout)


def pipe_bytes(fd: int) -> int:
    """How many bytes wait unread in the pipe fd."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def blocked_in_pipe_write(pid: int) -> bool:
    """Whether one of the process' threads sleeps in the kernel's pipe_write (its output pipe is full)."""
    return any("pipe_write" in (task / "wchan").read_text() for task in Path(f"/proc/{pid}/task").iterdir())


@pytest.mark.parametrize("reader", ["gone", "resumes"])
def test_a_reader_that_stops_reading_never_stalls_the_listener(tmp_path, reader):
    """The listener's stdout pipe is full and nobody reads it: calls are still answered, SIGTERM is honoured at
    once (exit 130), and a reader that comes back gets every line, SIPCLIDidEnd last."""
    port = free_port()
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    stderr = open(tmp_path / "listener.err", "w")  # noqa: SIM115 - closed below
    listener = subprocess.Popen([*SIPCLI, "--config-dir", str(tmp_path / "listener"), "listen", *LOOPBACK, "--port",
                                 str(port), "--trace", "--auto-answer"], cwd=tmp_path, stdout=write_end,
                                stderr=stderr, stdin=subprocess.DEVNULL)
    os.close(write_end)
    output = os.fdopen(read_end, "rb")
    try:
        head = []
        while not head or head[-1]["name"] != "SIPCLIListenDidStart":
            line = output.readline()
            assert line, (tmp_path / "listener.err").read_text()
            head.append(json.loads(line))
        # from here on nobody reads: the pipe fills with the first call's trace lines
        for _ in range(3):
            result = call(tmp_path, port)
            assert result.returncode == 0, result.stderr
        assert pipe_bytes(read_end) > PIPE_SIZE // 2 and blocked_in_pipe_write(listener.pid), "stdout is not full"
        start = time.monotonic()
        listener.send_signal(signal.SIGTERM)
        if reader == "gone":
            assert listener.wait(timeout=10) == 130
            assert time.monotonic() - start < 6  # teardown plus at most 2 s waiting for a reader
        else:
            rest = output.read()
            assert listener.wait(timeout=10) == 130
            lines = [json.loads(line) for line in rest.splitlines()[1:]]  # the first may be cut by readline's buffer
            assert lines[-1]["name"] == "SIPCLIDidEnd" and lines[-1]["data"]["exit_code"] == 130
            assert sum(line["name"] == "SIPSessionDidEnd" for line in lines) == 3
        errors = (tmp_path / "listener.err").read_text()
        assert "Traceback" not in errors and "dropping" not in errors, errors
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
        output.close()
        stderr.close()


@pytest.fixture
def listener(run):
    """A P2P listener on loopback that answers every call; yields its port."""
    port = free_port()
    process = run("listen", *LOOPBACK, "--port", str(port), "--auto-answer")
    process.wait_for("SIPCLIListenDidStart")
    yield port
    process.signal(signal.SIGINT)
    assert process.wait() == 130


@pytest.mark.parametrize(("redirect", "warning"), [(">&-", None), (">/dev/full", "No space left on device"),
                                                   ("| head -1", None)])
def test_closed_full_or_cut_stdout_and_the_job_still_ends_with_its_own_code(tmp_path, listener, redirect, warning):
    result = call(tmp_path, listener, shell_redirect=redirect)
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "exit=0", result.stderr  # the call was answered and ended as asked: 0, whatever stdout did
    assert "Traceback" not in result.stderr
    if warning is None:
        assert lines == ["exit=0"], result.stderr
    else:
        assert len(lines) == 2 and warning in lines[0], result.stderr  # one line, not one per notification
    if redirect == "| head -1":
        assert json.loads(result.stdout)["name"] == "SIPCLIDidSelectAccount"  # the first line names the account


def test_usage_error_with_closed_stdout_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(["bash", "-c", '"$@" >&-', "sipcli", *SIPCLI, "call", "sip:x@127.0.0.1:9", "--timeout",
                             "nan"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nan" in result.stderr
