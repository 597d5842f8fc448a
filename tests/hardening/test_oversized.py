"""SIP messages over TCP larger than the engine's packet limit, sent by a raw TCP peer on loopback (issue 12, item 10).

Before: pjsip dropped such a message without a word (PJSIP_ERXOVERFLOW) and read the rest of it as new messages,
so the next request on the connection was lost too. Now every engine reports it (SIPEngineGotOversizedMessage, and
a log line with -v); sipcli's engine build answers a request 413 (its header section fit: the rest of its body is
skipped and the connection goes on) or 513 (not even its headers fit: the connection is closed after the answer).
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.engine import installed_capabilities
from tests.support.sipcli import SIPCLIProcess

pytest.importorskip("pjsua2")
pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]

LOOPBACK = ("--local-ip", "127.0.0.1")
HOSTILE = "\x1b[31m"  # a terminal escape in a header: it must not reach the log raw


def start_listener(run, transport: str = "tcp") -> tuple[SIPCLIProcess, int, int]:
    """`listen -v --messages 1` on loopback: the process, its SIP port for `transport` and the engine's packet
    limit."""
    listener = run("listen", *LOOPBACK, "-v", "--messages", "1", "--timeout", "30")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"][transport]
    limit = listener.find("SIPEngineDidStart")[0]["data"]["capabilities"]["max_packet"]
    return listener, int(uri.split(";")[0].rsplit(":", 1)[1]), limit


def message(port: int, cseq: int, body: bytes, *, padding: int = 0,
            via: str = "TCP 127.0.0.1:9") -> tuple[bytes, bytes]:
    """A MESSAGE to the listener: its header section (with `padding` bytes of extra headers) and its body."""
    pad = "".join(f"X-Pad-{n}: {'y' * 90}{HOSTILE}\r\n" for n in range(padding // 100))
    head = (f"MESSAGE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{via};rport;branch=z9hG4bK-oversized-{cseq}\r\n"
            f"From: <sip:mallory@127.0.0.1>;tag=m{cseq}\r\nTo: <sip:bob@127.0.0.1>\r\n"
            f"Call-ID: oversized-{cseq}\r\nCSeq: {cseq} MESSAGE\r\nMax-Forwards: 70\r\n"
            f"Subject: {HOSTILE}\r\n{pad}Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode(), body


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        yield sock


def responses(sock: socket.socket, count: int, timeout: float = 10.0) -> list[str]:
    """The status lines and CSeqs of the next `count` responses ('413 1' ...); fewer when the peer closes."""
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\r\n\r\n") < count and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    found = []
    for response in data.decode().split("\r\n\r\n"):
        lines = response.split("\r\n")
        cseq = next((line.split()[1] for line in lines if line.startswith("CSeq:")), "?")
        if lines[0].startswith("SIP/2.0 "):
            found.append(f"{lines[0].split()[1]} {cseq}")
    return found


def closed_by_peer(sock: socket.socket) -> bool:
    with contextlib.suppress(ConnectionResetError):
        return sock.recv(65536) == b""
    return True


@pytest.mark.skipif(installed_capabilities().get("oversized_answers", True),
                    reason="the installed engine answers oversized messages (tested below)")
def test_the_wheel_reports_an_oversized_message_it_cannot_answer(run):
    listener, port, limit = start_listener(run)
    head, body = message(port, 1, b"x" * limit)
    with connection(port) as sock:
        sock.sendall(head + body)
        sender = f"127.0.0.1:{sock.getsockname()[1]}"
        report = listener.wait_for("SIPEngineGotOversizedMessage")["data"]
    assert report == {"transport": None, "peer": sender, "method": "MESSAGE", "size": len(head) + len(body),
                      "limit": limit, "code": None, "action": "dropped"}
    # The legitimate sender that follows is served.
    sent = run("message", f"sip:bob@127.0.0.1:{port};transport=tcp", "hello", *LOOPBACK, config="sender")
    assert sent.wait(20) == 0, sent.stderr()[-2000:]
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    assert [m["data"]["body"] for m in listener.find("SIPEngineGotMessage")] == ["hello"]
    log = listener.stderr()
    assert "Rx buffer overflow (PJSIP_ERXOVERFLOW)" in log
    assert HOSTILE not in log and "\\x1b[31m" in log  # pjsip logs the message's start: escaped


@pytest.mark.full_engine("oversized_answers")
def test_a_request_whose_body_is_too_large_gets_413_and_the_connection_goes_on(run):
    listener, port, limit = start_listener(run)
    head, body = message(port, 1, b"x" * (10 * limit))
    small_head, small_body = message(port, 2, b"small")
    with connection(port) as sock:
        sock.sendall(head)
        for start in range(0, len(body), 4096):  # the body in many reads: what is skipped spans them
            sock.sendall(body[start:start + 4096])
        sock.sendall(small_head + small_body)
        assert responses(sock, 2) == ["413 1", "200 2"]
        sender = f"127.0.0.1:{sock.getsockname()[1]}"
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    assert listener.find("SIPEngineGotOversizedMessage")[0]["data"] == {
        "transport": "tcp", "peer": sender, "method": "MESSAGE", "size": len(head) + len(body), "limit": limit,
        "code": 413, "action": "skipped"}
    assert [m["data"]["body"] for m in listener.find("SIPEngineGotMessage")] == ["small"]
    assert (f"Refused an oversized message from TCP {sender}: size={len(head) + len(body)} limit={limit} "
            "method=MESSAGE code=413 action=skip") in listener.stderr()


@pytest.mark.full_engine("oversized_answers")
def test_a_request_whose_headers_are_too_large_gets_513_and_the_connection_closes(run):
    listener, port, limit = start_listener(run)
    head, body = message(port, 1, b"x", padding=limit + 1000)
    with connection(port) as sock:
        sock.sendall(head + body)
        assert responses(sock, 1) == ["513 1"]
        assert closed_by_peer(sock)
        sender = f"127.0.0.1:{sock.getsockname()[1]}"
    assert listener.wait_for("SIPEngineGotOversizedMessage")["data"] == {
        "transport": "tcp", "peer": sender, "method": "MESSAGE", "size": None, "limit": limit, "code": 513,
        "action": "closed"}
    sent = run("message", f"sip:bob@127.0.0.1:{port};transport=tcp", "hello", *LOOPBACK, config="sender")
    assert sent.wait(20) == 0, sent.stderr()[-2000:]
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    assert [m["data"]["body"] for m in listener.find("SIPEngineGotMessage")] == ["hello"]
    assert HOSTILE not in listener.stderr()


@pytest.mark.full_engine("oversized_answers")
def test_an_oversized_response_closes_the_connection_unanswered(run):
    """A response cannot be refused: the connection it came on is closed, which fails its transaction at once."""
    listener, port, limit = start_listener(run)
    response = (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-nobody\r\n"
                "From: <sip:bob@127.0.0.1>;tag=b\r\nTo: <sip:mallory@127.0.0.1>;tag=m\r\nCall-ID: nobody\r\n"
                f"CSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: {2 * limit}\r\n\r\n")
    with connection(port) as sock:
        sock.sendall(response.encode() + b"x" * (2 * limit))
        assert closed_by_peer(sock)
        sender = f"127.0.0.1:{sock.getsockname()[1]}"
    assert listener.wait_for("SIPEngineGotOversizedMessage")["data"] == {
        "transport": "tcp", "peer": sender, "method": None, "size": len(response) + 2 * limit, "limit": limit,
        "code": None, "action": "closed"}


@pytest.mark.full_engine("oversized_answers")
def test_a_udp_datagram_cut_at_the_limit_gets_413_and_one_that_fits_exactly_is_taken(run):
    listener, port, limit = start_listener(run, "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        sender = f"127.0.0.1:{sock.getsockname()[1]}"
        head, body = message(port, 1, b"x" * limit, via=f"UDP {sender}")
        sock.sendto(head + body, ("127.0.0.1", port))
        assert sock.recv(65536).split(b"\r\n", 1)[0] == b"SIP/2.0 413 Request Entity Too Large"
        assert listener.wait_for("SIPEngineGotOversizedMessage")["data"] == {
            "transport": "udp", "peer": sender, "method": "MESSAGE", "size": len(head) + len(body),
            "limit": limit, "code": 413, "action": "truncated"}
        # Exactly the limit, Content-Length included: whole, so taken.
        head, _ = message(port, 2, b"", via=f"UDP {sender}")
        size = limit - len(head) - 4  # the Content-Length value grows from 1 to 5 digits
        head, body = message(port, 2, b"y" * size, via=f"UDP {sender}")
        assert len(head) + len(body) == limit
        sock.sendto(head + body, ("127.0.0.1", port))
        assert sock.recv(65536).split(b"\r\n", 1)[0] == b"SIP/2.0 200 OK"
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    assert [len(m["data"]["body"]) for m in listener.find("SIPEngineGotMessage")] == [size]
    assert len(listener.find("SIPEngineGotOversizedMessage")) == 1


def test_oversized_junk_over_tcp_and_udp_never_kills_the_listener(run):
    """Seeded random messages over the limit (requests, responses, ACKs, absurd or negative Content-Lengths,
    header sections with and without an end, binary bodies) on fresh TCP connections and in UDP datagrams:
    the listener lives and answers the legitimate request that follows on each transport."""
    listener = run("listen", *LOOPBACK, "--messages", "2", "--timeout", "60")
    uris = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]
    tcp, udp = (int(uris[kind].split(";")[0].rsplit(":", 1)[1]) for kind in ("tcp", "udp"))
    limit = listener.find("SIPEngineDidStart")[0]["data"]["capabilities"]["max_packet"]
    starts = [b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"ACK sip:bob@127.0.0.1 SIP/2.0\r\n",
              b""]
    headers = [b"Via: SIP/2.0/TCP 127.0.0.1:9;rport;branch=z9hG4bK-junk\r\n", b"From: <sip:m@127.0.0.1>;tag=1\r\n",
               b"To: <sip:bob@127.0.0.1>\r\n", b"Call-ID: junk\r\n", b"CSeq: 1 MESSAGE\r\n",
               b"Content-Length: 99999999999999999999\r\n", b"Content-Length: -4\r\n", b"l: 40000\r\n", b"\r\n",
               b"X-Bin: \x00\xff\x1b\r\n"]
    rnd = random.Random(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams:
        for _ in range(40):
            junk = rnd.choice(starts) + b"".join(rnd.choice(headers) for _ in range(rnd.randint(0, 10)))
            junk += rnd.randbytes(rnd.randint(limit, 2 * limit))
            with connection(tcp) as sock:
                sock.sendall(junk)
            datagrams.sendto(junk[:60000], ("127.0.0.1", udp))
    for transport in ("tcp", "udp"):
        sent = run("message", f"sip:bob@127.0.0.1:{udp if transport == 'udp' else tcp};transport={transport}",
                   transport, *LOOPBACK, config=f"sender-{transport}")
        assert sent.wait(20) == 0, sent.stderr()[-2000:]
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    assert sorted(m["data"]["body"] for m in listener.find("SIPEngineGotMessage")) == ["tcp", "udp"]
