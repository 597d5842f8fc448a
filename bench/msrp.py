"""MSRP throughput over loopback TCP between two processes, on the path chat uses, next to raw asyncio TCP.

The receiver (a child process: `python bench/msrp.py --receiver FILE`) serves its sessions as ``sipcli.chat``
does: one ``MSRPDispatcher`` socket for the whole process, each session expected by its local URI, the chat's
accept types, every message unwrapped from CPIM as ``ChatStream`` does. The sender connects as the active side
of a chat (``open_transport``, which binds with the empty SEND) with the default 16 KiB chunks and wraps every
message in CPIM. Measured in the same run:

(a) 10,000 small messages pipelined on one session, timed until the last 200 OK;
(b) 8 sessions through the one dispatcher socket, 1,000 messages each at once;
(c) one 32 MiB message (under the 64 MiB reassembly cap), and the receiver's peak resident size;
(d) the transport alone: the same 32 MiB to an ``MSRPListener`` in 1 MiB chunks, no CPIM;
baselines: raw asyncio TCP, the same 32 MiB to a process that discards it, in 16 KiB and in 1 MiB writes.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sipcli.chat import ACCEPT_TYPES
from sipcli.cpim import CPIM_TYPE, decode_cpim, encode_cpim
from sipcli.msrp.aio import MSRPDispatcher, MSRPListener, MSRPTransport, open_transport
from sipcli.msrp.connection import DEFAULT_CHUNK_SIZE, Event, MessageDelivered, MessageReceived, MSRPConnection
from sipcli.msrp.uri import MSRPURI

SMALL_COUNT = 10_000
SESSIONS = 8
PER_SESSION = 1_000
BIG_SIZE = 32 * 1024 * 1024
BIG_CHUNK = 1024 * 1024
FROM, TO = "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"


def sender_uri(index: int) -> MSRPURI:
    """The sender's a=path URI of session index (both processes know them, as after an SDP exchange)."""
    return MSRPURI("127.0.0.1", 9, f"bench-sender-{index}")


def peak_rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def unwrap(event: Event) -> None:
    """What ChatStream._received does with a message before it notifies."""
    if isinstance(event, MessageReceived) and event.body:
        body = bytes(event.body)
        if (event.content_type or "").lower() == CPIM_TYPE:
            decode_cpim(body).text()
        else:
            body.decode("utf-8", "replace")


