"""The one place where notifications become JSON lines (schema version ``SCHEMA_VERSION``).

Every line is an object with ``v``, ``time``, ``name``, ``sender`` and ``data``. Objects name
themselves through a ``notification_id`` attribute (e.g. ``session/1``); anything the encoder does not
know is rendered with ``str()`` so that an event is never lost to a serialization error.
"""

from __future__ import annotations

import base64
import collections
import enum
import errno
import io
import json
import os
import signal
import threading
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from time import monotonic, sleep
from typing import IO, Any

from sipcli.notification import Notification, NotificationData, UnknownSender

__all__ = ["SCHEMA_VERSION", "JSONLinesWriter", "LineSink", "format_notification", "notification_record", "sender_id",
           "to_jsonable"]

SCHEMA_VERSION = 1
_MAX_DEPTH = 8


def sender_id(sender: object) -> str:
    """The stable string that names a notification's sender in the output."""
    if sender is UnknownSender or sender is None:
        return "unknown"
    if isinstance(sender, str):
        return sender
    ident = getattr(sender, "notification_id", None)
    if isinstance(ident, str):
        return ident
    return type(sender).__name__.lower()


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Convert value to JSON-compatible data; never raises."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if _depth > _MAX_DEPTH:
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value if isinstance(value.value, str | int) else value.name, _depth + 1)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, NotificationData):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in vars(value).items()}
    if isinstance(value, Mapping):
        return {str(to_jsonable(k, _depth + 1)): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [to_jsonable(item, _depth + 1) for item in items]
    ident = getattr(value, "notification_id", None)
    if isinstance(ident, str):
        return ident
    as_json = getattr(value, "__json__", None)
    if callable(as_json):
        try:
            return to_jsonable(as_json(), _depth + 1)
        except Exception:
            pass
    if isinstance(value, str | int):  # subclasses without __json__ (a Password has one that masks it)
        return str(value) if isinstance(value, str) else int(value)
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _iso(moment: datetime) -> str:
    """ISO-8601, with UTC spelled Z as in every line's ``time``."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def notification_record(notification: Notification) -> dict:
    """The output object for one notification."""
    return {
        "v": SCHEMA_VERSION,
        "time": _iso(notification.timestamp),
        "name": notification.name,
        "sender": sender_id(notification.sender),
        "data": to_jsonable(notification.data),
    }


def format_notification(notification: Notification) -> str:
    """One JSON line (no newline) for notification; non-ASCII is kept as is."""
    return json.dumps(notification_record(notification), ensure_ascii=False, separators=(",", ":"))


class LineSink:
    """Where output lines go without ever blocking the caller: a bounded buffer drained by a writer thread.

    ``write_line()`` appends to the buffer and wakes the thread, which writes to fd; ``write_final()`` does the
    same without any Python-level lock, so a signal handler may write the last line. A reader that stops reading
    blocks only that thread; once ``max_bytes`` are waiting, further lines are dropped and counted (``dropped``)
    and one warning goes to stderr. A reader that went away (EPIPE) or a closed fd ends the output silently; any
    other write error (ENOSPC from /dev/full) is reported on stderr once. Either way the job goes on.
    """

    def __init__(self, fd: int | None, *, max_bytes: int = 8 * 1024 * 1024, warn: IO[str] | None = None) -> None:
        self._fd = fd
        self._max_bytes = max_bytes
        self._warn = warn
        self._lines: collections.deque[bytes] = collections.deque()
        self._producers = threading.Lock()
        self._queued = 0  # bytes appended (producers, under _producers)
        self._written = 0  # bytes taken by the thread (only the thread writes it)
        self._busy = False
        self._failed = fd is None
        self.dropped = 0
        self._wakeup = os.eventfd(0, os.EFD_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="sipcli-output", daemon=True)
        self._thread.start()

    def write_line(self, line: str) -> None:
        self._put((line + "\n").encode("utf-8", "replace"))

    def isatty(self) -> bool:
        return self._fd is not None and os.isatty(self._fd)

    def write_text(self, text: str) -> None:
        """Raw text (help, tables), as a text stream's write() gives it."""
        if text:
            self._put(text.encode("utf-8", "replace"))

    def write_bytes(self, data: bytes) -> None:
        self._put(data)

    def stream(self) -> io.TextIOBase:
        """A text stream that writes to this sink (for click.echo and the like)."""
        return _SinkStream(self)

    def write_final(self, line: str) -> None:
        """Queue line even beyond the bound (the summary line, which must not be the one dropped)."""
        self._put((line + "\n").encode("utf-8", "replace"), bounded=False)

    def _put(self, data: bytes, bounded: bool = True) -> None:
        if self._failed:
            return
        if bounded:
            with self._producers:
                if self._queued - self._written + len(data) > self._max_bytes:
                    self.dropped += 1
                    if self.dropped == 1:
                        self._warning("stdout is not being read: dropping output lines (bounded buffer full)")
                    return
                self._queued += len(data)
                self._lines.append(data)
        else:  # no lock: the summary may be written from a signal handler that interrupted a producer
            self._queued += len(data)
            self._lines.append(data)
        os.eventfd_write(self._wakeup, 1)

    def drain(self, timeout: float) -> bool:
        """Wait up to timeout seconds for every queued line to be written; True when they were."""
        deadline = monotonic() + timeout
        while (self._lines or self._busy) and not self._failed:
            if monotonic() >= deadline:
                return False
            sleep(0.002)
        return True

    def _run(self) -> None:
        # Signals are for the main thread: with them blocked here, SIGINT/SIGTERM never land in a blocked write.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            os.eventfd_read(self._wakeup)
            while self._lines:
                self._busy = True
                data = self._lines.popleft()
                if not self._failed:
                    self._write(data)
                self._written += len(data)
                self._busy = False

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as error:
            self._failed = True
            self._lines.clear()
            if error.errno not in (errno.EPIPE, errno.EBADF):
                self._warning(f"cannot write to stdout ({error.strerror}): further output is dropped")

    def _warning(self, message: str) -> None:
        if self._warn is not None:
            try:
                self._warn.write(f"sipcli: {message}\n")
                self._warn.flush()
            except (OSError, ValueError):
                pass


class _SinkBuffer(io.RawIOBase):
    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if data:
            self._sink.write_bytes(bytes(data))
        return len(data)


class _SinkStream(io.TextIOBase):
    def __init__(self, sink: LineSink) -> None:
        self._sink = sink
        self.buffer = _SinkBuffer(sink)

    encoding = "utf-8"
    errors = "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._sink.isatty()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._sink.write_text(text)
        return len(text)


class _StreamLines:
    """write_line() straight to a text stream, flushed (tests, in-process use)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or failing stream: the job goes on and still reports its exit code

    write_final = write_line


class JSONLinesWriter:
    """A notification observer that writes each notification as one JSON line to a LineSink or a text stream."""

    def __init__(self, out: LineSink | IO[str]) -> None:
        self.out = out if isinstance(out, LineSink) else _StreamLines(out)

    def render(self, notification: Notification) -> str:
        return format_notification(notification)

    def handle_notification(self, notification: Notification) -> None:
        self.out.write_line(self.render(notification))

    def write_summary(self, notification: Notification) -> None:
        """Write the run's last line, which is never the one dropped when the buffer is full."""
        self.out.write_final(self.render(notification))

