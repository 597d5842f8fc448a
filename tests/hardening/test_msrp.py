"""MSRP from a hostile, unauthenticated peer on loopback, against a real `sipcli listen --chat` process.

Each attack is bounded in bytes and time. Afterwards the process still runs, its peak resident size
(VmHWM in /proc/PID/status) grew by less than a stated bound, and a legitimate `sipcli chat` still works.

Before the limits (issue 12 item 3), 256 MiB pushed behind a first frame naming an unknown session grew the
listener by 250 MiB, and far Byte-Range starts had two 60 MB messages reassembled (+116 MiB); now +0 and +59 MiB.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from sipcli.msrp.aio import MSRPDispatcher
from sipcli.msrp.connection import DEFAULT_MAX_MESSAGE_SIZE, MAX_PARTIAL_MESSAGES
from sipcli.msrp.message import MSRPFrame
from sipcli.msrp.parser import MAX_HEADER_COUNT, MSRPParser
from tests.support.procfs import listening_tcp_ports, memory_mib
from tests.support.sipcli import SIPCLIProcess

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
MIB = 1024 * 1024


def uri_port(uri: str) -> int:
    return int(uri.split(";")[0].rsplit(":", 1)[1])


def start_listener(run) -> tuple[SIPCLIProcess, str, int, float]:
    """`listen --chat --echo` (no --count: it runs until stopped); its SIP URI, MSRP port and resident MiB."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--chat", "--echo")
    uris = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]
    (msrp_port,) = listening_tcp_ports(listener.process.pid) - {uri_port(uris["tcp"])}
    return listener, uris["udp"], msrp_port, memory_mib(listener.process.pid)["VmRSS"]


def assert_peak_under(listener: SIPCLIProcess, baseline: float, grown_under: float) -> None:
    """The process runs and its resident size never grew more than grown_under MiB above baseline."""
    assert listener.process.poll() is None, listener.stderr()[-2000:]
    peak = memory_mib(listener.process.pid)["VmHWM"]
    assert peak - baseline < grown_under, f"peak {peak:.0f} MiB, {peak - baseline:.0f} MiB above {baseline:.0f}"


def assert_still_chats(run, listener: SIPCLIProcess, uri: str, grown_under: float, baseline: float) -> None:
    assert_peak_under(listener, baseline, grown_under)
    before = len(listener.find("SIPSessionGotMessage"))
    chat = run("chat", uri, *LOOPBACK, "--message", "still here", config="caller")
    assert chat.wait(30) == 0, chat.stderr()[-2000:]
    assert len(chat.find("SIPSessionDidDeliverMessage")) == 1
    deadline = time.monotonic() + 10
    while len(listener.find("SIPSessionGotMessage")) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["data"]["content"] for e in listener.find("SIPSessionGotMessage")][before:] == ["still here"]
    assert "Traceback" not in listener.stderr()


def head(port: int, session_id: str, tid: str = "attack1") -> bytes:
    """The header block of a SEND whose To-Path names session_id on port (a body of unknown length follows)."""
    return (f"MSRP {tid} SEND\r\nTo-Path: msrp://127.0.0.1:{port}/{session_id};tcp\r\n"
            f"From-Path: msrp://127.0.0.1:9/{tid};tcp\r\nMessage-ID: {tid}\r\nByte-Range: 1-*/*\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode()


def push(sock: socket.socket, size: int, seconds: float) -> int:
    """Send up to size zero bytes within seconds; stops when the peer closes or stops reading. Bytes sent."""
    block = bytes(MIB)
    sent = 0
    deadline = time.monotonic() + seconds
    sock.settimeout(min(1.0, seconds))
    while sent < size and time.monotonic() < deadline:
        try:
            sent += sock.send(block)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            break
    return sent


def closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def wait_closed(socks: list[socket.socket], count: int, timeout: float) -> int:
    """Wait until at least count of socks were closed by the peer; how many were."""
    deadline = time.monotonic() + timeout
    while True:
        closed = sum(closed_by_peer(sock) for sock in socks)
        if closed >= count or time.monotonic() > deadline:
            return closed
        time.sleep(0.05)


# -- before any session is known: the dispatcher ---------------------------------------------------------------

def test_unknown_session_floods_are_capped_per_connection_and_in_total(run):
    listener, uri, port, baseline = start_listener(run)
    # One connection: 256 MiB behind a first frame naming a session nobody expects.
    with socket.create_connection(("127.0.0.1", port)) as flood:
        flood.sendall(head(port, "nosuchsession"))
        sent = push(flood, 256 * MIB, 10)
        assert_peak_under(listener, baseline, 16)
        assert sent < 64 * MIB  # reading stopped long before: the rest waits in the kernel, or the peer closed
    # Many connections at once, each with 1 MiB: past MAX_PENDING they are closed at once, and the bytes held in
    # total stay under HELD_TOTAL (the connection that would exceed it is closed).
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(MSRPDispatcher.MAX_PENDING + 36)]
    try:
        for n, sock in enumerate(socks):
            with contextlib.suppress(OSError):  # a connection the listener already closed
                sock.sendall(head(port, f"nosuch{n}"))
            push(sock, MIB, 0.5)
        closed = wait_closed(socks, 36, 5)
        assert closed >= 36
    finally:
        for sock in socks:
            sock.close()
    assert_still_chats(run, listener, uri, 16, baseline)


