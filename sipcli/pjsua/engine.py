"""The SIP engine: the only owner of the pjsua2 Endpoint, driven from one dedicated thread.

pjsua2 aborts the process when called from a thread pjlib does not know, so every pjsua2 call happens on the
"pjsua thread" created here (threadCnt=0, mainThreadOnly: every SIP callback runs on it too). Code on the asyncio
loop thread submits work with ``Engine.run(fn, *args)`` and gets an awaitable future; pjsua2 callbacks copy plain
data and hand it to the loop with ``Engine.post(callback, *args)``. The thread polls ``libHandleEvents`` and is
woken early for new commands by a CRLF keep-alive sent to its own UDP transport (pjsip drops those silently).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import ctypes
import functools
import gc
import logging
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVarTuple

from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua.capabilities import Capabilities
from sipcli.pjsua.capabilities import probe as probe_capabilities
from sipcli.pjsua.events import RejectedCall
from sipcli.pjsua.tls import negotiated_version, protocol_names
from sipcli.singleton import Singleton
from sipcli.sipmessage import oversized_message_start

__all__ = ["Engine", "EngineError", "EngineSettings", "EngineStoppedError", "SIPCoreError"]

log = logging.getLogger(__name__)
Arguments = TypeVarTuple("Arguments")
pjsip_log = logging.getLogger("sipcli.pjsip")

_PJ_TO_PY_LEVEL = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
# pjsua's message log: "TX 512 bytes Request msg REGISTER/cseq=1 (tdta0x..) to UDP 127.0.0.1:5060:\n<msg>--end msg--"
_TRACE = re.compile(r"^(?P<dir>TX|RX) \d+ bytes .*? (?:to|from) (?P<transport>\w+) (?P<peer>\S+):\r?\n"
                    r"(?P<data>.*?)\r?\n?--end msg--", re.DOTALL)
_WAKE = b"\r\n\r\n"
# Without a CA list, OpenSSL inside pjsip trusts nothing: verify against the system's bundle instead.
_SYSTEM_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


class EngineError(Exception):
    """The engine could not start, or was used in the wrong state."""


class EngineStoppedError(EngineError):
    """A command was submitted while the engine is not running."""


class SIPCoreError(EngineError):
    """A pjsua2 call failed; ``status`` is the pj status code, ``reason`` pjsip's text."""

    def __init__(self, reason: str, status: int = 0, title: str = "") -> None:
        super().__init__(f"{title}: {reason}" if title else reason)
        self.reason = reason
        self.status = status
        self.title = title


@dataclass
class EngineSettings:
    """What the Endpoint is created with. Ports: None disables a transport, 0 picks any free port."""

    local_ip: str | None = None
    udp_port: int | None = 0
    tcp_port: int | None = 0
    tls_port: int | None = None
    tls_ca_list: str | None = None
    tls_verify_server: bool = True
    tls_certificate: str | None = None
    tls_private_key: str | None = None
    tls_timeout: float = 3.0
    user_agent: str = "sipcli"
    nameservers: list[str] = field(default_factory=list)  # pjsip's resolver: bare IPs, port 53
    dns_nameservers: list[str] = field(default_factory=list)  # RFC 3263 lookups (sipcli.lookup): 'ip[:port]'
    # None: as many as the loaded engine was built for (Capabilities.max_calls: 4 in the PyPI wheel, 256 in
    # sipcli's build); pjsua clamps a larger number to that and answers 486 beyond it.
    max_calls: int | None = None
    clock_rate: int = 16000
    # Calls with audio: the null sound device (the conference bridge clock) and a media worker thread for RTP. A
    # process that carries no audio has neither, which spares libDestroy joining those threads (~10-20 ms).
    audio: bool = True
    trace_sip: bool = False
    log_level: int = 0  # pjsip log level (0-6) forwarded to the "sipcli.pjsip" logger
    unregister_timeout: float = 2.0  # at stop, how long to wait for leftover unregistrations
    # An accepted TCP/TLS connection is shut down this long after it was accepted (0: never): closed at once when no
    # transaction uses it, else when the last one ends. pjsip keeps idle and half-open connections (and ones that
    # trickle a request byte by byte) for many minutes, and its select() ioqueue has 64 handles for everything:
    # ~60 such connections would refuse every other TCP caller.
    incoming_connection_timeout: float = 15.0


