"""The sans-IO MSRP session endpoint (RFC 4975), in the style of h11.

An ``MSRPConnection`` knows our path (relays learnt from Use-Path, then our own URI last) and the remote path
(from the peer's ``a=path``). It never touches a socket::

    conn = MSRPConnection(local_path=[my_uri], remote_path=peer_path, chunk_size=16384)
    message_id = conn.send_message(b"hello", "text/plain")
    sock.sendall(conn.data_to_send())
    conn.receive_data(sock.recv(65536))
    for event in conn.next_events(): ...   # MessageReceived, MessageDelivered, MessageNotDelivered, ...
    conn.expire()                          # from a timer: transaction timeouts (408)

Delivery rules (RFC 4975 section 7): with ``Success-Report: yes`` a message is delivered when a success
REPORT covers all its bytes; otherwise, with the default ``Failure-Report: yes``, when every chunk got a 200
response. Any negative response or failure REPORT makes it not delivered. With ``Failure-Report: no`` or
``partial`` and no success report nothing confirms delivery, so only failures are reported.
Incoming SENDs are answered 200, 481 when the To-Path is not our session, 413 when the message is larger than
``max_message_size``, 400 when malformed; REPORTs are sent when the sender asked for them.

Limits on what a peer makes us hold: messages being reassembled hold at most ``max_message_size`` bytes in
total (64 MiB), counting the gap a chunk's far Byte-Range start opens, and at most ``max_partial_messages``
(256) messages are in progress at once; a chunk beyond either is answered 413 (the sender stops that message).
The parser bounds each frame (see ``sipcli.msrp.parser``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sipcli.msrp.message import REASONS, FrameError, MSRPFrame, new_message_id, new_transaction_id, parse_byte_range
from sipcli.msrp.parser import MAX_BODY_SIZE, MAX_HEADER_SIZE, MSRPParser, ParseError
from sipcli.msrp.uri import MSRPURI, URIError, format_path, parse_path

DEFAULT_CHUNK_SIZE = 16 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
RESPONSE_TIMEOUT = 30.0
MAX_PARTIAL_MESSAGES = 256
# Messages whose chunks go out interleaved (a small one is not stuck behind a large one); later ones wait their
# turn, so that we never have more messages in progress at a receiver than it takes (MAX_PARTIAL_MESSAGES).
MAX_INTERLEAVED = 16


@dataclass(slots=True)
class MessageReceived:
    """A complete incoming message; `frame` is its first SEND chunk (headers as received).

    `body` is bytes when the message came in one chunk; a message reassembled from several chunks is handed
    over as the bytearray it was reassembled in, without a final copy (it compares equal to bytes, decodes,
    hashes with hashlib, but is mutable and not hashable: `bytes(body)` when that matters). The first chunk's
    `frame.body` is then None: its bytes are part of `body`.
    """

    message_id: str
    content_type: str | None
    body: bytes | bytearray
    frame: MSRPFrame


@dataclass(slots=True)
class MessageDelivered:
    """frame: what confirmed it (the success REPORT, or the 200 response when no report was asked for)."""

    message_id: str
    code: int
    comment: str | None
    frame: MSRPFrame | None = field(default=None, compare=False)


@dataclass(slots=True)
class MessageNotDelivered:
    """Refused by the peer or a relay (its code), 408 on timeout, or the connection went away. frame: the
    response or failure REPORT that said so (None when nothing was received)."""

    message_id: str
    code: int
    comment: str | None
    frame: MSRPFrame | None = field(default=None, compare=False)


@dataclass(slots=True)
class ResponseReceived:
    """The response to a request sent with `send_request` (a 408 is synthesized on timeout)."""

    request: MSRPFrame
    response: MSRPFrame


@dataclass(slots=True)
class ProtocolError:
    """The peer broke the protocol; the connection is now closed (flush `data_to_send()` first)."""

    code: int
    reason: str


@dataclass(slots=True)
class ConnectionClosed:
    reason: str | None


Event = MessageReceived | MessageDelivered | MessageNotDelivered | ResponseReceived | ProtocolError | ConnectionClosed


class _Outgoing:
    __slots__ = ("content", "content_type", "done", "extra", "failure_report", "message_id", "offset", "pending",
                 "report_deadline", "reported", "success_report", "total", "view")

    def __init__(self, message_id: str, content: bytes, content_type: str, success_report: bool,
                 failure_report: str, extra: str) -> None:
        self.message_id = message_id
        self.content = content
        self.view = memoryview(content)
        self.total = len(content)
        self.content_type = content_type
        self.success_report = success_report
        self.failure_report = failure_report
        self.extra = extra
        self.offset = 0
        self.pending = 0  # chunks sent whose response has not arrived
        self.reported = 0  # bytes covered by success REPORTs
        self.report_deadline: float | None = None
        self.done = False

    @property
    def confirmable(self) -> bool:
        return self.success_report or self.failure_report == "yes"


class _Incoming:
    """A message being reassembled into one bytearray, written by offset: each received byte is copied once
    (in-order chunks append, and growing a large bytearray is a realloc that moves no bytes)."""

    __slots__ = ("buf", "final", "frame", "ranges")

    def __init__(self, frame: MSRPFrame) -> None:
        self.frame = frame
        self.buf = bytearray()
        self.ranges: list[list[int]] = []
        self.final: int | None = None

    @property
    def size(self) -> int:
        """Bytes held."""
        return len(self.buf)

    def add(self, start: int, data: bytes | memoryview) -> None:
        buf = self.buf
        end = start + len(data)
        if start > len(buf):
            buf.extend(bytes(start - len(buf)))
        buf[start:end] = data  # appends, overwrites or both
        ranges = self.ranges
        if (not ranges and start == 0) or (len(ranges) == 1 and ranges[0] == [0, start]):
            self.ranges = [[0, end]]  # the usual case: in order
            return
        ranges.append([start, end])
        ranges.sort()
        merged = [ranges[0]]
        for lo, hi in ranges[1:]:
            if lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.ranges = merged

    @property
    def complete(self) -> bool:
        return self.final is not None and (self.final == 0 or self.ranges == [[0, self.final]])


class MSRPConnection:
    """One MSRP session over one transport connection."""

    def __init__(self, local_path: list[MSRPURI], remote_path: list[MSRPURI] | None = None, *,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_header_size: int = MAX_HEADER_SIZE, max_chunk_size: int = MAX_BODY_SIZE,
                 max_partial_messages: int = MAX_PARTIAL_MESSAGES, response_timeout: float = RESPONSE_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not local_path:
            raise ValueError("the local path needs at least our own URI")
        self.chunk_size = chunk_size
        self.max_message_size = max_message_size
        self.max_partial_messages = max_partial_messages
        self.response_timeout = response_timeout
        self._clock = clock
        # Bodies come as views into the parser's buffer: each is copied once, where it is kept (see receive_data).
        self._parser = MSRPParser(max_header_size, max_chunk_size, copy_bodies=False)
        self._out = bytearray()
        self._events: list[Event] = []
        self._sending: deque[_Outgoing] = deque()  # interleaved, at most MAX_INTERLEAVED
        self._queued: deque[_Outgoing] = deque()  # waiting for a place among them
        self._messages: dict[str, _Outgoing] = {}
        self._transactions: dict[str, tuple[float, _Outgoing | MSRPFrame]] = {}
        self._incoming: dict[str, _Incoming] = {}
        self._buffered = 0
        self.closed = False
        self.accept_types: list[str] | None = None  # media types we take (a=accept-types); others get 415
        self.local_path = local_path
        self.remote_path = remote_path

    @property
    def local_path(self) -> list[MSRPURI]:
        return self._local_path

    @local_path.setter
    def local_path(self, path: list[MSRPURI]) -> None:
        """Our path as published in a=path: relays (Use-Path) first, our own URI last."""
        self._local_path = list(path)
        self.local_uri = path[-1]
        self._local_text = str(path[-1])
        self._update_to_path()

    @property
    def remote_path(self) -> list[MSRPURI] | None:
        return self._remote_path

    @remote_path.setter
    def remote_path(self, path: list[MSRPURI] | None) -> None:
        self._remote_path = list(path) if path else None
        self._update_to_path()

    def _update_to_path(self) -> None:
        remote = getattr(self, "_remote_path", None)
        self._to_text = format_path(self._local_path[:-1] + remote) if remote else None

    # -- sending -------------------------------------------------------------------------------------------

    def send_message(self, content: bytes, content_type: str = "text/plain", message_id: str | None = None,
                     success_report: bool = False, failure_report: str = "yes",
                     headers: dict[str, str] | None = None) -> str:
        """Queue a message (chunked on the wire by `chunk_size`); returns its Message-ID.

        Empty content sends the body-less SEND (`Byte-Range: 1-0/0`) that binds a fresh connection.
        """
        if self.closed:
            raise ConnectionError("MSRP connection is closed")
        if self._to_text is None:
            raise RuntimeError("the remote path is not known yet")
        if failure_report not in ("yes", "no", "partial"):
            raise ValueError(f"bad Failure-Report value {failure_report!r}")
        message_id = message_id or new_message_id()
        extra = ""
        if success_report:
            extra += "Success-Report: yes\r\n"
        if failure_report != "yes":
            extra += f"Failure-Report: {failure_report}\r\n"
        if headers:
            extra += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        msg = _Outgoing(message_id, bytes(content), content_type, success_report, failure_report, extra)
        self._messages[message_id] = msg
        self._queued.append(msg)
        return message_id

    def send_request(self, frame: MSRPFrame) -> None:
        """Send a request built by the caller (e.g. AUTH); its response comes as ResponseReceived."""
        if self.closed:
            raise ConnectionError("MSRP connection is closed")
        self._transactions[frame.transaction_id] = (self._clock(), frame)
        self._out += frame.serialize()

    def abort_message(self, message_id: str) -> None:
        """Stop sending a message: its next chunk goes out empty with the `#` flag."""
        msg = self._messages.get(message_id)
        if msg is not None and not msg.done:
            self._finish(msg, MessageNotDelivered(message_id, 499, "Aborted locally"))
            if 0 < msg.offset < msg.total:
                self._out += self._chunk(msg, 0, "#")

    def has_data_to_send(self) -> bool:
        return bool(self._out) or bool(self._sending) or bool(self._queued)

    @property
    def answers_pending(self) -> int:
        """Bytes of responses, REPORTs and requests queued for the wire ahead of message chunks."""
        return len(self._out)

    def data_to_send(self, limit: int | None = None) -> bytes:
        """Bytes for the wire: pending responses/reports first, then chunks round-robin across messages.

        With `limit`, stop adding chunks once about `limit` bytes are ready (flow control for large messages).
        """
        parts = [bytes(self._out)] if self._out else []
        self._out.clear()
        ready = len(parts[0]) if parts else 0
        sending, queued = self._sending, self._queued
        while (sending or queued) and (limit is None or ready < limit):
            if queued and len(sending) < MAX_INTERLEAVED:
                sending.appendleft(queued.popleft())  # its first chunk goes out next
            msg = sending.popleft()
            size = min(self.chunk_size, msg.total - msg.offset)
            last = msg.offset + size >= msg.total
            chunk = self._chunk(msg, size, "$" if last else "+")
            parts.append(chunk)
            ready += len(chunk)
            if not last:
                sending.append(msg)
        return b"".join(parts)  # a single part is returned as is, without a copy

    def _chunk(self, msg: _Outgoing, size: int, flag: str) -> bytes:
        start = msg.offset
        end = start + size
        body = msg.view[start:end]
        tid = new_transaction_id()
        # The body must never contain our end-line (which the peer finds as CRLF, dashes, tid): the whole
        # prefix as the needle also makes the search about three times faster than the bare tid.
        while msg.content.find(b"\r\n-------" + tid.encode(), start, end) >= 0:
            tid = new_transaction_id()
        if msg.failure_report != "no":
            self._transactions[tid] = (self._clock(), msg)
            msg.pending += 1
        msg.offset = end
        if msg.total == 0:
            return (f"MSRP {tid} SEND\r\nTo-Path: {self._to_text}\r\nFrom-Path: {self._local_text}\r\n"
                    f"Message-ID: {msg.message_id}\r\n{msg.extra}Byte-Range: 1-0/0\r\n-------{tid}$\r\n").encode()
        head = (f"MSRP {tid} SEND\r\nTo-Path: {self._to_text}\r\nFrom-Path: {self._local_text}\r\n"
                f"Message-ID: {msg.message_id}\r\n{msg.extra}Byte-Range: {start + 1}-{end}/{msg.total}\r\n"
                f"Content-Type: {msg.content_type}\r\n\r\n").encode()
        return b"".join((head, body, b"\r\n-------", tid.encode(), flag.encode(), b"\r\n"))

    # -- receiving -----------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not self.closed:
            self._receive(self._parser.feed(data))

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Space to read the next bytes into, without a copy (asyncio.BufferedProtocol); then `buffer_updated`."""
        return self._parser.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` were read into the last `get_buffer` view: the same as `receive_data` with them."""
        items = self._parser.buffer_updated(nbytes)
        if not self.closed:
            self._receive(items)

    def _receive(self, items: list[MSRPFrame | ParseError]) -> None:
        for item in items:
            if isinstance(item, ParseError):
                if item.frame is not None and item.frame.is_request and item.code == 413:
                    self._respond(item.frame, 413, "Message too large", force=True)
                self._events.append(ProtocolError(item.code, item.reason))
                self._close("Protocol error: " + item.reason)
                return
            if item.method is None:
                self._on_response(item)
            elif item.method == "SEND":
                self._on_send(item)
            elif item.method == "REPORT":
                self._on_report(item)
            else:
                self._respond(item, 501)
            if type(item.body) is memoryview:  # the parser reuses that memory: what escapes owns a copy
                item.body = item.body.tobytes()

    def next_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _respond(self, request: MSRPFrame, code: int, comment: str | None = None, force: bool = False) -> None:
        failure_report = request.headers.get("Failure-Report", "yes")
        if not force and (failure_report == "no" or (failure_report == "partial" and code == 200)):
            return
        previous_hop = request.headers.get("From-Path", "").split(" ", 1)[0]
        tid = request.transaction_id
        self._out += (f"MSRP {tid} {code:03d} {comment or REASONS.get(code, '')}\r\nTo-Path: {previous_hop}\r\n"
                      f"From-Path: {self._local_text}\r\n-------{tid}$\r\n").encode()

    def _on_send(self, frame: MSRPFrame) -> None:
        headers = frame.headers
        to_path = headers.get("To-Path")
        if to_path != self._local_text:
            try:
                target = parse_path(to_path or "")[-1]
                parse_path(headers.get("From-Path", ""))
            except URIError:
                self._respond(frame, 400, "Bad path")
                return
            if target.session_id != self.local_uri.session_id:
                self._respond(frame, 481)
                return
        message_id = headers.get("Message-ID")
        if not message_id or "From-Path" not in headers:
            self._respond(frame, 400, "Missing header")
            return
        try:
            start, _, total = parse_byte_range(headers["Byte-Range"]) if "Byte-Range" in headers else (1, None, None)
        except FrameError:
            self._respond(frame, 400, "Bad Byte-Range")
            return
        body = frame.body or b""
        if total is not None and total > self.max_message_size:
            self._incoming.pop(message_id, None)
            self._respond(frame, 413, "Message too large")
            return
        flag = frame.continuation
        if (not body and total == 0) or (frame.body is None and flag == "$" and start == 1):
            self._respond(frame, 200)  # the empty SEND that binds a connection
            return
        incoming = self._incoming.get(message_id)
        if incoming is None and start == 1 and not self._accepts(headers.get("Content-Type")):
            self._respond(frame, 415, "Unsupported media type")
            return
        if incoming is None and start == 1 and flag == "$":
            self._respond(frame, 200)
            frame.body = body = bytes(body)
            self._deliver(frame, message_id, body, frame.success_report)
            return
        if flag == "#":
            if incoming is not None:
                self._drop(message_id)
            self._respond(frame, 200)
            return
        end = start - 1 + len(body)
        # The reassembly buffer grows to the chunk's end, whatever its start: a far start costs the whole gap.
        growth = max(0, end - (incoming.size if incoming is not None else 0))
        if end > self.max_message_size or self._buffered + growth > self.max_message_size:
            self._drop(message_id)
            self._respond(frame, 413, "Message too large")
            return
        if incoming is None:
            if len(self._incoming) >= self.max_partial_messages:
                self._respond(frame, 413, "Too many messages in progress")
                return
            incoming = self._incoming[message_id] = _Incoming(frame)
        before = incoming.size
        incoming.add(start - 1, body)
        frame.body = None  # its bytes now live in the reassembly buffer only
        self._buffered += incoming.size - before
        if flag == "$":
            incoming.final = total if total is not None else start - 1 + len(body)
        self._respond(frame, 200)
        if incoming.complete:
            self._drop(message_id)
            self._deliver(incoming.frame, message_id, incoming.buf, frame.success_report)

    def _accepts(self, content_type: str | None) -> bool:
        if self.accept_types is None:
            return True
        kind = (content_type or "").split(";")[0].strip().lower()
        return any(accepted.lower() in ("*", kind, kind.split("/")[0] + "/*") for accepted in self.accept_types)

    def _drop(self, message_id: str) -> None:
        incoming = self._incoming.pop(message_id, None)
        if incoming is not None:
            self._buffered -= incoming.size

    def _deliver(self, first: MSRPFrame, message_id: str, body: bytes | bytearray, success_report: bool) -> None:
        self._events.append(MessageReceived(message_id, first.headers.get("Content-Type"), body, first))
        if success_report:
            tid = new_transaction_id()
            size = len(body)
            self._out += (f"MSRP {tid} REPORT\r\nTo-Path: {first.headers['From-Path']}\r\n"
                          f"From-Path: {self._local_text}\r\nMessage-ID: {message_id}\r\n"
                          f"Byte-Range: 1-{size}/{size}\r\nStatus: 000 200 OK\r\n-------{tid}$\r\n").encode()

    def _on_report(self, frame: MSRPFrame) -> None:
        msg = self._messages.get(frame.headers.get("Message-ID", ""))
        if msg is None or msg.done:
            return
        try:
            status = frame.status
            _, end, _ = frame.byte_range
        except FrameError:
            return
        if status is None:
            return
        code, comment = status
        if code != 200:
            self._finish(msg, MessageNotDelivered(msg.message_id, code, comment, frame))
        elif msg.success_report:
            msg.reported = max(msg.reported, end if end is not None else msg.total)
            if msg.reported >= msg.total:
                self._finish(msg, MessageDelivered(msg.message_id, code, comment, frame))

    def _on_response(self, frame: MSRPFrame) -> None:
        entry = self._transactions.pop(frame.transaction_id, None)
        if entry is None:
            return  # late, duplicated (e.g. relayed by a relay that already answered) or not ours
        target = entry[1]
        if isinstance(target, MSRPFrame):
            self._events.append(ResponseReceived(target, frame))
            return
        target.pending -= 1
        if target.done:
            return
        if frame.code != 200:
            self._finish(target, MessageNotDelivered(target.message_id, frame.code or 0, frame.comment, frame))
        elif target.offset >= target.total and target.pending == 0:
            self._all_acknowledged(target, frame)

    def _all_acknowledged(self, msg: _Outgoing, response: MSRPFrame | None = None) -> None:
        if msg.success_report:
            if msg.report_deadline is None:
                msg.report_deadline = self._clock() + self.response_timeout
        elif msg.failure_report == "yes":
            self._finish(msg, MessageDelivered(msg.message_id, 200, "OK", response))

    def _finish(self, msg: _Outgoing, event: MessageDelivered | MessageNotDelivered) -> None:
        if msg.offset < msg.total or msg.total == 0:
            for waiting in (self._sending, self._queued):
                if msg in waiting:
                    waiting.remove(msg)
        msg.done = True
        self._messages.pop(msg.message_id, None)
        self._events.append(event)

    # -- time and teardown ---------------------------------------------------------------------------------

    def expire(self, now: float | None = None) -> None:
        """Fail transactions older than `response_timeout` (408) and success REPORTs that never came."""
        now = self._clock() if now is None else now
        deadline = now - self.response_timeout
        for tid, (sent, target) in list(self._transactions.items()):
            if sent > deadline:
                break  # insertion order is send order
            del self._transactions[tid]
            if isinstance(target, MSRPFrame):
                timeout = MSRPFrame(tid, code=408, comment="Request Timeout")
                self._events.append(ResponseReceived(target, timeout))
            else:
                target.pending -= 1
                if not target.done and target.failure_report == "yes":
                    self._finish(target, MessageNotDelivered(target.message_id, 408, "Request Timeout"))
                elif not target.done and target.pending == 0 and target.offset >= target.total:
                    target.done = True  # partial: no news is good news
                    self._messages.pop(target.message_id, None)
        for msg in list(self._messages.values()):
            if msg.report_deadline is not None and msg.report_deadline <= now and not msg.done:
                self._finish(msg, MessageNotDelivered(msg.message_id, 408, "No success report"))

    def next_timeout(self) -> float | None:
        """When `expire()` next has work to do (clock time), or None."""
        times = [sent + self.response_timeout for sent, _ in list(self._transactions.values())[:1]]
        times += [m.report_deadline for m in self._messages.values() if m.report_deadline is not None]
        return min(times) if times else None

    def close(self, reason: str | None = None) -> None:
        """Local close: unconfirmed messages become not delivered; ends with ConnectionClosed."""
        if not self.closed:
            self._close(reason)

    connection_lost = close

    def _close(self, reason: str | None) -> None:
        self.closed = True
        for msg in list(self._messages.values()):
            if not msg.done and msg.confirmable:
                self._finish(msg, MessageNotDelivered(msg.message_id, 408, "Connection closed"))
        self._messages.clear()
        self._sending.clear()
        self._queued.clear()
        self._transactions.clear()
        self._incoming.clear()
        self._buffered = 0
        self._events.append(ConnectionClosed(reason))