async def receiver(port_file: Path) -> None:
    """Serve 1 + SESSIONS chat sessions, one direct session and two raw TCP connections; exit when all are gone."""
    loop = asyncio.get_running_loop()
    raw_done: asyncio.Future[None] = loop.create_future()
    raw_lost = []

    class Sink(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            raw_lost.append(exc)
            if len(raw_lost) == 2:
                raw_done.set_result(None)

        def data_received(self, data: bytes) -> None:
            pass

    raw = await loop.create_server(Sink, "127.0.0.1", 0)
    dispatcher = await MSRPDispatcher.start("127.0.0.1", 0)
    listener = await MSRPListener.start("127.0.0.1", 0)
    uris = [dispatcher.uri() for _ in range(1 + SESSIONS)]
    direct = listener.uri()
    expected = []
    for index, uri in enumerate(uris):
        connection = MSRPConnection([uri], [sender_uri(index)])
        connection.accept_types = list(ACCEPT_TYPES)
        expected.append(dispatcher.expect(connection, unwrap, timeout=120))
    direct_connection = MSRPConnection([direct], [sender_uri(-1)], max_chunk_size=2 * BIG_CHUNK)
    port_file.write_text(json.dumps({"chat": [str(uri) for uri in uris], "direct": str(direct),
                                     "raw": raw.sockets[0].getsockname()[1]}))
    transports = [*await asyncio.gather(*expected), await listener.accept(direct_connection, unwrap, timeout=120)]
    await asyncio.gather(*(transport.closed for transport in transports))
    await raw_done
    raw.close()
    dispatcher.close()
    port_file.write_text(json.dumps({"peak_rss_mib": round(peak_rss_mib(), 1)}))


async def sender(info: dict[str, Any]) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[None]] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, MessageDelivered) and event.message_id in waiting:
            waiting.pop(event.message_id).set_result(None)

    async def chat_session(index: int) -> MSRPTransport:
        """The active side of a chat, as ChatStream._start connects."""
        uri = MSRPURI.parse(info["chat"][index])
        transport = await open_transport(MSRPConnection([sender_uri(index)], [uri]), uri, on_event=on_event)
        transport.connection.accept_types = list(ACCEPT_TYPES)
        return transport

    def cpim(content: bytes) -> bytes:
        """What ChatStream.send_message sends for a text/plain message to a peer that accepts CPIM."""
        return encode_cpim(content, "text/plain", FROM, [TO], timestamp=datetime.now(UTC))

    async def send(transport: MSRPTransport, count: int, make: Callable[[int], bytes], content_type: str) -> None:
        last = ""
        for n in range(count):
            last = transport.send_message(make(n), content_type)
        waiting[last] = loop.create_future()
        await asyncio.wait_for(waiting[last], 120)

    async def timed(*sends: Any) -> float:
        start = time.perf_counter()
        await asyncio.gather(*sends)
        return time.perf_counter() - start

    def small(n: int) -> bytes:
        return cpim(f"message {n}".encode())

    first = await chat_session(0)
    await send(first, 100, small, CPIM_TYPE)  # warm-up
    small_time = await timed(send(first, SMALL_COUNT, small, CPIM_TYPE))
    big = bytes(BIG_SIZE - 200)
    big_time = await timed(send(first, 1, lambda _: cpim(big), CPIM_TYPE))
    many = [await chat_session(index) for index in range(1, 1 + SESSIONS)]
    many_time = await timed(*(send(transport, PER_SESSION, small, CPIM_TYPE) for transport in many))
    for transport in (first, *many):
        await transport.close()

    direct_uri = MSRPURI.parse(info["direct"])
    direct = await open_transport(MSRPConnection([sender_uri(-1)], [direct_uri], chunk_size=BIG_CHUNK), direct_uri,
                                  on_event=on_event, bind=False)
    payload = bytes(BIG_SIZE)
    direct_time = await timed(send(direct, 1, lambda _: payload, "application/octet-stream"))
    await direct.close()

    async def raw(write_size: int) -> float:
        """The same bytes over plain asyncio TCP, to a process that discards them."""
        _, writer = await asyncio.open_connection("127.0.0.1", info["raw"])
        view = memoryview(payload)
        start = time.perf_counter()
        for offset in range(0, BIG_SIZE, write_size):
            writer.write(view[offset:offset + write_size])
            await writer.drain()
        elapsed = time.perf_counter() - start
        writer.close()
        await writer.wait_closed()
        return elapsed

    raw_small = await raw(DEFAULT_CHUNK_SIZE)
    raw_big = await raw(BIG_CHUNK)
    return {"chat_msgs_per_s": round(SMALL_COUNT / small_time),
            "chat_sessions_msgs_per_s": round(SESSIONS * PER_SESSION / many_time),
            "chat_big_mb_per_s": round(BIG_SIZE / big_time / 1e6, 1),
            "direct_big_mb_per_s": round(BIG_SIZE / direct_time / 1e6, 1),
            "raw_tcp_16k_mb_per_s": round(BIG_SIZE / raw_small / 1e6, 1),
            "raw_tcp_1m_mb_per_s": round(BIG_SIZE / raw_big / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receiver", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver(Path(args.receiver)))
        return
    port_file = Path(f"/tmp/msrp-bench-{time.time_ns()}.json")
    child = subprocess.Popen([sys.executable, __file__, "--receiver", str(port_file)])
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() or not port_file.read_text():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("receiver did not start")
            time.sleep(0.01)
        result: dict[str, float] = asyncio.run(sender(json.loads(port_file.read_text())))
        if child.wait(60) != 0:
            raise SystemExit("the receiver failed")
        result.update(json.loads(port_file.read_text()))
    finally:
        if child.poll() is None:
            child.kill()
        port_file.unlink(missing_ok=True)
    mib = BIG_SIZE // 1024 // 1024
    print(f"(a) chat path, {SMALL_COUNT:,} small CPIM messages on one session: {result['chat_msgs_per_s']:,} msgs/s\n"
          f"(b) chat path, {SESSIONS} sessions x {PER_SESSION:,} messages through one dispatcher socket: "
          f"{result['chat_sessions_msgs_per_s']:,} msgs/s\n"
          f"(c) chat path, one {mib} MiB CPIM message in {DEFAULT_CHUNK_SIZE // 1024} KiB chunks: "
          f"{result['chat_big_mb_per_s']} MB/s; receiver peak RSS {result['peak_rss_mib']} MiB\n"
          f"(d) transport alone, {mib} MiB in 1 MiB chunks: {result['direct_big_mb_per_s']} MB/s\n"
          f"baseline raw asyncio TCP, {mib} MiB: {result['raw_tcp_16k_mb_per_s']} MB/s in 16 KiB writes, "
          f"{result['raw_tcp_1m_mb_per_s']} MB/s in 1 MiB writes", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
