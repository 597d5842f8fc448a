"""The one place where notifications become JSON lines (schema version ``SCHEMA_VERSION``).

Every line is an object with ``v``, ``time``, ``name``, ``sender`` and ``data``. Objects name
themselves through a ``notification_id`` attribute (e.g. ``session/1``); anything the encoder does not
know is rendered with ``str()`` so that an event is never lost to a serialization error.
"""

from __future__ import annotations

import base64
import enum
import json
import threading
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from typing import IO, Any

from sipcli.notification import Notification, NotificationData, UnknownSender

__all__ = ["SCHEMA_VERSION", "JSONLinesWriter", "TextWriter", "format_notification", "sender_id", "to_jsonable"]

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


class JSONLinesWriter:
    """A notification observer that writes each notification as one flushed JSON line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def handle_notification(self, notification: Notification) -> None:
        self.write_line(format_notification(notification))

    def write_line(self, line: str) -> None:
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except BrokenPipeError:
                pass  # the reader went away; the job goes on and still reports its exit code


class TextWriter(JSONLinesWriter):
    """The human view for ``--format text``: time, sender, name and compact data on one line."""

    def handle_notification(self, notification: Notification) -> None:
        record = notification_record(notification)
        data = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in record["data"].items())
        stamp = notification.timestamp.strftime("%H:%M:%S.%f")[:-3]
        self.write_line(f"{stamp} {record['sender']:<24} {record['name']} {data}".rstrip())
