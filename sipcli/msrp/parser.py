"""Incremental, sans-IO MSRP frame parser.

``MSRPParser.feed(data)`` takes bytes as they arrive, whatever the read boundaries, and returns a list of
complete ``MSRPFrame`` objects, or a final ``ParseError`` after which the stream cannot be trusted and the
connection must be closed. Bodies are located with ``bytes.find`` on the end-line, never byte by byte, and both
the header block and each body are bounded so that a peer cannot make us buffer without limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipcli.msrp.message import CANONICAL_HEADERS, MSRPFrame

MAX_HEADER_SIZE = 16 * 1024
MAX_BODY_SIZE = 16 * 1024 * 1024
_TID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{2,31}\Z")
_METHOD = re.compile(r"[A-Z]+\Z")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+\Z")
_END_PREFIX = b"\r\n-------"


@dataclass(eq=True, slots=True)
class ParseError:
    """The stream is malformed: answer `code` to `frame` when known (413 / 400), then close."""

    code: int
    reason: str
    transaction_id: str | None = None
    frame: MSRPFrame | None = None


class MSRPParser:
    """Turns a byte stream into MSRP frames."""

    def __init__(self, max_header_size: int = MAX_HEADER_SIZE, max_body_size: int = MAX_BODY_SIZE) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self._buf = bytearray()
        self._frame: MSRPFrame | None = None  # headers parsed, body pending
        self._end_mark = b""
        self._body_start = 0
        self._scan = 0  # where the next end-line search starts
        self.failed = False

    def feed(self, data: bytes) -> list[MSRPFrame | ParseError]:
        if self.failed:
            return []
        buf = self._buf
        buf += data
        out: list[MSRPFrame | ParseError] = []
        while buf:
            item = self._parse_head(buf) if self._frame is None else self._parse_body(buf)
            if item is None:
                break
            out.append(item)
            if isinstance(item, ParseError):
                self.failed = True
                buf.clear()
                break
        return out

    def _fail(self, code: int, reason: str, tid: str | None = None, frame: MSRPFrame | None = None) -> ParseError:
        return ParseError(code, reason, tid, frame)

    def _parse_head(self, buf: bytearray) -> MSRPFrame | ParseError | None:
        nl = buf.find(b"\r\n", 0, self.max_header_size)
        if nl < 0:
            if len(buf) >= self.max_header_size:
                return self._fail(400, "first line too long")
            if not b"MSRP ".startswith(bytes(buf[:5])):
                return self._fail(400, "not an MSRP frame")
            return None
        try:
            first = buf[:nl].decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(400, "first line is not UTF-8")
        parts = first.split(" ", 3)
        if len(parts) < 3 or parts[0] != "MSRP" or not _TID.match(parts[1]):
            return self._fail(400, f"bad first line {first[:80]!r}")
        tid = parts[1]
        method = code = comment = None
        if len(parts[2]) == 3 and parts[2].isdigit():
            code = int(parts[2])
            comment = parts[3] if len(parts) > 3 else None
        elif _METHOD.match(parts[2]) and len(parts) == 3:
            method = parts[2]
        else:
            return self._fail(400, f"bad first line {first[:80]!r}", tid)
        # The header block ends either at an empty line (a body follows) or at the end-line (no body).
        start = max(nl, self._scan)
        limit = self.max_header_size
        blank = buf.find(b"\r\n\r\n", start, limit)
        end = buf.find(_END_PREFIX, start, limit)
        if blank < 0 and end < 0:
            if len(buf) >= limit:
                return self._fail(413, "header block too large", tid)
            self._scan = max(nl, len(buf) - len(_END_PREFIX))
            return None
        self._scan = 0
        frame = MSRPFrame(tid, method, code, comment)
        if end >= 0 and (blank < 0 or end < blank):
            mark = end + len(_END_PREFIX)
            tail = mark + len(tid) + 3
            if len(buf) < tail:
                self._scan = end
                return None
            if buf[mark:mark + len(tid)] != tid.encode() or buf[tail - 2:tail] != b"\r\n" or \
                    buf[tail - 3] not in b"+$#":
                return self._fail(400, "end-line does not match the transaction", tid)
            error = self._parse_headers(frame, buf, nl + 2, end)
            if error:
                return error
            frame.continuation = chr(buf[tail - 3])
            del buf[:tail]
            return frame
        error = self._parse_headers(frame, buf, nl + 2, blank)
        if error:
            return error
        self._frame = frame
        self._end_mark = _END_PREFIX + tid.encode()
        self._body_start = blank + 4
        # An empty body puts the end-line's CRLF right where the body starts: search from the blank line on.
        self._scan = blank + 2
        return self._parse_body(buf)

    def _parse_headers(self, frame: MSRPFrame, buf: bytearray, start: int, end: int) -> ParseError | None:
        if end <= start:
            return None
        try:
            block = buf[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(400, "header block is not UTF-8", frame.transaction_id)
        headers = frame.headers
        for line in block.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep or not _HEADER_NAME.match(name):
                return self._fail(400, f"bad header line {line[:80]!r}", frame.transaction_id)
            headers[CANONICAL_HEADERS.get(name.lower(), name)] = value.strip(" \t")
        return None

    def _parse_body(self, buf: bytearray) -> MSRPFrame | ParseError | None:
        mark = self._end_mark
        body_start = self._body_start
        while True:
            idx = buf.find(mark, self._scan)
            if idx < 0:
                if len(buf) - body_start > self.max_body_size + len(mark) + 3:
                    frame = self._frame
                    return self._fail(413, "body too large or end-line missing", frame.transaction_id, frame)
                self._scan = max(body_start - 2, len(buf) - len(mark))
                return None
            tail = idx + len(mark) + 3
            if len(buf) < tail:
                self._scan = idx
                return None
            if buf[tail - 3] in b"+$#" and buf[tail - 2:tail] == b"\r\n":
                break
            self._scan = idx + 1  # the body merely contains text that looks like our end-line
        frame = self._frame
        if idx - body_start > self.max_body_size:
            return self._fail(413, "body too large", frame.transaction_id, frame)
        if idx > body_start:
            view = memoryview(buf)
            frame.body = view[body_start:idx].tobytes()  # one copy; buf[a:b] would make two
            view.release()
        else:
            frame.body = b""
        frame.continuation = chr(buf[tail - 3])
        del buf[:tail]
        self._frame = None
        self._scan = 0
        return frame
