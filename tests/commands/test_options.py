"""Global options: accepted before or after the subcommand, validated before any network traffic; every float
option refuses nan, infinities and negatives (issue 12 item 9, issue 8 item 6). Run as a user runs sipcli."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.sipcli import SIPCLI


def sipcli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SIPCLI, "--config-dir", str(tmp_path / "config"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def summary(result: subprocess.CompletedProcess) -> dict:
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and lines[-1]["name"] == "SIPCLIDidEnd", result.stdout
    return lines[-1]["data"]


@pytest.fixture
def silent_peer():
    """A UDP socket that a sipcli run must never send to; yields its URI and a function: datagrams received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    def received() -> int:
        count = 0
        while True:
            try:
                sock.recv(65536)
            except BlockingIOError:
                return count
            count += 1

    yield f"sip:x@127.0.0.1:{sock.getsockname()[1]}", received
    sock.close()


BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "NaN", "1e999"]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("option", [("call", "URI", "--timeout"), ("call", "URI", "--duration"),
                                    ("register", "--timeout"), ("register", "--duration"),
                                    ("neighbours", "--timeout"), ("chat", "URI", "--timeout")],
                         ids=lambda option: " ".join(option))
def test_non_finite_or_negative_seconds_are_usage_errors(tmp_path, silent_peer, option, value):
    uri, received = silent_peer
    args = [uri if arg == "URI" else arg for arg in option]
    result = sipcli(tmp_path, *args, value)
    assert result.returncode == 2, (args, value, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option[-1] in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert (summary(result)["outcome"], summary(result)["exit_code"]) == ("usage", 2)
    assert len(result.stdout.splitlines()) == 1  # nothing started
    assert received() == 0


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("log_file", ["/nonexistent/x.log", "/proc/self/x.log", "DIR"])
def test_an_unwritable_log_file_is_one_line_and_exit_2_before_any_traffic(tmp_path, silent_peer, where, log_file):
    uri, received = silent_peer
    log_file = str(tmp_path) if log_file == "DIR" else log_file
    option = ["--log-file", log_file]
    args = [*option, "call", uri] if where == "before" else ["call", uri, *option]
    result = sipcli(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--log-file" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert summary(result)["exit_code"] == 2 and len(result.stdout.splitlines()) == 1
    assert received() == 0


def test_global_options_after_the_subcommand(tmp_path):
    """`--format text -v` after the subcommand's own arguments, and --config-dir after it too."""
    log = tmp_path / "run.log"
    result = sipcli(tmp_path, "accounts", "list", "--format", "text", "-v", "--log-file", str(log))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["ID", "Enabled", "Display", "name", "Outbound", "proxy",
                                                     "Register"]
    other = tmp_path / "other"
    added = subprocess.run([*SIPCLI, "accounts", "add", "a@example.test", "--password-env", "PW", "--config-dir",
                            str(other)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                           env={**os.environ, "PW": "secret"})
    assert added.returncode == 0 and (other / "config.json").exists(), added.stderr


def test_demo_takes_verbose_after_the_subcommand(tmp_path):
    result = sipcli(tmp_path, "demo", "-v", "--help")
    assert result.returncode == 0 and "Usage: sipcli demo" in result.stdout, result.stderr
    result = sipcli(tmp_path, "demo", "-v", "--duration", "x")
    assert result.returncode == 2 and "--duration" in result.stderr and "-v" not in result.stderr


def test_call_takes_format_and_verbose_after_the_uri(tmp_path, silent_peer):
    uri, _ = silent_peer
    result = sipcli(tmp_path, "call", uri, "--format", "text", "-v", "--timeout", "nan")
    assert result.returncode == 2 and "No such option" not in result.stderr
    # The text view's summary (SIPCLIDidEnd as a sentence), not a JSON line.
    assert result.stdout.splitlines()[-1].endswith("-> exit 2 (usage error)") and not result.stdout.startswith("{")


@pytest.mark.parametrize("args", [["nosuchcommand"], [], ["call"], ["call", "not a uri"], ["register", "--bogus"],
                                  ["accounts", "add", "bad"], ["accounts", "set", "a@example.test"],
                                  ["listen", "--port", "99999"], ["completion", "ksh"], ["--format", "xml", "call"]],
                         ids=lambda args: " ".join(args) or "no-args")
def test_a_usage_error_ends_stdout_with_sipclididend_exit_2(tmp_path, args):
    """For consumers that read only the JSON lines: the usage error is on stdout too, as the summary."""
    result = sipcli(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["name"] for line in lines] == ["SIPCLIDidEnd"], result.stdout
    assert (lines[0]["data"]["outcome"], lines[0]["data"]["exit_code"]) == ("usage", 2)
    assert lines[0]["data"]["reason"] and "Traceback" not in result.stderr