def _convert_error(error: BaseException) -> BaseException:
    """pj.Error has an empty str(): turn it into a SIPCoreError carrying pjsip's text."""
    if hasattr(error, "reason") and hasattr(error, "status") and hasattr(error, "title"):
        return SIPCoreError(str(error.reason), int(error.status), str(error.title))
    return error


def _set_future(future: asyncio.Future | None, error: BaseException | None, result: Any) -> None:
    if future is None or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Engine(metaclass=Singleton):
    """The process-wide SIP engine (a singleton); see the module docstring for the threading contract."""

    notification_id = "engine"

    def __init__(self) -> None:
        self._shutdown_hooks: list[Callable[[], None]] = []
        self.incoming_call_hook = None
        self.rejected_call_hook = None
        self.media_settings = None
        self.connection_lost_hook = None
        self._reset()

    def _reset(self) -> None:
        self.state = "stopped"
        self.settings = EngineSettings()
        self.endpoint: Any = None
        self.capabilities: Capabilities | None = None  # what the loaded pjsua2 can do, once started
        self.transports: dict[str, tuple[str, int]] = {}
        self.transport_ids: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._commands: collections.deque = collections.deque()
        self._accounts: list[Any] = []
        self._log_writer: Any = None
        self._stopping = False
        self._wake_socket: socket.socket | None = None
        self._wake_address: tuple[str, int] | None = None
        self._started: asyncio.Future | None = None
        self._ended: asyncio.Future | None = None
        self._connections: dict[int, tuple[Any, float]] = {}  # accepted connections: handle, when accepted
        self._established: set[int] = set()  # connections, dialled or accepted, that reached CONNECTED
        self._next_sweep = 0.0
        self._connection_limit = 16  # accepted connections kept at once (set from the engine's ioqueue at start)
        self._atexit_registered = getattr(self, "_atexit_registered", False)

    # -- loop-thread API -------------------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.state == "started"

    def start(self, settings: EngineSettings | None = None) -> asyncio.Future:
        """Start the pjsua thread (call from the running loop); the future resolves once transports listen."""
        if self.state != "stopped":
            raise EngineError(f"the engine cannot start while {self.state}")
        loop = asyncio.get_running_loop()
        self._reset()
        self.settings = settings or EngineSettings()
        self._loop = loop
        self._started = loop.create_future()
        self._ended = loop.create_future()
        self.state = "starting"
        NotificationCenter().post_notification("SIPEngineWillStart", sender=self)
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True
        self._thread = threading.Thread(target=self._thread_main, name="pjsua", daemon=True)
        self._thread.start()
        return self._started

    def stop(self) -> asyncio.Future:
        """Stop the engine: shutdown hooks, leftover accounts, libDestroy; resolves after SIPEngineDidEnd.

        Idempotent; safe to call from any thread (and from signal handlers running on the loop thread)."""
        if self.state in ("starting", "started"):
            self.state = "stopping"
            self.post(self._notify, "SIPEngineWillEnd")
            self._stopping = True
            self._wake()
        if self._ended is None:
            future: asyncio.Future = asyncio.get_event_loop().create_future()
            future.set_result(None)
            return future
        return self._ended

    def run(self, fn: Callable[[*Arguments], Any], *args: *Arguments) -> asyncio.Future:
        """Run fn(*args) on the pjsua thread; the future gets its result or exception (pj.Error as SIPCoreError)."""
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        future = loop.create_future()
        if self.state not in ("starting", "started", "stopping") or not self._thread_alive():
            future.set_exception(EngineStoppedError("the SIP engine is not running"))
            return future
        was_idle = not self._commands
        self._commands.append((future, fn, args))
        if was_idle:
            self._wake()
        return future

    def post(self, callback: Callable[[*Arguments], Any], *args: *Arguments) -> None:
        """From the pjsua thread (or any thread): schedule callback(*args) on the loop thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is left to tell
            loop.call_soon_threadsafe(callback, *args)

    # Set by the SessionManager: hook(account, driver, whole_msg) -> status code, or (code, reason phrase), on the
    # pjsua thread for each incoming INVITE (sipcli.pjsua.account); account is the owner given to the AccountDriver.
    incoming_call_hook: Callable[[Any, Any, str], int | tuple[int, str]] | None
    # Set by the SessionManager: hook(RejectedCall), on the loop thread, for each INVITE that pjsua refused before
    # any Call existed (e.g. 488 for an offer without a codec in common or without audio).
    rejected_call_hook: Callable[[RejectedCall], Any] | None
    # Set by the SessionManager before the first pj.Account is made: applied to every account's media config.
    media_settings: Any
    # Set by the SessionManager: called on the loop thread when a SIP connection closes on error or by the peer.
    connection_lost_hook: Callable[[], None] | None

    def add_shutdown_hook(self, fn: Callable[[], Any]) -> None:
        """fn runs on the pjsua thread at stop, before accounts are removed and before libDestroy (LIFO)."""
        self._shutdown_hooks.append(fn)

    def remove_shutdown_hook(self, fn: Callable[[], Any]) -> None:
        if fn in self._shutdown_hooks:
            self._shutdown_hooks.remove(fn)

    # -- pjsua-thread API ------------------------------------------------------------------------------------------

    @property
    def in_pjsua_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def add_account(self, pj_account: Any) -> None:
        """Track a created pj.Account (pjsua thread) so that stop unregisters and shuts it down if still alive."""
        self._accounts.append(pj_account)

    def remove_account(self, pj_account: Any) -> None:
        """Forget a pj.Account its owner has shut down itself (pjsua thread)."""
        if pj_account in self._accounts:
            self._accounts.remove(pj_account)

    def pump(self, until: Callable[[], bool], timeout: float, step_ms: int = 10) -> bool:
        """On the pjsua thread: handle events until until() is true or timeout passes; returns until()."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return until()
            self.endpoint.libHandleEvents(max(1, min(step_ms, int(remaining * 1000))))
        return True

    # -- internals -------------------------------------------------------------------------------------------------

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wake(self) -> None:
        if self._wake_socket is not None and self._wake_address is not None:
            with contextlib.suppress(OSError):  # the poll timeout still picks the command up
                self._wake_socket.sendto(_WAKE, self._wake_address)

    def _notify(self, name: str, **data: Any) -> None:
        """On the loop thread: post an engine notification."""
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))

    def _thread_main(self) -> None:
        self._thread_id = threading.get_ident()
        try:
            self._create_endpoint()
        except BaseException as error:
            error = _convert_error(error)
            log.debug("engine start failed", exc_info=error)
            self._destroy_endpoint()
            self.post(self._did_fail, error)
            return
        self.post(self._did_start)
        failure: BaseException | None = None
        try:
            self._serve()
        except BaseException as error:  # a bug on this thread must not leave pjsua alive without a thread
            log.exception("the pjsua thread failed")
            failure = error
            self.post(self._did_fail_running, error)
        try:
            self._shutdown()
        except BaseException as error:
            log.exception("the pjsua thread failed while stopping")
            if failure is None:
                self.post(self._did_fail_running, error)
        self.post(self._did_end)

    def _serve(self) -> None:
        poll_ms = 50 if self._wake_socket is not None else 2
        commands = self._commands
        endpoint = self.endpoint
        while not self._stopping:
            while commands:
                self._execute(*commands.popleft())
            endpoint.libHandleEvents(poll_ms)
            if self._connections and time.monotonic() >= self._next_sweep:
                self._sweep_connections()

    def _transport_state(self, handle: Any, state: int) -> None:
        """pjsua thread (onTransportState): track accepted connections; tell the loop about lost ones."""
        import pjsua2 as pj

        key = int(handle)
        if state == pj.PJSIP_TP_STATE_CONNECTED:
            self._established.add(key)
            # pjsip names a connection it accepted "tcps<address>"/"tlss<address>" (the first field of
            # pjsip_transport, valid during this callback); those it dials are "tcpc"/"tlsc".
            if self.settings.incoming_connection_timeout > 0 and ctypes.string_at(key, 4) in (b"tcps", b"tlss"):
                # Over the limit a connection is shut down at once (by the loop, once this callback returned).
                over = len(self._connections) >= self._connection_limit
                self._connections[key] = (handle, -math.inf if over else time.monotonic())
                if over:
                    self._next_sweep = 0.0
            return
        self._connections.pop(key, None)  # shut down or destroyed: the handle must not be used again
        # Only a connection that was up can have lost a peer. pjsip also dials TCP on its own, e.g. for a request
        # over 1,300 bytes to a UDP-only peer, and falls back to UDP when that connect() is refused: such an
        # attempt ends DISCONNECTED without ever being CONNECTED and says nothing about any session's peer.
        established = key in self._established
        self._established.discard(key)
        if state == pj.PJSIP_TP_STATE_DISCONNECTED and established and self.connection_lost_hook is not None:
            self.post(self.connection_lost_hook)

    def _sweep_connections(self) -> None:
        now = time.monotonic()
        self._next_sweep = now + 1.0
        limit = self.settings.incoming_connection_timeout
        for key, (handle, accepted) in list(self._connections.items()):
            if now - accepted >= limit:
                del self._connections[key]
                try:
                    self.endpoint.transportShutdown(handle)
                except Exception as error:
                    log.debug("shutting down an idle connection failed: %r", _convert_error(error))

    def _execute(self, future: asyncio.Future, fn: Callable[..., Any], args: tuple) -> None:
        try:
            result = fn(*args)
        except BaseException as error:
            self.post(_set_future, future, _convert_error(error), None)
        else:
            self.post(_set_future, future, None, result)

    def _create_endpoint(self) -> None:
        import pjsua2 as pj

        settings = self.settings
        endpoint = _endpoint_class()(self)
        self.endpoint = endpoint
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        if settings.max_calls is not None:
            config.uaConfig.maxCalls = settings.max_calls
        config.uaConfig.userAgent = settings.user_agent
        config.uaConfig.natTypeInSdp = 0  # no "a=X-nat:0" in every SDP
        for server in settings.nameservers:
            config.uaConfig.nameserver.append(server)
        config.medConfig.clockRate = settings.clock_rate
        config.medConfig.sndClockRate = settings.clock_rate
        config.medConfig.threadCnt = 1 if settings.audio else 0
        config.medConfig.hasIoqueue = settings.audio  # False: the few sockets a refused call opens share SIP's
        # The null sound device is the conference bridge's clock, and only that clock makes a call's stream send
        # (RTP and RFC 4733 DTMF). pjsua closes an idle sound device after 1 s and reopens it only when something
        # is connected to slot 0, which sipcli never does: every call after the first idle second sent nothing.
        config.medConfig.sndAutoCloseTime = -1
        # No silence suppression: with VAD, a silent pjsua sends about one RTP packet (and RTCP report) in 10 s, and
        # the peer's RTP timeout (sipcli.liveness) could not tell a quiet call from a dead one for that long.
        config.medConfig.noVad = True
        # Level 2 at least: pjsua says only there that it refused an INVITE over its call limit (see LogWriter).
        level = max(settings.log_level, 4 if settings.trace_sip else 2)
        config.logConfig.level = level
        config.logConfig.consoleLevel = level
        config.logConfig.msgLogging = settings.trace_sip
        config.logConfig.decor = 0
        self._log_writer = _make_log_writer(self, settings.log_level, settings.trace_sip)
        config.logConfig.writer = self._log_writer
        # libCreate prints its banner to fd 1 before any log configuration applies: never let it reach stdout;
        # it goes to the pjsip logger (stderr or --log-file) when pjsip's own logs are asked for.
        with _captured_stdout() as banner:
            endpoint.libCreate()
            endpoint.libInit(config)
        if settings.log_level >= 4:
            for line in banner.text.splitlines():
                pjsip_log.info("%s", line.rstrip())
        self.capabilities = probe_capabilities(endpoint)
        # A quarter of the ioqueue's handles (16 of the wheel's 64): pjlib 2.15.1 asserts (aborts) when a socket
        # is registered while the handles not in use are all still in their 500 ms quarantine after a close
        # (PJ_IOQUEUE_HAS_SAFE_UNREG), which a full ioqueue reaches as soon as connections close; kept this far
        # from full, the sweep's closings and an accept burst fit.
        self._connection_limit = max(4, self.capabilities.ioqueue_handles() // 4)
        self._create_transports(pj)
        endpoint.libStart()
        if settings.audio:
            endpoint.audDevManager().setNullDev()

    def _create_transports(self, pj: Any) -> None:
        settings = self.settings
        ipv6 = bool(settings.local_ip and ":" in settings.local_ip)
        if ipv6 and self.capabilities is not None:
            self.capabilities.require_ipv6(f"--local-ip {settings.local_ip}")
        suffix = "6" if ipv6 else ""
        kinds = {name: (port, getattr(pj, f"PJSIP_TRANSPORT_{name.upper()}{suffix}"))
                 for name, port in (("udp", settings.udp_port), ("tcp", settings.tcp_port), ("tls", settings.tls_port))}
        for name, (port, kind) in kinds.items():
            if port is None:
                continue
            config = pj.TransportConfig()
            config.port = port
            if settings.local_ip:
                config.boundAddress = settings.local_ip
            if name == "tls":
                tls = config.tlsConfig
                tls.verifyServer = settings.tls_verify_server
                tls.msecTimeout = int(settings.tls_timeout * 1000)
                ca_list = settings.tls_ca_list or next(filter(os.path.exists, _SYSTEM_CA_BUNDLES), "")
                if ca_list:
                    tls.CaListFile = ca_list
                if settings.tls_certificate:
                    tls.certFile = settings.tls_certificate
                    tls.privKeyFile = settings.tls_private_key or settings.tls_certificate
            transport_id = self.endpoint.transportCreate(kind, config)
            info = self.endpoint.transportGetInfo(transport_id)
            host, _, bound_port = info.localName.rpartition(":")
            self.transports[name] = (host.strip("[]"), int(bound_port))
            self.transport_ids[name] = transport_id
        if "udp" in self.transports:
            host, port = self.transports["udp"]
            loopback = "::1" if ipv6 else "127.0.0.1"
            self._wake_address = (loopback if settings.local_ip in (None, "0.0.0.0", "::") else host, port)
            self._wake_socket = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
            self._wake_socket.setblocking(False)

    def _shutdown(self) -> None:
        """On the pjsua thread: run what is queued, hooks, unregister leftover accounts, libDestroy."""
        while self._commands:
            self._execute(*self._commands.popleft())
        for hook in reversed(self._shutdown_hooks):
            try:
                hook()
            except Exception:
                log.exception("engine shutdown hook %r failed", hook)
        self._shutdown_hooks.clear()
        self._unregister_accounts()
        # Commands that raced with the stop get an answer instead of hanging their awaiters.
        while self._commands:
            future, _, _ = self._commands.popleft()
            self.post(_set_future, future, EngineStoppedError("the SIP engine stopped"), None)
        self._destroy_endpoint()

    def _unregister_accounts(self) -> None:
        accounts = self._accounts

        def registered(account: Any) -> bool:
            try:
                return bool(account.isValid() and account.getInfo().regIsActive)
            except Exception:
                return False

        pending = [account for account in accounts if registered(account)]
        for account in pending:
            try:
                account.setRegistration(False)
            except Exception as error:
                log.debug("unregistering at stop failed: %r", _convert_error(error))
        if pending:
            self.pump(lambda: not any(registered(account) for account in pending), self.settings.unregister_timeout)
        for account in accounts:
            try:
                account.shutdown()
            except Exception as error:
                log.debug("account shutdown failed: %r", _convert_error(error))
        accounts.clear()

    def _destroy_endpoint(self) -> None:
        import pjsua2 as pj

        endpoint = self.endpoint
        self._accounts.clear()
        self._connections.clear()
        self._established.clear()
        # A traceback kept for the interactive interpreter holds pj objects alive and libDestroy then aborts.
        sys.last_type = sys.last_value = sys.last_traceback = None
        gc.collect()
        if endpoint is not None:
            try:
                endpoint.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
            except Exception as error:
                log.debug("libDestroy failed: %r", _convert_error(error))
        self.endpoint = None
        if self._wake_socket is not None:
            self._wake_socket.close()
            self._wake_socket = None

    # -- loop-thread completions -----------------------------------------------------------------------------------

    def _did_start(self) -> None:
        if self.state == "starting":
            self.state = "started"
        transports = {name: f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                      for name, (host, port) in self.transports.items()}
        capabilities = self.capabilities.as_dict() if self.capabilities is not None else {}
        self._notify("SIPEngineDidStart", transports=transports, capabilities=capabilities)
        _set_future(self._started, None, None)

    def _did_fail(self, error: BaseException) -> None:
        self.state = "stopped"
        self._notify("SIPEngineDidFail", reason=str(error) or type(error).__name__)
        _set_future(self._started, error, None)
        _set_future(self._ended, None, None)
        self._join()

    def _did_fail_running(self, error: BaseException) -> None:
        """The pjsua thread broke down after the start: it shuts pjsua down and ends (SIPEngineDidEnd follows)."""
        if self.state == "started":
            self.state = "stopping"
        self._notify("SIPEngineDidFail", reason=f"the pjsua thread failed: {error!r}")

    def _did_end(self) -> None:
        if self.state == "starting":  # stopped before it finished starting
            _set_future(self._started, EngineStoppedError("the SIP engine was stopped while starting"), None)
        self.state = "stopped"
        self._notify("SIPEngineDidEnd")
        _set_future(self._ended, None, None)
        self._join()

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._loop = None
        self._log_writer = None

    def _stop_at_exit(self) -> None:
        """Interpreter exit with the engine still up: stop it here, or pjsua dies mid-call and aborts."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stopping = True
            self._wake()
            thread.join(5)


@functools.cache
def _endpoint_class() -> type:
    import pjsua2 as pj

    class PJEndpoint(pj.Endpoint):
        """Reports transport state changes to the engine (each TLS connection made or taken as
        SIPEngineTLSConnectionDidStart: local and remote addresses, cipher, tls_version from the cipher suite,
        tls_enabled), and the INVITEs pjsua refuses on its own (no Python callback runs for them) to its
        rejected_call_hook (pjsua thread)."""

        def __init__(self, engine: Engine) -> None:
            super().__init__()
            self._engine = engine

        def onTransportState(self, prm: Any) -> None:
            self._engine._transport_state(prm.hnd, int(prm.state))
            if prm.state != pj.PJSIP_TP_STATE_CONNECTED or "TLS" not in str(prm.type).upper():
                return
            info = prm.tlsInfo
            if info.isEmpty() or not info.established:
                return
            cipher = str(info.cipherName)
            # TlsInfo.protocol is the set the connection allowed, not the version it negotiated
            data = {"local": str(info.localAddr), "remote": str(info.remoteAddr),
                    "tls_version": negotiated_version(cipher), "cipher": cipher,
                    "tls_enabled": protocol_names(int(info.protocol))}
            self._engine.post(functools.partial(self._engine._notify, "SIPEngineTLSConnectionDidStart", **data))

        def onRejectedIncomingCall(self, prm: Any) -> None:
            hook = self._engine.rejected_call_hook
            if hook is None:
                return
            codecs = sorted({info.codecId.split("/", 1)[0] for info in self.codecEnum2() if info.priority})
            self._engine.post(hook, RejectedCall(int(prm.statusCode), str(prm.reason), str(prm.rdata.wholeMsg),
                                                 codecs))

    return PJEndpoint


class _captured_stdout:
    """Capture what C code writes to fd 1 for a moment into ``.text`` (C stdio is flushed before fd 1 returns)."""

    def __enter__(self) -> _captured_stdout:
        import tempfile

        sys.stdout.flush()
        self.text = ""
        self._saved = os.dup(1)
        self._capture = tempfile.TemporaryFile()
        os.dup2(self._capture.fileno(), 1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        import ctypes

        ctypes.CDLL(None).fflush(None)
        os.dup2(self._saved, 1)
        os.close(self._saved)
        with self._capture:
            self._capture.seek(0)
            self.text = self._capture.read().decode("utf-8", "replace")


# What pjsua logs (level 2) when it answers an INVITE 486 itself because PJSUA_MAX_CALLS calls are up.
_CALL_LIMIT = "Unable to accept incoming call (too many calls)"
# A message that does not fit PJSIP_MAX_PKT_LEN. sipcli's engine build refuses it (level 2: 413 or 513 when it
# is a request; on TCP/TLS it then skips the rest of it or closes the connection; a UDP datagram was truncated by
# the socket); over TCP/TLS the PyPI wheel drops it unanswered (level 1, the first bytes of the message follow)
# and reads its rest as new messages.
_REFUSED_OVERSIZED = re.compile(r"Refused an oversized message from (?P<transport>\w+) (?P<peer>\S+?): "
                                r"size=(?P<size>\d+|unknown) limit=(?P<limit>\d+) method=(?P<method>\S+) "
                                r"code=(?P<code>\d+) action=(?P<action>\w+)")
_DROPPED_OVERSIZED = re.compile(r"Error processing packet from (?P<peer>\S+?): Rx buffer overflow "
                                r"\(PJSIP_ERXOVERFLOW\).*?\]:\r?\n(?P<data>.*)", re.DOTALL)
_ACTIONS = {"skip": "skipped", "close": "closed", "truncated": "truncated"}
# Control characters (but line feeds and tabs) in what pjsip logs, often bytes from the network; CRLF line ends
# become LF first, so that a lone CR (which would overwrite a terminal line) shows as \x0d.
_UNPRINTABLE = {code: f"\\x{code:02x}" for code in (*range(0x09), *range(0x0b, 0x20), 0x7f)}


def _log_writer_class() -> type:
    import pjsua2 as pj

    class LogWriter(pj.LogWriter):
        """pjsip log lines to the Python logger; with tracing, messages become SIPEngineSIPTrace (any thread)."""

        def __init__(self, engine: Engine, level: int, trace: bool) -> None:
            super().__init__()
            self._engine = engine
            self._level = level
            self._trace = trace

        def write(self, entry: Any) -> None:
            message = entry.msg
            level = entry.level
            if self._trace and level == 4 and message[:3] in ("TX ", "RX "):
                match = _TRACE.match(message)
                if match is not None:
                    self._engine.post(_post_trace, self._engine, match["dir"], match["transport"].lower(),
                                      match["peer"], match["data"])
            elif level <= 2:
                if _CALL_LIMIT in message:
                    self._engine.post(_post_call_limit, self._engine)
                elif (oversized := _oversized_message(message, self._engine.capabilities)) is not None:
                    self._engine.post(functools.partial(self._engine._notify, "SIPEngineGotOversizedMessage",
                                                        **oversized))
            if level <= self._level:
                pjsip_log.log(_PJ_TO_PY_LEVEL.get(level, logging.DEBUG), "%s",
                              message.rstrip().replace("\r\n", "\n").translate(_UNPRINTABLE))

    return LogWriter


def _make_log_writer(engine: Engine, level: int, trace: bool) -> Any:
    return _log_writer_class()(engine, level, trace)


def _oversized_message(message: str, capabilities: Capabilities | None) -> dict[str, Any] | None:
    """SIPEngineGotOversizedMessage's data from what pjsip logged about a message too large to take, or None."""
    refused = _REFUSED_OVERSIZED.search(message)
    if refused is not None:
        code = int(refused["code"])
        method = refused["method"]
        return {"transport": refused["transport"].lower(), "peer": refused["peer"],
                "method": None if method in ("unknown", "response") else method,
                "size": None if refused["size"] == "unknown" else int(refused["size"]),
                "limit": int(refused["limit"]), "code": code or None,
                "action": _ACTIONS.get(refused["action"], refused["action"])}
    dropped = _DROPPED_OVERSIZED.search(message)
    if dropped is None:
        return None
    method, size = oversized_message_start(dropped["data"])
    return {"transport": None, "peer": dropped["peer"], "method": method, "size": size,
            "limit": capabilities.max_packet if capabilities is not None else None, "code": None,
            "action": "dropped"}


def _post_call_limit(engine: Engine) -> None:
    engine._notify("SIPEngineDidRefuseIncomingCall", code=486, reason="Busy Here",
                   cause=f"too many calls: the engine's limit of {engine.settings.max_calls} was reached")


_VIA = re.compile(r"^(?:Via|v)\s*:\s*SIP/2\.0/\w+\s+([^;,\s]+)", re.IGNORECASE | re.MULTILINE)


def _post_trace(engine: Engine, direction: str, transport: str, peer: str, data: str) -> None:
    outgoing = direction == "TX"
    local = engine.transports.get(transport)
    local_address = f"{local[0]}:{local[1]}" if local else None
    # Our requests and the responses to them carry our real sending address (a TCP/TLS connection's own port,
    # the published address of a wildcard bind) in the top Via; the listener address is the fallback.
    is_response = data.startswith("SIP/2.0 ")
    if outgoing != is_response:
        via = _VIA.search(data.split("\r\n\r\n", 1)[0])
        if via is not None:
            local_address = via.group(1)
    engine._notify("SIPEngineSIPTrace", direction="outgoing" if outgoing else "incoming", transport=transport,
                   source=local_address if outgoing else peer, destination=peer if outgoing else local_address,
                   data=data)
