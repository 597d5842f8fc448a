"""The asyncio side of MSRP: transports that only move bytes between sockets and the sans-IO core.

Everything here does I/O; everything it drives does not (``connection.MSRPConnection``, ``parser``,
``relay.RelayClient``). ``MSRPTransport`` carries one session over one TCP/TLS connection.

Connection direction (RFC 6135 / RFC 4975 section 5.4), decided with ``sipcli.msrp.sdp.connection_role``:
the side that ends up ``active`` calls ``open_transport`` to the first URI of the peer's path and sends the
empty SEND that binds the connection; the ``passive`` side opens an ``MSRPListener`` before it publishes its
SDP and calls ``listener.accept``. A process with many sessions uses one ``MSRPDispatcher`` instead: one
listening socket whose connections go to the session named by the To-Path of their first frame (so a local URI
can be handed out synchronously, before the SDP that carries it is even sent). Behind a relay,
``connect_relay`` returns a transport that is already connected and
authenticated (RFC 4976): it sets the connection's local path to ``Use-Path + [our URI]`` (publish that as
a=path) and keeps re-authenticating before the grant expires. Set ``connection.remote_path`` once the peer's
SDP is known; SENDs then go out with To-Path = our relays + the peer's path.

Events (see ``sipcli.msrp.connection``) go to the ``on_event`` callback when one is given, otherwise they
are read with ``async for event in transport.events()``; the last one is always ``ConnectionClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sipcli.msrp.connection import ConnectionClosed, Event, MSRPConnection, ProtocolError, ResponseReceived
from sipcli.msrp.message import MSRPFrame
from sipcli.msrp.relay import RelayAuthenticated, RelayClient, RelayError
from sipcli.msrp.uri import MSRPURI

WRITE_HIGH_WATER = 4 * 1024 * 1024
# Responses and REPORTs we owe a peer that does not read them: past this, while our writes are blocked, we stop
# reading it (its requests are what makes them pile up). Only those count, not our own messages: two peers that
# both send large messages must keep reading each other.
ANSWERS_HIGH_WATER = 256 * 1024
_DISCARD = bytearray(64 * 1024)  # where bytes read while lingering go
TICK = 1.0  # how often transaction timeouts are checked
LINGER = 2.0  # after a protocol error, how long the peer's remaining bytes are read and dropped


class MSRPTransport(asyncio.BufferedProtocol):
    """One TCP/TLS connection carrying one MSRP session.

    A BufferedProtocol: the socket is read straight into the parser's buffer (no bytes object per read), and
    what send_message queues is written once per loop iteration, so pipelined messages share writes.
    """

    def __init__(self, connection: MSRPConnection, on_event: Callable[[Event], None] | None = None) -> None:
        self.connection = connection
        self._on_event = on_event
        self._queue: asyncio.Queue[Event] | None = None if on_event else asyncio.Queue()
        self._filters: list[Callable[[Event], bool]] = []
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._reading_paused = False
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- public API ----------------------------------------------------------------------------------------

    @property
    def peer(self) -> tuple[str, int] | None:
        return self._transport.get_extra_info("peername") if self._transport else None

    def send_message(self, content: bytes, content_type: str = "text/plain", message_id: str | None = None,
                     success_report: bool = False, failure_report: str = "yes",
                     headers: dict[str, str] | None = None) -> str:
        """Queue a message for the peer and start writing it; returns its Message-ID."""
        message_id = self.connection.send_message(content, content_type, message_id, success_report,
                                                  failure_report, headers)
        self._schedule_flush()
        return message_id

    def send_request(self, frame: MSRPFrame) -> None:
        self.connection.send_request(frame)
        self._schedule_flush()

    def add_filter(self, consume: Callable[[Event], bool]) -> None:
        """Let `consume` see events first; those it returns True for go no further (used by the relay client)."""
        self._filters.append(consume)

    async def events(self) -> AsyncIterator[Event]:
        """Events until ConnectionClosed (only without an on_event callback)."""
        if self._queue is None:
            raise RuntimeError("events go to the on_event callback")
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, ConnectionClosed):
                return

    async def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued, close the connection and wait until it is gone."""
        if self._transport is not None and not self._transport.is_closing():
            self._write_pending()
            self.connection.close("Closed locally")
            self._dispatch()
            self._transport.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        if not self.closed.done() and self._transport is not None:
            self._transport.abort()
            await self.closed

    # -- asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(WRITE_HIGH_WATER)
        self._timer = self._loop.call_later(TICK, self._tick)
        if not self.connected.done():
            self.connected.set_result(None)
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._lingering:
            return memoryview(_DISCARD)
        return self.connection.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        if self._lingering:
            return
        connection = self.connection
        connection.buffer_updated(nbytes)
        self._dispatch()
        self._flush()
        if connection.closed and self._transport is not None:
            self._linger(self._transport)

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close after a protocol error so that our last response (e.g. 413) still reaches the peer.

        Closing a socket with unread input makes the kernel send RST, which can destroy that response: send
        FIN instead, drop whatever the peer still sends, and close for good after LINGER seconds.
        """
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        self._loop.call_later(LINGER, transport.close)

    def take_over(self, transport: asyncio.Transport, data: bytes) -> None:
        """Adopt a connection another protocol accepted and read `data`, the bytes it already received."""
        transport.set_protocol(self)
        self.connection_made(transport)
        if data:
            self.connection.receive_data(data)
            self._dispatch()
            self._flush()
            if self.connection.closed:
                self._linger(transport)

    def eof_received(self) -> bool:
        return False  # MSRP has no half-close: let asyncio close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.connection.connection_lost(str(exc) if exc else "Connection closed by peer")
        self._dispatch()
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(str(exc)))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._flush_scheduled = False
        self._flush()
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    # -- internals -----------------------------------------------------------------------------------------

    def _tick(self) -> None:
        self.connection.expire()
        self._dispatch()
        self._timer = self._loop.call_later(TICK, self._tick)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        connection = self.connection
        # Pull chunks only while the socket keeps up: pause_writing() fires inside write() past the high water.
        while not self._paused and connection.has_data_to_send():
            transport.write(connection.data_to_send(limit=1024 * 1024))
        if self._paused and not self._reading_paused and connection.answers_pending >= ANSWERS_HIGH_WATER:
            self._reading_paused = True
            transport.pause_reading()

    def _write_pending(self) -> None:
        if self._transport is not None and self.connection.has_data_to_send():
            self._transport.write(self.connection.data_to_send())

    def _dispatch(self) -> None:
        for event in self.connection.next_events():
            if any(consume(event) for consume in self._filters):
                continue
            if self._on_event is not None:
                self._on_event(event)
            else:
                assert self._queue is not None
                self._queue.put_nowait(event)
            if isinstance(event, ProtocolError):
                self._write_pending()


def client_ssl_context(verify: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """A TLS client context for msrps; `verify=False` accepts any certificate (self-signed peers)."""
    context = ssl.create_default_context(cafile=cafile)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_transport(connection: MSRPConnection, uri: MSRPURI, *, ssl_context: ssl.SSLContext | None = None,
                         on_event: Callable[[Event], None] | None = None, timeout: float = 10.0,
                         bind: bool = True) -> MSRPTransport:
    """Connect (the active side) to `uri`, the first hop of the peer's path; msrps URIs use TLS.

    With `bind`, the empty SEND goes out first so the passive peer can match the connection to its session.
    """
    loop = asyncio.get_running_loop()
    if uri.use_tls and ssl_context is None:
        ssl_context = client_ssl_context()
    transport = MSRPTransport(connection, on_event)
    await asyncio.wait_for(loop.create_connection(
        lambda: transport, uri.host, uri.port, ssl=ssl_context if uri.use_tls else None,
        server_hostname=uri.host if uri.use_tls else None), timeout)
    if bind and connection.remote_path:
        transport.send_message(b"")
    return transport


async def connect_relay(relay_uri: MSRPURI, local_uri: MSRPURI, username: str, password: str, *,
                        ssl_context: ssl.SSLContext | None = None, expires: int | None = None,
                        on_event: Callable[[Event], None] | None = None, timeout: float = 10.0,
                        realm: str | None = None, **connection_options: Any) -> MSRPTransport:
    """Connect to the relay, authenticate and return the transport of a session routed through it.

    `transport.connection.local_path` is then the path to publish in a=path. Raises RelayError when the relay
    refuses, asyncio.TimeoutError when it does not answer.
    """
    connection = MSRPConnection([local_uri], None, **connection_options)
    client = RelayClient(relay_uri, local_uri, username, password, expires, realm=realm)
    transport = await open_transport(connection, relay_uri, ssl_context=ssl_context, on_event=on_event,
                                     timeout=timeout, bind=False)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    refresh: list[asyncio.TimerHandle] = []

    def reauth() -> None:
        if not connection.closed:
            transport.send_request(client.auth_request())

    def consume(event: Event) -> bool:
        if not isinstance(event, ResponseReceived) or not client.owns(event.response):
            return False
        outcome = client.handle_response(event.response)
        if isinstance(outcome, MSRPFrame):
            transport.send_request(outcome)
        elif isinstance(outcome, RelayAuthenticated):
            if not done.done():
                # The first grant fixes our published path; refreshes keep it (relays answer the same Use-Path).
                connection.local_path = [*outcome.use_path, local_uri]
                done.set_result(None)
            for handle in refresh:
                handle.cancel()
            refresh.clear()
            if client.refresh_at is not None:
                refresh.append(loop.call_at(loop.time() + client.refresh_at - time.monotonic(), reauth))
        elif not done.done():
            done.set_exception(RelayError(outcome.code, outcome.comment))
        return True

    transport.add_filter(consume)
    def cancel_refresh(_: object) -> None:
        for handle in refresh:
            handle.cancel()

    transport.closed.add_done_callback(cancel_refresh)
    transport.send_request(client.auth_request())
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except BaseException:
        await transport.close()
        raise
    return transport


class MSRPListener:
    """A listening socket for the passive side of one session; the first connection that arrives is taken."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._waiting: asyncio.Future[MSRPTransport] | None = None
        self._pending: MSRPConnection | None = None
        self._on_event: Callable[[Event], None] | None = None
        self.host = ""
        self.port = 0
        self.use_tls = False

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> MSRPListener:
        listener = cls()
        loop = asyncio.get_running_loop()
        listener._server = await loop.create_server(listener._protocol, host, port, ssl=ssl_context)
        listener.host, listener.port = listener._server.sockets[0].getsockname()[:2]
        listener.use_tls = ssl_context is not None
        return listener

    def uri(self) -> MSRPURI:
        """A fresh local URI (new session id) on this listener, for our a=path."""
        return MSRPURI.new(self.host, self.port, self.use_tls)

    def _protocol(self) -> asyncio.BaseProtocol:
        waiting = self._waiting
        if self._pending is None or waiting is None:
            return _Refuse()
        transport = MSRPTransport(self._pending, self._on_event)
        self._pending = None

        def connected(future: asyncio.Future[None]) -> None:
            if not waiting.done() and future.exception() is None:
                waiting.set_result(transport)

        transport.connected.add_done_callback(connected)
        return transport

    async def accept(self, connection: MSRPConnection, on_event: Callable[[Event], None] | None = None,
                     timeout: float = 30.0) -> MSRPTransport:
        """Wait for the peer to connect and return the transport carrying `connection`; closes the listener."""
        self._pending = connection
        self._on_event = on_event
        self._waiting = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self._waiting, timeout)
        finally:
            self._pending = None
            self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class MSRPDispatcher:
    """One listening socket for every MSRP session of a process.

    ``uri()`` hands out a local URI at once (any thread: it only reads host and port); ``expect(connection)``
    registers the session whose local URI it is. An incoming connection is held until its first frame's
    To-Path names a session id, then given to that session (waiting up to HOLD seconds for ``expect``, which
    may come after the peer connected: the answerer learns it is passive only once its answer is sent).

    What an unauthenticated peer can make us hold before a session takes its connection is bounded:

    - HOLD (10 s): a connection not taken by then is closed, whatever it sent (nothing, a slow trickle, a
      frame for a session nobody expects); over TLS the handshake gets as long.
    - MAX_FIRST_FRAME_HEAD (16 KiB): the first frame's header block must name a To-Path within it.
    - MAX_PENDING (64): connections held at once; more are closed as they arrive.
    - HELD_PER_CONNECTION (256 KiB): bytes read from one held connection; then reading pauses and the rest
      waits in the peer's socket (a legitimate peer that pipelines a large message before we expect it loses
      nothing).
    - HELD_TOTAL (4 MiB): bytes held across all connections; a connection that would exceed it is closed.
    """

    HOLD = 10.0
    MAX_FIRST_FRAME_HEAD = 16 * 1024
    MAX_PENDING = 64
    HELD_PER_CONNECTION = 256 * 1024
    HELD_TOTAL = 4 * 1024 * 1024

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._expected: dict[str, tuple[MSRPConnection, Callable[[Event], None] | None,
                                        asyncio.Future[MSRPTransport]]] = {}
        self._held: dict[str, list[_Held]] = {}  # by session id, once the first frame named it
        self._pending: set[_Held] = set()  # every connection not yet taken by a session
        self._held_bytes = 0
        self.host = ""
        self.port = 0
        self.use_tls = False

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None,
                    advertised_host: str | None = None) -> MSRPDispatcher:
        """Listen on host:port; URIs name advertised_host (default: host)."""
        dispatcher = cls()
        loop = asyncio.get_running_loop()
        dispatcher._server = await loop.create_server(lambda: _Held(dispatcher), host, port, ssl=ssl_context,
                                                      ssl_handshake_timeout=cls.HOLD if ssl_context else None)
        dispatcher.port = dispatcher._server.sockets[0].getsockname()[1]
        dispatcher.host = advertised_host or host
        dispatcher.use_tls = ssl_context is not None
        return dispatcher

    @property
    def pending(self) -> int:
        """Connections held now, not yet taken by a session."""
        return len(self._pending)

    @property
    def held_bytes(self) -> int:
        """Bytes read from those connections, held until a session takes them."""
        return self._held_bytes

    def uri(self) -> MSRPURI:
        """A fresh local URI (new session id) on this socket."""
        return MSRPURI.new(self.host, self.port, self.use_tls)

    def expect(self, connection: MSRPConnection, on_event: Callable[[Event], None] | None = None,
               timeout: float = 30.0) -> asyncio.Future[MSRPTransport]:
        """The transport of `connection` once its peer connected (TimeoutError after timeout seconds)."""
        session_id = connection.local_uri.session_id
        loop = asyncio.get_running_loop()
        future: asyncio.Future[MSRPTransport] = loop.create_future()
        if session_id is None:
            future.set_exception(ValueError("a local URI without a session id"))
            return future
        self._expected[session_id] = (connection, on_event, future)

        def expire() -> None:
            if not future.done():
                future.set_exception(TimeoutError(f"no MSRP connection within {timeout:g} s"))

        def done(_: asyncio.Future[MSRPTransport]) -> None:
            handle.cancel()
            self._expected.pop(session_id, None)

        handle = loop.call_later(timeout, expire)
        future.add_done_callback(done)
        for held in self._held.pop(session_id, []):
            held.dispatch()
        return future

    def cancel(self, connection: MSRPConnection) -> None:
        """Stop waiting for `connection`'s peer."""
        entry = self._expected.get(connection.local_uri.session_id or "")
        if entry is not None and entry[0] is connection and not entry[2].done():
            entry[2].cancel()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for _, _, future in list(self._expected.values()):
            future.cancel()
        for held in list(self._pending):
            held.drop()

    def _admit(self, held: _Held) -> bool:
        if len(self._pending) >= self.MAX_PENDING:
            return False
        self._pending.add(held)
        return True

    def _hold_bytes(self, held: _Held, size: int) -> bool:
        """Whether `size` more bytes of `held` may be kept (within HELD_TOTAL)."""
        if self._held_bytes + size > self.HELD_TOTAL:
            return False
        self._held_bytes += size
        return True

    def _arrived(self, held: _Held, session_id: str) -> bool:
        """Give a connection to its session; False when none expects it yet (then it is held)."""
        entry = self._expected.get(session_id)
        if entry is None or entry[2].done():
            self._held.setdefault(session_id, []).append(held)
            return False
        connection, on_event, future = entry
        transport = MSRPTransport(connection, on_event)
        future.set_result(transport)
        assert held.transport is not None
        data = bytes(held.data)
        self._forget(held)
        transport.take_over(held.transport, data)
        held.transport.resume_reading()  # a no-op unless the held connection had reached its limit
        return True

    def _forget(self, held: _Held) -> None:
        if held not in self._pending:
            return
        self._pending.discard(held)
        self._held_bytes -= len(held.data)
        held.data.clear()
        if held.session_id is not None:
            waiting = self._held.get(held.session_id, [])
            if held in waiting:
                waiting.remove(held)
                if not waiting:
                    del self._held[held.session_id]


