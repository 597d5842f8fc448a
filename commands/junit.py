"""JUnit XML reports (``--junit FILE``): one testcase per run or check, appended to FILE.

Several processes may add to one file at once (parallel CI jobs, ``sipcli check --parallel``): each takes an
exclusive lock on ``FILE.lock``, reads FILE, adds its testcases to the ``sipcli`` testsuite and replaces FILE
atomically (a temporary file in the same directory, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["KEY_EVENT_LINES", "Report", "TestCase", "add_testcases", "key_event_line"]

SUITE = "sipcli"
KEY_EVENT_LINES = 40  # the last events kept for a testcase's details
_QUIET = {"SIPEngineLog", "SIPEngineSIPTrace", "SIPSessionChangedState"}
_MAX_LINE = 400


@dataclass
class TestCase:
    name: str
    classname: str
    seconds: float
    exit_code: int
    outcome: str
    reason: str
    details: str = ""  # the key events, one per line
    expected_exit_code: int = 0  # the exit code that passes

    def element(self) -> ET.Element:
        case = ET.Element("testcase", name=_printable(self.name), classname=_printable(self.classname),
                          time=f"{max(self.seconds, 0.0):.3f}")
        if self.exit_code != self.expected_exit_code:
            kind = "error" if self.outcome in ("usage", "config", "interrupted") else "failure"
            message = f"exit {self.exit_code} ({self.outcome}): {self.reason}"
            if self.expected_exit_code:
                message += f" (expected exit {self.expected_exit_code})"
            problem = ET.SubElement(case, kind, message=_printable(message), type=self.outcome)
            problem.text = _printable(self.details)
        elif self.details:
            ET.SubElement(case, "system-out").text = _printable(self.details)
        return case


def key_event_line(record: dict[str, Any]) -> str | None:
    """One short line for a JSON event record (None for the noisy ones a report leaves out)."""
    name = str(record.get("name", ""))
    data = record.get("data")
    if name in _QUIET or (name == "SIPSessionGotAudioStatistics" and isinstance(data, dict)
                          and not data.get("final")):
        return None
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key != "timestamp"}
    line = f"{record.get('time', '')} {record.get('sender', '')} {name} {json.dumps(data, ensure_ascii=False)}"
    return _printable(line[:_MAX_LINE])


def _printable(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (remote input may hold any)."""
    return "".join(c if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                   or c >= "\U00010000" else "?" for c in text)


def add_testcases(path: Path, cases: list[TestCase]) -> None:
    """Add cases to the sipcli testsuite in path (made if missing); OSError or ValueError when it cannot be."""
    path = Path(path)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            root = _read(path)
            suite = next((s for s in root.iter("testsuite") if s.get("name") == SUITE), None)
            if suite is None:
                suite = ET.SubElement(root, "testsuite", name=SUITE, timestamp=_now(), hostname=socket.gethostname())
            for case in cases:
                suite.append(case.element())
            _count(suite, suite.findall("testcase"))
            _count(root, [case for s in root.iter("testsuite") for case in s.findall("testcase")])
            _replace(path, root)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> ET.Element:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return ET.Element("testsuites", name=SUITE)
    if not text.strip():
        return ET.Element("testsuites", name=SUITE)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ValueError(f"{path} is not a JUnit XML file: {error}") from None
    if root.tag == "testsuite":  # a single-suite file: keep it, inside testsuites
        outer = ET.Element("testsuites", name=SUITE)
        outer.append(root)
        return outer
    if root.tag != "testsuites":
        raise ValueError(f"{path} is not a JUnit XML file (root element {root.tag!r})")
    return root


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    element.set("errors", str(sum(case.find("error") is not None for case in cases)))
    element.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    element.set("time", f"{sum(float(case.get('time') or 0) for case in cases):.3f}")


def _replace(path: Path, root: ET.Element) -> None:
    ET.indent(root)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Report:
    """--junit FILE of one run: keeps the run's key events (a notification observer) and adds the testcase when
    the run ends. FILE is checked at once: an unreadable or foreign one is a usage error before any traffic."""

    def __init__(self, path: Path) -> None:
        from sipcli.notification import NotificationCenter

        self.path = self.check_file(path, "--junit")
        self.started = time.monotonic()
        self.events: collections.deque[str] = collections.deque(maxlen=KEY_EVENT_LINES)
        self.name = shlex.join(["sipcli", *sys.argv[1:]])
        NotificationCenter().add_observer(self)

    @staticmethod
    def check_file(path: Path, option: str) -> Path:
        """path, when it is missing, empty or a JUnit XML file; else a usage error (exit 2) before any traffic."""
        from sipcli.commands.exitcodes import fail_usage

        path = Path(path)
        try:
            _read(path)
        except (OSError, ValueError) as error:
            fail_usage(f"{option}: {error}")
        if not os.access(path.parent if str(path.parent) else ".", os.W_OK):
            fail_usage(f"{option}: cannot write to the directory of {path}")
        return path

    def handle_notification(self, notification: Any) -> None:
        from sipcli.jsonlines import notification_record

        line = key_event_line(notification_record(notification))
        if line is not None:
            self.events.append(line)

    def finish(self, summary: Any, command_path: str) -> None:
        """Add this run (its SIPCLIDidEnd notification) as a testcase; a failure to write is one stderr line."""
        from sipcli.jsonlines import notification_record
        from sipcli.notification import NotificationCenter

        NotificationCenter().discard_observer(self)
        record = notification_record(summary)
        data = record["data"]
        self.events.append(key_event_line(record) or "")
        case = TestCase(self.name, command_path.replace(" ", "."), time.monotonic() - self.started,
                        int(data["exit_code"]), str(data["outcome"]), str(data["reason"]), "\n".join(self.events))
        try:
            add_testcases(self.path, [case])
        except (OSError, ValueError) as error:
            print(f"sipcli: --junit: cannot write {self.path}: {error}", file=sys.stderr)