def test_idle_and_slowloris_connections_are_dropped_after_the_hold(run):
    listener, uri, port, baseline = start_listener(run)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MSRPDispatcher.MAX_PENDING // 2)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(MSRPDispatcher.MAX_PENDING // 2)]
    frame = head(port, "nosuchsession")
    started = time.monotonic()
    try:
        offset = 0
        # One byte per slow connection every 0.2 s: never a whole header block before the hold expires.
        while time.monotonic() - started < MSRPDispatcher.HOLD + 5 and offset < len(frame) - 1:
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(frame[offset:offset + 1])
            offset += 1
            if wait_closed(idle + slow, len(idle + slow), 0.2) == len(idle + slow):
                break
        elapsed = time.monotonic() - started
        assert wait_closed(idle + slow, len(idle + slow), 5) == len(idle + slow)
        assert elapsed >= MSRPDispatcher.HOLD - 1
    finally:
        for sock in idle + slow:
            sock.close()
    assert_still_chats(run, listener, uri, 16, baseline)


# -- within a session: a raw SIP caller that offers chat, then misbehaves on MSRP ---------------------------------

class RawCaller:
    """A SIP UAC over UDP written by hand: INVITE with an m=message line (a=setup:active), ACK, BYE."""

    def __init__(self, sip_port: int) -> None:
        self.sip_port = sip_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.tag = secrets.token_hex(4)
        self.path = f"msrp://127.0.0.1:9/{secrets.token_hex(6)};tcp"
        self.to = f"<sip:x@127.0.0.1:{sip_port}>"
        self.contact = f"sip:x@127.0.0.1:{sip_port}"

    def request(self, method: str, cseq: int, body: str = "") -> None:
        head = (f"{method} {self.contact} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:attacker@127.0.0.1>;tag={self.tag}\r\nTo: {self.to}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:attacker@127.0.0.1:{self.port}>\r\n")
        if body:
            head += "Content-Type: application/sdp\r\n"
        message = f"{head}Content-Length: {len(body.encode())}\r\n\r\n{body}".encode()
        self.sock.sendto(message, ("127.0.0.1", self.sip_port))

    def final_response(self, method: str) -> tuple[int, dict[str, str], str]:
        while True:
            data = self.sock.recv(65535).decode()
            head, _, body = data.partition("\r\n\r\n")
            lines = head.split("\r\n")
            if not lines[0].startswith("SIP/2.0 "):
                continue  # a request from the listener (its BYE, say): not what we wait for
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            code = int(lines[0].split()[1])
            if code >= 200 and headers.get("cseq", "").endswith(method):
                return code, headers, body

    def invite(self) -> str:
        """Call with a chat offer; ACK the 200. The listener's a=path (the URI to connect to)."""
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
               "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n"
               "m=message 9 TCP/MSRP *\r\nc=IN IP4 127.0.0.1\r\n"
               f"a=path:{self.path}\r\na=accept-types:text/plain\r\na=setup:active\r\n")
        self.request("INVITE", 1, sdp)
        code, headers, body = self.final_response("INVITE")
        assert code == 200, (code, headers)
        self.to = headers["to"]
        self.contact = headers["contact"].strip("<>").split(">")[0]
        self.request("ACK", 1)
        return next(line[7:] for line in body.split("\r\n") if line.startswith("a=path:"))

    def bye(self) -> None:
        self.request("BYE", 2)
        assert self.final_response("BYE")[0] == 200

    def close(self) -> None:
        self.sock.close()


