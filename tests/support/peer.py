"""A library-driven peer: one long-lived process running SIPApplication, driven line by line from a test.

Run as ``python -m tests.support.peer CONFIG_DIR [--local-ip IP] [--account ID] [--auto-answer]``; it prints every
notification as a JSON line (sipcli.jsonlines) and executes each line of stdin as Python on the loop thread, in
a namespace holding ``application``, ``account`` (the account the application activated), ``sessions`` (every
Session seen, in order), ``Session``, ``SIPURI``, ``Route`` and ``asyncio``. A line that binds ``result`` to an
awaitable is awaited. After each line the peer prints ``PeerDidRun`` with ``error`` (None or the exception text).
``LibraryPeer`` runs one and follows its lines. PEER_LOG_LEVEL=N in the environment logs pjsip to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import collect_json_lines, stop_process

ROOT = Path(__file__).resolve().parents[2]


class LibraryPeer:
    """One running peer (see the module docstring): send(code) and wait_for(name) like SIPCLIProcess."""

    def __init__(self, config_dir: Path, *args: str) -> None:
        self.events: list[dict] = []
        self._changed = threading.Condition()
        config_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = config_dir / "peer.err"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.peer", str(config_dir), *args], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._reader = threading.Thread(target=collect_json_lines, args=(self.process.stdout, self.events,
                                                                         self._changed), daemon=True)
        self._reader.start()

    def find(self, name: str, sender: str | None = None, start: int = 0) -> list[dict]:
        return [event for event in self.events[start:]
                if event["name"] == name and (sender is None or event["sender"] == sender)]

    def names(self, start: int = 0) -> list[str]:
        return [event["name"] for event in self.events[start:]]

    def wait_for(self, name: str, sender: str | None = None, start: int = 0, timeout: float = 10.0) -> dict:
        """The first event called name (from sender) at index start or later, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.find(name, sender, start)
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    failures = [event["data"] for event in self.find("SIPSessionDidFail", start=start)]
                    raise AssertionError(f"no {name} from the peer; got {self.names(start)} {failures}\n"
                                         f"{self.stderr_path.read_text()[-3000:]}")
                self._changed.wait(min(remaining, 0.1))

    def wait_until(self, condition: Any, timeout: float = 10.0) -> None:
        """Wait until condition() is true, re-checked as events arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"condition not met; got {self.names()}")
                self._changed.wait(min(remaining, 0.1))

    def run(self, code: str, timeout: float = 10.0) -> None:
        """Execute code in the peer and wait until it ran; its exception fails the test."""
        start = len(self.events)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        done = self.wait_for("PeerDidRun", start=start, timeout=timeout)
        assert done["data"]["error"] is None, f"{code!r}: {done['data']['error']}"

    def mark(self) -> int:
        return len(self.events)

    def stop(self) -> int:
        assert self.process.stdin is not None
        stop_process(self.process, 15, ask=self.process.stdin.close)  # its stdin's end is its signal to go
        self._reader.join(5)
        self._stderr.close()
        return self.process.returncode


class _Printer:
    def __init__(self, writer: Any, namespace: dict[str, Any], auto_answer: bool) -> None:
        self.writer = writer
        self.namespace = namespace
        self.auto_answer = auto_answer

    def handle_notification(self, notification: Any) -> None:
        self.writer.handle_notification(notification)
        if notification.name in ("SIPSessionNewOutgoing", "SIPSessionNewIncoming"):
            self.namespace["sessions"].append(notification.sender)
        if notification.name == "SIPSessionNewIncoming" and self.auto_answer:
            session = notification.sender
            streams = notification.data.streams
            session.accept(audio="audio" in streams, chat="chat" in streams)


async def _main(options: argparse.Namespace) -> None:
    from sipcli.account import AccountManager, BonjourAccount
    from sipcli.application import SIPApplication
    from sipcli.configuration import FileStorage
    from sipcli.jsonlines import JSONLinesWriter
    from sipcli.notification import NotificationCenter, NotificationData
    from sipcli.session import Session
    from sipcli.uri import SIPURI, Route
    from tests.support.ports import free_port

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # pjsua's own prints go to stderr
    writer = JSONLinesWriter(out)
    application = SIPApplication()
    namespace: dict[str, Any] = {"application": application, "sessions": [], "Session": Session, "SIPURI": SIPURI,
                                 "Route": Route, "asyncio": asyncio, "AccountManager": AccountManager}
    printer = _Printer(writer, namespace, options.auto_answer)
    center = NotificationCenter()
    center.add_observer(printer)
    port = free_port()  # UDP and TCP on one port: pjsip moves a large request to TCP on the UDP port's number
    engine: dict[str, Any] = {"udp_port": port, "tcp_port": port, "tls_port": None,
                              "log_level": int(os.environ.get("PEER_LOG_LEVEL", "0"))}
    if options.local_ip:
        engine["local_ip"] = options.local_ip
    accounts = None if options.all_accounts else [options.account or "bonjour@local"]
    await application.start(FileStorage(Path(options.config_dir)), engine_options=engine, accounts=accounts)
    manager = AccountManager()
    namespace["account"] = manager.get_account(options.account) if options.account else BonjourAccount()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        error = None
        try:
            namespace.pop("result", None)
            exec(json.loads(line), namespace)
            result = namespace.get("result")
            if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                namespace["result"] = await result
        except Exception as exc:  # reported to the test
            error = f"{type(exc).__name__}: {exc}"
        center.post_notification("PeerDidRun", sender="peer", data=NotificationData(error=error))
    await application.stop()
    center.remove_observer(printer)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config_dir")
    parser.add_argument("--local-ip", default="127.0.0.1")
    parser.add_argument("--account")
    parser.add_argument("--all-accounts", action="store_true")
    parser.add_argument("--auto-answer", action="store_true")
    if os.environ.get("PEER_LOG_LEVEL"):
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    asyncio.run(_main(parser.parse_args()))


def caller_and_callee(tmp_path: Path, ready: str, caller_settings: dict | None = None,
                      ) -> Iterator[tuple[LibraryPeer, LibraryPeer, str]]:
    """For a fixture (``yield from``): an auto-answering callee and a caller (with caller_settings as its
    config.json), both past the ready notification, and the callee's URI; both must exit 0 when stopped."""
    if caller_settings is not None:
        (tmp_path / "caller").mkdir()
        (tmp_path / "caller" / "config.json").write_text(json.dumps(caller_settings))
    callee = LibraryPeer(tmp_path / "callee", "--auto-answer")
    caller = LibraryPeer(tmp_path / "caller")
    try:
        address = callee.wait_for("SIPEngineDidStart")["data"]["transports"]["udp"]
        callee.wait_for(ready)
        caller.wait_for(ready)
        yield caller, callee, f"sip:bob@{address}"
    finally:
        assert caller.stop() == 0
        assert callee.stop() == 0
