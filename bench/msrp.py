"""MSRP throughput over loopback TCP between two processes, next to raw asyncio TCP measured in the same run.

(a) 10,000 small messages pipelined, timed until the last 200 OK; (b) one 100 MiB message in 1 MiB chunks,
timed until its 200 OK; (c) raw asyncio TCP: 100 MiB written to a process that discards it.
The receiver is a child process (`python bench/msrp.py --receiver PORT`). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from sipcli.msrp.aio import MSRPListener, MSRPTransport, open_transport
from sipcli.msrp.connection import MessageDelivered, MSRPConnection
from sipcli.msrp.uri import MSRPURI

SMALL_COUNT = 10_000
BIG_SIZE = 100 * 1024 * 1024
CHUNK = 1024 * 1024
SENDER = MSRPURI("127.0.0.1", 9, "bench-sender")


async def receiver(port_file: Path) -> None:
    """Accept one MSRP session and one raw TCP connection; answer everything; exit when both are gone."""
    loop = asyncio.get_running_loop()
    raw_done = loop.create_future()

    class Sink(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            raw_done.set_result(None)

        def data_received(self, data: bytes) -> None:
            pass

    raw = await loop.create_server(Sink, "127.0.0.1", 0)
    listener = await MSRPListener.start("127.0.0.1", 0)
    uri = listener.uri()
    port_file.write_text(json.dumps({"msrp": str(uri), "raw": raw.sockets[0].getsockname()[1]}))
    connection = MSRPConnection([uri], [SENDER], max_message_size=2 * BIG_SIZE, max_chunk_size=2 * CHUNK)
    transport = await listener.accept(connection, lambda event: None, timeout=30)
    await transport.closed
    await raw_done
    raw.close()


async def sender(info: dict) -> dict:
    loop = asyncio.get_running_loop()
    remote = MSRPURI.parse(info["msrp"])
    delivered: dict[str, float] = {}
    waiter: dict[str, asyncio.Future] = {}

    def on_event(event) -> None:
        if isinstance(event, MessageDelivered):
            delivered[event.message_id] = time.perf_counter()
            if event.message_id in waiter:
                waiter.pop(event.message_id).set_result(None)

    connection = MSRPConnection([SENDER], [remote], chunk_size=CHUNK, max_message_size=2 * BIG_SIZE)
    transport: MSRPTransport = await open_transport(connection, remote, on_event=on_event, bind=False)

    async def send_and_wait(content: bytes, count: int = 1) -> float:
        start = time.perf_counter()
        last = None
        for _ in range(count):
            last = transport.send_message(content)
        waiter[last] = loop.create_future()
        await asyncio.wait_for(waiter[last], 120)
        return time.perf_counter() - start

    await send_and_wait(b"warm-up", 100)
    small = await send_and_wait(b"x" * 64, SMALL_COUNT)
    big = await send_and_wait(bytes(BIG_SIZE))
    await transport.close()

    # Raw asyncio TCP: same payload, same chunking, to a process that discards it.
    _, writer = await asyncio.open_connection("127.0.0.1", info["raw"])
    payload = memoryview(bytes(BIG_SIZE))
    start = time.perf_counter()
    for offset in range(0, BIG_SIZE, CHUNK):
        writer.write(payload[offset:offset + CHUNK])
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    raw = time.perf_counter() - start
    return {"msgs_per_s": round(SMALL_COUNT / small), "mb_per_s": round(BIG_SIZE / big / 1e6, 1),
            "raw_tcp_mb_per_s": round(BIG_SIZE / raw / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
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
        info = json.loads(port_file.read_text())
        result = asyncio.run(sender(info))
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        port_file.unlink(missing_ok=True)
    print(f"(a) {SMALL_COUNT} small messages: {result['msgs_per_s']} msgs/s", file=sys.stderr)
    print(f"(b) 100 MiB in 1 MiB chunks: {result['mb_per_s']} MB/s; raw asyncio TCP {result['raw_tcp_mb_per_s']} MB/s",
          file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
