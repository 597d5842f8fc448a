"""MSRP over real loopback TCP/TLS connections: ordering, exactly-once delivery, large messages, bad peers."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from sipcli.msrp import aio
from sipcli.msrp.aio import MSRPDispatcher, MSRPListener, MSRPTransport, client_ssl_context, open_transport
from sipcli.msrp.connection import (
    ConnectionClosed,
    MessageDelivered,
    MessageReceived,
    MSRPConnection,
    ProtocolError,
)
from sipcli.msrp.parser import READ_SIZE
from sipcli.msrp.uri import MSRPURI

pytestmark = pytest.mark.timeout(60)


class Collector:
    """Collects events of one side and wakes waiters."""

    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Event()

    def __call__(self, event) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, predicate, timeout: float = 20.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


async def pair(ssl_server: ssl.SSLContext | None = None, ssl_client: ssl.SSLContext | None = None, **options):
    """A passive and an active endpoint connected over loopback, as after an SDP exchange."""
    listener = await MSRPListener.start("127.0.0.1", 0, ssl_server)
    passive_uri = listener.uri()
    active_uri = passive_uri.__class__.new("127.0.0.1", 9, passive_uri.use_tls)  # the active side never listens
    passive_events, active_events = Collector(), Collector()
    passive_conn = MSRPConnection([passive_uri], [active_uri], **options)
    active_conn = MSRPConnection([active_uri], [passive_uri], **options)
    accepting = asyncio.ensure_future(listener.accept(passive_conn, passive_events))
    active = await open_transport(active_conn, passive_uri, ssl_context=ssl_client, on_event=active_events)
    passive = await accepting
    return (passive, passive_events), (active, active_events)


async def exchange_many(count: int) -> None:
    (passive, p_events), (active, a_events) = await pair()
    sent_a = [active.send_message(f"a{i}".encode()) for i in range(count)]
    sent_p = [passive.send_message(f"p{i}".encode()) for i in range(count)]
    await p_events.wait(lambda: len(p_events.of(MessageReceived)) == count)
    await a_events.wait(lambda: len(a_events.of(MessageReceived)) == count)
    await a_events.wait(lambda: len(a_events.of(MessageDelivered)) == count + 1)  # + the binding empty SEND
    await p_events.wait(lambda: len(p_events.of(MessageDelivered)) == count)
    assert [e.body for e in p_events.of(MessageReceived)] == [f"a{i}".encode() for i in range(count)]
    assert [e.body for e in a_events.of(MessageReceived)] == [f"p{i}".encode() for i in range(count)]
    assert [e.message_id for e in a_events.of(MessageDelivered)][1:] == sent_a
    assert [e.message_id for e in p_events.of(MessageDelivered)] == sent_p
    await active.close()
    await passive.closed
    assert isinstance(p_events.events[-1], ConnectionClosed)


def test_thousand_messages_each_way_exactly_once_in_order() -> None:
    asyncio.run(exchange_many(1000))


async def big_message(size: int) -> None:
    (passive, p_events), (active, a_events) = await pair(chunk_size=256 * 1024)
    payload = os.urandom(size)
    message_id = active.send_message(payload, "application/octet-stream", success_report=True)
    await a_events.wait(lambda: any(e.message_id == message_id for e in a_events.of(MessageDelivered)))
    received = p_events.of(MessageReceived)
    assert len(received) == 1
    assert hashlib.sha256(received[0].body).hexdigest() == hashlib.sha256(payload).hexdigest()
    await passive.close()
    await active.closed


def test_ten_mib_message_intact() -> None:
    asyncio.run(big_message(10 * 1024 * 1024))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_session_with_verified_self_signed_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def run() -> None:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        (passive, p_events), (active, a_events) = await pair(server, client_ssl_context(cafile=str(cert)))
        assert active.connection.remote_path[0].use_tls
        active.send_message("über TLS".encode())
        passive.send_message(b"back")
        await p_events.wait(lambda: len(p_events.of(MessageReceived)) == 1)
        await a_events.wait(lambda: len(a_events.of(MessageReceived)) == 1)
        assert p_events.of(MessageReceived)[0].body == "über TLS".encode()
        await active.close()
        await passive.closed

    asyncio.run(run())


def test_tls_with_untrusted_certificate_fails_to_connect(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def run() -> None:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        with pytest.raises(ssl.SSLCertVerificationError):
            await pair(server, client_ssl_context())

    asyncio.run(run())


BAD_FRAMES = {
    "bad first line": b"HELLO there\r\n\r\n",
    "wrong end-line transaction": b"MSRP abcd SEND\r\nTo-Path: msrp://x:1/s;tcp\r\n-------wxyz$\r\n",
    "oversized headers": b"MSRP abcd SEND\r\nX-Junk: " + b"a" * 40000,
    "missing end-line": b"MSRP abcd SEND\r\nTo-Path: msrp://x:1/s;tcp\r\nContent-Type: text/plain\r\n\r\n"
                        + b"b" * 300000,
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_close_the_connection(name: str) -> None:
    async def run() -> None:
        listener = await MSRPListener.start()
        events = Collector()
        conn = MSRPConnection([listener.uri()], [listener.uri()], max_chunk_size=128 * 1024)
        accepting = asyncio.ensure_future(listener.accept(conn, events))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        transport: MSRPTransport = await accepting
        writer.write(BAD_FRAMES[name])
        answer = await asyncio.wait_for(reader.read(), 10)  # EOF: the endpoint closed the connection
        writer.close()
        await transport.closed
        errors = events.of(ProtocolError)
        assert len(errors) == 1
        if name == "missing end-line":
            assert errors[0].code == 413 and b"MSRP abcd 413" in answer
        assert isinstance(events.events[-1], ConnectionClosed)

    asyncio.run(run())


def test_dispatcher_routes_connections_by_session_id_even_before_expect() -> None:
    async def main() -> None:
        dispatcher = await MSRPDispatcher.start()
        uris = [dispatcher.uri(), dispatcher.uri()]
        peers = [MSRPURI.new("127.0.0.1", 9), MSRPURI.new("127.0.0.1", 9)]
        # The second peer connects before its session is expected: held, then dispatched.
        clients = [await open_transport(MSRPConnection([peer], [uri]), uri)
                   for peer, uri in zip(peers, uris, strict=True)]
        for index, client in enumerate(clients):
            client.send_message(f"to {index}".encode())
        first = await dispatcher.expect(MSRPConnection([uris[0]], [peers[0]]))
        await asyncio.sleep(0.05)
        second = await dispatcher.expect(MSRPConnection([uris[1]], [peers[1]]))
        for index, server in enumerate((first, second)):
            bodies = []
            async for event in server.events():
                if isinstance(event, MessageReceived) and event.body:
                    bodies.append(bytes(event.body))
                    break
            assert bodies == [f"to {index}".encode()]
        for transport in (first, second, *clients):
            await transport.close()
        dispatcher.close()

    asyncio.run(main())


def first_frame(dispatcher: MSRPDispatcher, session_id: str) -> bytes:
    return (f"MSRP held1 SEND\r\nTo-Path: msrp://127.0.0.1:{dispatcher.port}/{session_id};tcp\r\n"
            f"From-Path: msrp://127.0.0.1:9/x;tcp\r\nMessage-ID: m\r\nByte-Range: 1-*/*\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode()


async def closed_by_dispatcher(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionResetError:
        return True


def test_dispatcher_closes_connections_past_max_pending_and_idle_ones_after_the_hold() -> None:
    async def main() -> None:
        dispatcher = await MSRPDispatcher.start()
        dispatcher.MAX_PENDING, dispatcher.HOLD = 2, 0.5
        streams = [await asyncio.open_connection("127.0.0.1", dispatcher.port) for _ in range(3)]
        assert await closed_by_dispatcher(streams[2][0], 2)  # the third: at once
        assert dispatcher.pending == 2
        started = asyncio.get_running_loop().time()
        streams[1][1].write(first_frame(dispatcher, "nobody")[:20])  # a slow start does not extend the hold
        assert all([await closed_by_dispatcher(reader) for reader, _ in streams[:2]])
        assert asyncio.get_running_loop().time() - started >= 0.4 and dispatcher.pending == 0
        for _, writer in streams:
            writer.close()
        dispatcher.close()

    asyncio.run(main())


def test_dispatcher_pauses_a_held_connection_and_hands_over_every_byte_later() -> None:
    """A peer that pipelines a large message before its session is expected loses nothing, and costs us little."""
    async def main() -> None:
        dispatcher = await MSRPDispatcher.start()
        dispatcher.HELD_PER_CONNECTION = 64 * 1024
        uri, peer = dispatcher.uri(), MSRPURI.new("127.0.0.1", 9)
        client = await open_transport(MSRPConnection([peer], [uri]), uri)
        content = os.urandom(4 * 1024 * 1024)
        client.send_message(content)
        while dispatcher.held_bytes < dispatcher.HELD_PER_CONNECTION:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the peer keeps writing meanwhile: we do not read it
        assert dispatcher.held_bytes < dispatcher.HELD_PER_CONNECTION + 256 * 1024  # one read past the limit
        events = Collector()
        server = await dispatcher.expect(MSRPConnection([uri], [peer]), events)
        await events.wait(lambda: any(e.body for e in events.of(MessageReceived)))
        assert [hashlib.sha256(e.body).digest() for e in events.of(MessageReceived) if e.body] == \
            [hashlib.sha256(content).digest()]
        assert dispatcher.held_bytes == 0 and dispatcher.pending == 0
        for transport in (server, client):
            await transport.close()
        dispatcher.close()

    asyncio.run(main())


def test_dispatcher_closes_the_connection_that_would_exceed_the_total_it_holds() -> None:
    async def main() -> None:
        dispatcher = await MSRPDispatcher.start()
        dispatcher.HELD_TOTAL = 100 * 1024
        first = await asyncio.open_connection("127.0.0.1", dispatcher.port)
        first[1].write(first_frame(dispatcher, "nobody1") + bytes(60 * 1024))
        while dispatcher.held_bytes < 60 * 1024:
            await asyncio.sleep(0.01)
        second = await asyncio.open_connection("127.0.0.1", dispatcher.port)
        second[1].write(first_frame(dispatcher, "nobody2") + bytes(60 * 1024))
        assert await closed_by_dispatcher(second[0])
        assert dispatcher.pending == 1 and 60 * 1024 <= dispatcher.held_bytes <= dispatcher.HELD_TOTAL
        for _, writer in (first, second):
            writer.close()
        dispatcher.close()
        assert dispatcher.pending == 0 and dispatcher.held_bytes == 0

    asyncio.run(main())


def test_a_peer_that_does_not_read_its_responses_stops_being_read_until_it_does(monkeypatch) -> None:
    monkeypatch.setattr(aio, "ANSWERS_HIGH_WATER", 16 * 1024)

    async def main() -> None:
        listener = await MSRPListener.start()
        uri, peer = listener.uri(), MSRPURI.new("127.0.0.1", 9)
        events = Collector()
        accepting = asyncio.ensure_future(listener.accept(MSRPConnection([uri], [peer]), events))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # our responses soon fill the server's buffer
        sock.connect(("127.0.0.1", listener.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=64 * 1024 * 1024)
        writer.transport.pause_reading()
        server: MSRPTransport = await accepting
        server._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        server._transport.set_write_buffer_limits(64 * 1024)
        count = 20_000  # about 3 MB of requests, as many responses
        for n in range(count):
            writer.write(f"MSRP s{n:07d} SEND\r\nTo-Path: {uri}\r\nFrom-Path: {peer}\r\nMessage-ID: m{n}\r\n"
                         f"Byte-Range: 1-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------s{n:07d}$\r\n".encode())
        async def paused() -> None:
            while not server._reading_paused:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(paused(), 20)
        received = len(events.of(MessageReceived))
        await asyncio.sleep(0.2)  # nothing more is read meanwhile, while most requests wait in the socket
        assert len(events.of(MessageReceived)) == received < count // 2
        # The answers to the last read come on top (a response is about as long as these requests).
        assert server.connection.answers_pending < aio.ANSWERS_HIGH_WATER + 2 * READ_SIZE
        writer.transport.resume_reading()
        answers = 0
        while answers < count:  # reading again: every request is answered, none lost
            if (await reader.readuntil(b"$\r\n")).startswith(b"MSRP s"):
                answers += 1
        assert len(events.of(MessageReceived)) == count
        writer.close()
        await server.closed

    asyncio.run(main())


def test_a_tls_dispatcher_closes_a_connection_that_never_completes_its_handshake(
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    class QuickDispatcher(MSRPDispatcher):
        HOLD = 0.5

    async def main() -> None:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        dispatcher = await QuickDispatcher.start(ssl_context=server)
        reader, writer = await asyncio.open_connection("127.0.0.1", dispatcher.port)  # plain TCP: no ClientHello
        started = asyncio.get_running_loop().time()
        assert await closed_by_dispatcher(reader, 10)
        assert 0.4 <= asyncio.get_running_loop().time() - started < 5
        writer.close()
        dispatcher.close()

    asyncio.run(main())