class RawMSRP:
    """A TCP connection to the listener's session, frames written by hand, responses read with sipcli's parser."""

    def __init__(self, local: str, remote: str) -> None:
        self.local, self.remote = local, remote
        port = int(remote.split("/")[2].rsplit(":", 1)[1])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = MSRPParser()
        self.responses: list[MSRPFrame] = []

    def send(self, tid: str, message_id: str, byte_range: str, body: bytes, flag: str = "+",
             extra: str = "") -> None:
        head = (f"MSRP {tid} SEND\r\nTo-Path: {self.remote}\r\nFrom-Path: {self.local}\r\n"
                f"Message-ID: {message_id}\r\n{extra}Byte-Range: {byte_range}\r\nContent-Type: text/plain\r\n\r\n")
        self.sock.sendall(head.encode() + body + f"\r\n-------{tid}{flag}\r\n".encode())

    def codes(self, count: int) -> list[int]:
        """The codes of the next count responses."""
        while len(self.responses) < count:
            data = self.sock.recv(65536)
            assert data, "the listener closed the connection"
            self.responses += [f for f in self.parser.feed(data) if isinstance(f, MSRPFrame)]
        taken, self.responses = self.responses[:count], self.responses[count:]
        return [frame.code or 0 for frame in taken]

    def closed(self) -> bool:
        """Whether the listener closes the connection within the socket's timeout."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
        return True


@pytest.fixture
def raw_session(run) -> Iterator[tuple[SIPCLIProcess, str, float, RawCaller, RawMSRP]]:
    listener, uri, _, baseline = start_listener(run)
    caller = RawCaller(uri_port(uri))
    remote = caller.invite()
    msrp = RawMSRP(caller.path, remote)
    msrp.send("bind1", "bind", "1-0/0", b"", "$")
    assert msrp.codes(1) == [200]
    listener.wait_for("MediaStreamDidStart")
    yield listener, uri, baseline, caller, msrp
    msrp.sock.close()
    caller.close()


def test_far_byte_range_starts_count_against_the_reassembly_cap(run, raw_session):
    listener, uri, baseline, caller, msrp = raw_session
    far = 60_000_000  # under the 64 MiB cap alone; two of them are not
    assert far < DEFAULT_MAX_MESSAGE_SIZE < 2 * far
    for n in range(3):
        msrp.send(f"far{n}", f"far{n}", f"{far + 1}-{far + 10}/*", b"0123456789")
    codes = msrp.codes(3)
    assert_peak_under(listener, baseline, 64 + 24)
    assert codes == [200, 413, 413]
    caller.bye()
    assert_still_chats(run, listener, uri, 64 + 24, baseline)


def test_partial_messages_and_header_lines_are_counted(run, raw_session):
    listener, uri, baseline, caller, msrp = raw_session
    for n in range(MAX_PARTIAL_MESSAGES + 5):
        msrp.send(f"part{n}", f"part{n}", "1-1/2", b"x")
    assert msrp.codes(MAX_PARTIAL_MESSAGES + 5) == [200] * MAX_PARTIAL_MESSAGES + [413] * 5
    many = "".join(f"X-Header-{n}: {n}\r\n" for n in range(MAX_HEADER_COUNT + 1))
    msrp.send("many1", "many1", "1-1/1", b"x", "$", extra=many)
    assert msrp.closed()
    caller.bye()
    assert_still_chats(run, listener, uri, 16, baseline)


def test_a_peer_that_never_reads_our_responses_stops_being_read(run, raw_session):
    """64 MiB of small SENDs from a peer that reads nothing back: our responses may not pile up without bound.

    Before, the listener read all of it and grew by 200 MiB (responses, and the echoes of 450,000 messages). Now
    it stops reading once its write buffer and ANSWERS_HIGH_WATER are full: about 25,000 messages (8 MiB) read,
    +34 MiB with their echoes queued.
    """
    listener, uri, baseline, caller, msrp = raw_session
    msrp.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frame = b"".join(
        (f"MSRP f{n:07d} SEND\r\nTo-Path: {msrp.remote}\r\nFrom-Path: {msrp.local}\r\nMessage-ID: m{n}\r\n"
         f"Byte-Range: 1-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------f{n:07d}$\r\n").encode()
        for n in range(1000))
    sent = 0
    deadline = time.monotonic() + 20
    msrp.sock.settimeout(2)
    while sent < 64 * MIB and time.monotonic() < deadline:
        try:
            msrp.sock.sendall(frame)
        except TimeoutError:
            break  # the listener stopped reading us
        sent += len(frame)
    assert_peak_under(listener, baseline, 48)
    assert sent < 32 * MIB
    caller.bye()
    assert_still_chats(run, listener, uri, 48, baseline)
