"""MSRP frames (RFC 4975 section 9): the data model, typed header access and serialization.

A frame is a request (``method`` set: SEND, REPORT, AUTH...) or a response (``code`` set). ``headers`` keeps
raw header values in wire order (To-Path and From-Path first, Content-Type last when there is a body);
``body`` is None when the frame has no content section, and ``continuation`` is the end-line flag:
``$`` complete, ``+`` more chunks follow, ``#`` aborted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sipcli.msrp.uri import MSRPURI, parse_path

CANONICAL_HEADERS = {name.lower(): name for name in (
    "To-Path", "From-Path", "Message-ID", "Success-Report", "Failure-Report", "Byte-Range", "Status",
    "Content-Type", "Content-ID", "Content-Description", "Content-Disposition", "Use-Path", "Expires",
    "Min-Expires", "Max-Expires", "WWW-Authenticate", "Authorization", "Authentication-Info")}

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 408: "Request Timeout",
           413: "Stop Sending", 415: "Unsupported Media Type", 423: "Interval Out-of-Bounds",
           481: "No Such Session", 501: "Unknown Method", 506: "Session Already Bound"}


class FrameError(ValueError):
    """A header value that does not follow RFC 4975 syntax."""


def new_transaction_id() -> str:
    """A transaction id with 64+ bits of randomness (RFC 4975 section 7.1)."""
    return secrets.token_hex(8)


def new_message_id() -> str:
    return secrets.token_hex(10)


@dataclass(eq=True, slots=True)
class MSRPFrame:
    """One MSRP request or response, as on the wire."""

    transaction_id: str
    method: str | None = None
    code: int | None = None
    comment: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | memoryview | None = None  # a memoryview only while a parser lends its buffer (copy_bodies=False)
    continuation: str = "$"

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def __json__(self) -> dict[str, object]:
        """What the reference's MSRPData exposes in a notification: the frame without its body (the content is
        reported beside it, decoded)."""
        try:
            byte_range: tuple[int, int | None, int | None] | None = self.byte_range
        except Exception:  # a malformed Byte-Range from the network: reported as absent
            byte_range = None
        return {"transaction_id": self.transaction_id, "method": self.method, "code": self.code,
                "comment": self.comment, "message_id": self.message_id, "content_type": self.content_type,
                "byte_range": list(byte_range) if byte_range is not None else None,
                "headers": dict(self.headers), "continuation": self.continuation}

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def to_path(self) -> list[MSRPURI]:
        return parse_path(self.headers.get("To-Path", ""))

    @property
    def from_path(self) -> list[MSRPURI]:
        return parse_path(self.headers.get("From-Path", ""))

    @property
    def message_id(self) -> str | None:
        return self.headers.get("Message-ID")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def byte_range(self) -> tuple[int, int | None, int | None]:
        """(start, end, total) with None for `*`; RFC default `1-*/*` when absent."""
        value = self.headers.get("Byte-Range")
        return (1, None, None) if value is None else parse_byte_range(value)

    @property
    def success_report(self) -> bool:
        return self.headers.get("Success-Report", "no").strip().lower() == "yes"

    @property
    def failure_report(self) -> str:
        """'yes' (default), 'no' or 'partial'."""
        value = self.headers.get("Failure-Report", "yes").strip().lower()
        return value if value in ("no", "partial") else "yes"

    @property
    def status(self) -> tuple[int, str | None] | None:
        """(code, comment) of a Status header (`000 200 OK`)."""
        value = self.headers.get("Status")
        if value is None:
            return None
        parts = value.strip().split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise FrameError(f"bad Status header: {value!r}")
        return int(parts[1]), parts[2] if len(parts) > 2 else None

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise FrameError(f"bad Expires header: {value!r}") from None

    @property
    def use_path(self) -> list[MSRPURI]:
        return parse_path(self.headers.get("Use-Path", ""))

    def serialize(self) -> bytes:
        """The frame as bytes on the wire."""
        tid = self.transaction_id
        if self.method is not None:
            first = f"MSRP {tid} {self.method}\r\n"
        elif self.comment is not None:
            first = f"MSRP {tid} {self.code:03d} {self.comment}\r\n"
        else:
            first = f"MSRP {tid} {self.code:03d}\r\n"
        head = first + "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        end = f"-------{tid}{self.continuation}\r\n".encode()
        if self.body is None:
            return head.encode() + end
        return b"".join((head.encode(), b"\r\n", self.body, b"\r\n", end))


def parse_byte_range(value: str) -> tuple[int, int | None, int | None]:
    """`start-end/total` where end and total may be `*`."""
    span, sep, total = value.strip().partition("/")
    start, sep2, end = span.partition("-")
    try:
        if not sep or not sep2:
            raise ValueError
        result = (int(start), None if end == "*" else int(end), None if total == "*" else int(total))
    except ValueError:
        raise FrameError(f"bad Byte-Range header: {value!r}") from None
    if result[0] < 1 or (result[1] is not None and result[1] < result[0] - 1):
        raise FrameError(f"bad Byte-Range header: {value!r}")
    return result


def make_response(request: MSRPFrame, code: int, comment: str | None, local_uri: str) -> MSRPFrame:
    """A hop-by-hop response: To-Path is the previous hop (first From-Path URI), From-Path is us."""
    previous_hop = request.headers.get("From-Path", "").split(" ", 1)[0]
    return MSRPFrame(request.transaction_id, code=code, comment=comment if comment is not None else REASONS.get(code),
                     headers={"To-Path": previous_hop, "From-Path": local_uri})