class _Held(asyncio.Protocol):
    """A dispatcher's connection until its first frame names the session (then an MSRPTransport takes it)."""

    def __init__(self, dispatcher: MSRPDispatcher) -> None:
        self.dispatcher = dispatcher
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.session_id: str | None = None
        self._scanned = 0  # where the next header line of the first frame starts (0: the first line is pending)
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.dispatcher._admit(self):
            transport.abort()  # too many connections already wait for their session
            return
        self._timer = asyncio.get_running_loop().call_later(self.dispatcher.HOLD, self.drop)

    def data_received(self, data: bytes) -> None:
        dispatcher = self.dispatcher
        if self not in dispatcher._pending:
            return
        if not dispatcher._hold_bytes(self, len(data)):
            self.drop()
            return
        self.data += data
        if len(self.data) >= dispatcher.HELD_PER_CONNECTION and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self.session_id is None:
            self._scan_first_frame()

    def _scan_first_frame(self) -> None:
        """Look for the To-Path among the complete header lines that arrived since the last look."""
        data = self.data
        limit = min(len(data), self.dispatcher.MAX_FIRST_FRAME_HEAD)
        while (end := data.find(b"\r\n", self._scanned, limit)) >= 0:
            line, first, self._scanned = bytes(data[self._scanned:end]), self._scanned == 0, end + 2
            if first:
                continue
            if not line:
                break  # the header block ended without a To-Path: not an MSRP session we serve
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"to-path":
                try:
                    uri = MSRPURI.parse(value.decode("utf-8", "replace").split()[0])
                except (ValueError, IndexError):
                    break
                self.session_id = uri.session_id or ""
                self.dispatch()
                return
        else:
            if len(data) < self.dispatcher.MAX_FIRST_FRAME_HEAD:
                return  # the next line is still on its way
        self.drop()

    def dispatch(self) -> None:
        if self.session_id is None or self.transport is None or self.transport.is_closing():
            return
        if self.dispatcher._arrived(self, self.session_id) and self._timer is not None:
            self._timer.cancel()

    def drop(self) -> None:
        self.dispatcher._forget(self)
        if self.transport is not None and self.transport.get_protocol() is self:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.dispatcher._forget(self)


class _Refuse(asyncio.Protocol):
    """Connections nobody waits for are closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
