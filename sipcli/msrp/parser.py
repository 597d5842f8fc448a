"""Incremental, sans-IO MSRP frame parser.

``MSRPParser.feed(data)`` takes bytes as they arrive, whatever the read boundaries, and returns a list of
complete ``MSRPFrame`` objects, or a final ``ParseError`` after which the stream cannot be trusted and the
connection must be closed. Bodies are located with ``bytearray.find`` on the end-line, never byte by byte.

Limits (a peer cannot make us buffer or parse without bound): the first line and the header block together
are at most ``MAX_HEADER_SIZE`` bytes (16 KiB; this bounds every line's length too), with at most
``MAX_HEADER_COUNT`` header lines (64; RFC 4975 frames carry about ten); a body (one chunk) is at most
``MAX_BODY_SIZE`` bytes (16 MiB). Beyond any of them: a ``ParseError``.

The parser owns its input buffer. Besides ``feed``, a reader can fill it in place, without an intermediate
bytes object: ``view = parser.get_buffer()``, ``n = sock.recv_into(view)``, ``parser.buffer_updated(n)``
(the shape of ``asyncio.BufferedProtocol``). With ``copy_bodies=False`` frame bodies are memoryviews into that
buffer, valid only until the next ``feed``/``get_buffer`` call: the caller copies what it keeps, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipcli.msrp.message import CANONICAL_HEADERS, MSRPFrame

MAX_HEADER_SIZE = 16 * 1024
MAX_BODY_SIZE = 16 * 1024 * 1024
MAX_HEADER_COUNT = 64
READ_SIZE = 256 * 1024  # the smallest free space get_buffer offers (asyncio's own Protocol reads 256 KiB)
_TID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{2,31}\Z")
_METHOD = re.compile(r"[A-Z]+\Z")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+\Z")
_KNOWN_NAMES = frozenset(CANONICAL_HEADERS.values())
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

    def __init__(self, max_header_size: int = MAX_HEADER_SIZE, max_body_size: int = MAX_BODY_SIZE,
                 copy_bodies: bool = True, max_header_count: int = MAX_HEADER_COUNT) -> None:
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size
        self.copy_bodies = copy_bodies
        # Unparsed input is _buf[_start:_end]; every other index below is absolute in _buf too.
        self._buf = bytearray()
        self._start = 0
        self._end = 0
        self._view: memoryview | None = None  # the free space last lent out by get_buffer
        self._frame: MSRPFrame | None = None  # headers parsed, body pending
        self._end_mark = b""
        self._body_start = 0
        self._expected_end = 0  # where the pending frame ends if its Byte-Range tells the truth, else 0
        self._scan = 0  # where the next end-line search starts
        self.failed = False

    # -- input ---------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[MSRPFrame | ParseError]:
        if self.failed:
            return []
        size = len(data)
        if size:
            self._reserve(size)
            self._buf[self._end:self._end + size] = data
            self._end += size
        return self._parse()

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space to read into (at least `sizehint` bytes when positive); then call `buffer_updated`.

        While a large body (READ_SIZE or more, by its Byte-Range) is pending, the view ends where that frame
        ends: the read after it starts on a frame boundary into an empty buffer, so no byte of a large body is
        ever moved within the buffer. Smaller frames are read many per call.
        """
        self._release_view()
        exact = 0
        if self._expected_end > self._end and self._expected_end - self._body_start >= READ_SIZE:
            # Grow with what actually arrives, not by the peer's word alone: a header claiming a huge chunk
            # must not make us allocate it before its bytes come.
            exact = min(self._expected_end - self._end, max(4 * READ_SIZE, self._end - self._start))
            self._reserve(exact)
        else:
            self._reserve(max(sizehint, READ_SIZE))
        view = memoryview(self._buf)
        self._view = view[self._end:self._end + exact] if exact else view[self._end:]
        view.release()
        return self._view

    def buffer_updated(self, nbytes: int) -> list[MSRPFrame | ParseError]:
        """`nbytes` were written at the start of the last `get_buffer` view."""
        self._release_view()
        if self.failed:
            return []
        self._end += nbytes
        return self._parse()

    def _release_view(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None

    def _reserve(self, size: int) -> None:
        """Make room for `size` more bytes after _end: forget parsed bytes, move the rest to the front, grow."""
        buf = self._buf
        if self._start == self._end:
            self._shift(self._start)
        if len(buf) - self._end >= size:
            return
        if self._start:
            self._shift(self._start)
        needed = self._end + size
        if len(buf) >= needed:
            return
        try:
            buf.extend(bytes(needed - len(buf)))  # in place: realloc, no copy of the held bytes
        except BufferError:  # a borrowed body still holds the old buffer: leave it to its holder
            self._buf = bytearray(needed)
            self._buf[:self._end] = memoryview(buf)[:self._end]

    def _shift(self, offset: int) -> None:
        if not offset:
            return
        held = self._end - offset
        if held:
            # Slice assignment is a memcpy: overlapping ranges go through a temporary copy.
            source = memoryview(self._buf)[offset:self._end] if held <= offset else self._buf[offset:self._end]
            self._buf[:held] = source
        self._start = 0
        self._end = held
        if self._frame is not None:
            self._body_start -= offset
            if self._expected_end:
                self._expected_end -= offset
        self._scan = max(0, self._scan - offset)

    # -- parsing -------------------------------------------------------------------------------------------

    def _parse(self) -> list[MSRPFrame | ParseError]:
        out: list[MSRPFrame | ParseError] = []
        while self._start < self._end:
            item = self._parse_head() if self._frame is None else self._parse_body()
            if item is None:
                break
            out.append(item)
            if isinstance(item, ParseError):
                self.failed = True
                self._start = self._end = 0
                self._frame = None
                break
        return out

    def _fail(self, code: int, reason: str, tid: str | None = None, frame: MSRPFrame | None = None) -> ParseError:
        return ParseError(code, reason, tid, frame)

    def _parse_head(self) -> MSRPFrame | ParseError | None:
        buf, base, stop = self._buf, self._start, self._end
        limit = min(stop, base + self.max_header_size)
        nl = buf.find(b"\r\n", base, limit)
        if nl < 0:
            if stop - base >= self.max_header_size:
                return self._fail(400, "first line too long")
            if not b"MSRP ".startswith(bytes(buf[base:min(stop, base + 5)])):
                return self._fail(400, "not an MSRP frame")
            return None
        try:
            first = buf[base:nl].decode("utf-8")
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
        # The header block ends either at an empty line (a body follows) or at the end-line (no body). Look
        # for the end-line first: a body-less frame then bounds the search for an empty line, which would
        # otherwise run on through the frames pipelined behind it.
        start = max(nl, self._scan)
        end = buf.find(_END_PREFIX, start, limit)
        blank = buf.find(b"\r\n\r\n", start, limit if end < 0 else end + 4)
        if blank < 0 and end < 0:
            if stop - base >= self.max_header_size:
                return self._fail(413, "header block too large", tid)
            self._scan = max(nl, stop - len(_END_PREFIX))
            return None
        self._scan = 0
        frame = MSRPFrame(tid, method, code, comment)
        if end >= 0 and (blank < 0 or end < blank):
            mark = end + len(_END_PREFIX)
            tail = mark + len(tid) + 3
            if stop < tail:
                self._scan = end
                return None
            if buf[mark:mark + len(tid)] != tid.encode() or buf[tail - 2:tail] != b"\r\n" or \
                    buf[tail - 3] not in b"+$#":
                return self._fail(400, "end-line does not match the transaction", tid)
            error = self._parse_headers(frame, nl + 2, end)
            if error:
                return error
            frame.continuation = chr(buf[tail - 3])
            self._start = tail
            return frame
        error = self._parse_headers(frame, nl + 2, blank)
        if error:
            return error
        self._frame = frame
        self._end_mark = _END_PREFIX + tid.encode()
        self._body_start = blank + 4
        # An empty body puts the end-line's CRLF right where the body starts: search from the blank line on.
        self._scan = blank + 2
        item = self._parse_body()
        if item is None:
            self._expected_end = self._frame_end_hint(frame)
        return item

    def _frame_end_hint(self, frame: MSRPFrame) -> int:
        """Where the pending frame ends by its Byte-Range (`start-end/...`): a read-size hint only, 0 if unknown."""
        span = frame.headers.get("Byte-Range", "").partition("/")[0].partition("-")
        if not (span[0].isdigit() and span[2].isdigit()):
            return 0
        size = int(span[2]) - int(span[0]) + 1
        return self._body_start + size + len(self._end_mark) + 3 if 0 <= size <= self.max_body_size else 0

    def _parse_headers(self, frame: MSRPFrame, start: int, end: int) -> ParseError | None:
        if end <= start:
            return None
        try:
            block = self._buf[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(400, "header block is not UTF-8", frame.transaction_id)
        if block.count("\r\n") >= self.max_header_count:
            return self._fail(400, f"more than {self.max_header_count} header lines", frame.transaction_id)
        headers = frame.headers
        for line in block.split("\r\n"):
            name, sep, value = line.partition(":")
            if name not in _KNOWN_NAMES:
                if not sep or not _HEADER_NAME.match(name):
                    return self._fail(400, f"bad header line {line[:80]!r}", frame.transaction_id)
                name = CANONICAL_HEADERS.get(name.lower(), name)
            elif not sep:
                return self._fail(400, f"bad header line {line[:80]!r}", frame.transaction_id)
            headers[name] = value.strip(" \t")
        return None

    def _parse_body(self) -> MSRPFrame | ParseError | None:
        buf, stop = self._buf, self._end
        mark = self._end_mark
        body_start = self._body_start
        frame = self._frame
        assert frame is not None  # called only while a frame's body is pending
        while True:
            idx = buf.find(mark, self._scan, stop)
            if idx < 0:
                if stop - body_start > self.max_body_size + len(mark) + 3:
                    return self._fail(413, "body too large or end-line missing", frame.transaction_id, frame)
                self._scan = max(body_start - 2, stop - len(mark))
                return None
            tail = idx + len(mark) + 3
            if stop < tail:
                self._scan = idx
                return None
            if buf[tail - 3] in b"+$#" and buf[tail - 2:tail] == b"\r\n":
                break
            self._scan = idx + 1  # the body merely contains text that looks like our end-line
        if idx - body_start > self.max_body_size:
            return self._fail(413, "body too large", frame.transaction_id, frame)
        if idx > body_start:
            view = memoryview(buf)
            if self.copy_bodies:
                frame.body = view[body_start:idx].tobytes()  # one copy; buf[a:b] would make two
            else:
                frame.body = view[body_start:idx]
            view.release()
        else:
            frame.body = b""
        frame.continuation = chr(buf[tail - 3])
        self._start = tail
        self._frame = None
        self._expected_end = 0
        self._scan = 0
        return frame
