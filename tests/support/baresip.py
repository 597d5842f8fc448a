"""Start baresip (Debian's baresip-core 1.0) on loopback for a test and drive it through its ctrl_tcp module.

One per-test config dir (`baresip -f DIR`): SIP on a free 127.0.0.1 port, one local account
`<sip:baresip@127.0.0.1>` that never registers, PCMU/PCMA only, a WAV from `aufile` as the microphone (1.0 has
no aufile player: the `sndfile` filter writes what baresip hears to `dump-*-dec.wav` instead), and a DNS server
on a loopback port nobody answers, so that baresip never asks the system's resolver. ctrl_tcp speaks
netstring-framed JSON both ways: commands `{"command", "params", "token"}` (the menu module's command names)
answered by `{"response": true, "ok", "data", "token"}`, and `{"event": true, "type": "CALL_ESTABLISHED", ...}`
for each UA event.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.support.kamailio import listening
from tests.support.ports import free_port
from tests.support.processes import stop_process

BARESIP = Path("/usr/bin/baresip")
MODULES_DIR = Path("/usr/lib/baresip/modules")
MAX_NETSTRING = 1 << 20


def netstring(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"%d:%s," % (len(body), body)


class Baresip:
    """One running baresip: its SIP URI, ctrl_tcp commands, the UA events it reported, what it heard."""

    def __init__(self, workdir: Path, source: Path, *, mediaenc: str | None = None, answermode: str = "auto",
                 timeout: float = 10.0) -> None:
        """source: the WAV baresip sends (aufile hangs up when it ends: make it outlast the call);
        mediaenc: e.g. "srtp-mand" (SDES-SRTP required) or "srtp" (offered, optional)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port("tcp")
        self.events: list[dict] = []
        self._responses: dict[str, dict] = {}
        self._changed = threading.Condition()
        self._tokens = itertools.count(1)
        account = f"<sip:baresip@127.0.0.1>;regint=0;answermode={answermode};audio_codecs=PCMU,PCMA"
        (workdir / "accounts").write_text(account + (f";mediaenc={mediaenc}" if mediaenc else "") + "\n")
        (workdir / "contacts").write_text("")
        (workdir / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
net_interface 127.0.0.1
dns_server 127.0.0.1:{free_port("udp")}
call_local_timeout 30
audio_source aufile,{source}
snd_path {workdir}
rtp_stats no
statmode_default off
ringback_disabled yes
module_path {MODULES_DIR}
module g711.so
module aufile.so
module sndfile.so
module srtp.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
""")
        self._log = open(workdir / "baresip.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([str(BARESIP), "-f", str(workdir)], stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        try:
            self._socket = self._connect(timeout)
        except BaseException:
            self.stop()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def uri(self) -> str:
        return f"sip:baresip@127.0.0.1:{self.sip_port}"

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return (self.workdir / "baresip.log").read_text(errors="replace")

    def heard(self) -> Path:
        """The WAV of the audio baresip decoded in its call (the sndfile filter's dump)."""
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert len(dumps) == 1, f"baresip's decoded-audio dumps: {dumps}\n{self.log()[-2000:]}"
        return dumps[0]

    def _connect(self, timeout: float) -> socket.socket:
        """Ready once its SIP port is bound and ctrl_tcp accepts (it keeps running when SIP fails to bind)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"baresip did not start:\n{self.log()[-2000:]}")
            if "baresip is ready" in self.log() and listening(self.sip_port, "udp"):
                with contextlib.suppress(OSError):
                    return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            time.sleep(0.05)

    def _read(self) -> None:
        buffer = b""
        self._socket.settimeout(None)
        with contextlib.suppress(OSError):
            while chunk := self._socket.recv(65536):
                buffer += chunk
                while b":" in buffer:
                    length, rest = buffer.split(b":", 1)
                    if not length.isdigit() or int(length) > MAX_NETSTRING:
                        raise ValueError(f"not a netstring from baresip's ctrl_tcp: {buffer[:80]!r}")
                    if len(rest) < int(length) + 1:
                        break
                    message = json.loads(rest[:int(length)])
                    buffer = rest[int(length) + 1:]
                    with self._changed:
                        if message.get("event"):
                            self.events.append(message)
                        elif message.get("response"):
                            self._responses[str(message.get("token"))] = message
                        self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> dict:
        """Run a menu command through ctrl_tcp (e.g. "dial", "sip:..."); its response, which must be ok."""
        token = str(next(self._tokens))
        self._socket.sendall(netstring({"command": command, "params": params, "token": token}
                                       if params is not None else {"command": command, "token": token}))
        with self._changed:
            if not self._changed.wait_for(lambda: token in self._responses or not self._reader.is_alive(), timeout):
                raise AssertionError(f"no response to baresip command {command} {params}\n{self.log()[-2000:]}")
            response = self._responses.get(token)
        assert response and response["ok"], f"baresip command {command} {params}: {response}\n{self.log()[-2000:]}"
        return response

    def types(self) -> list[str]:
        return [event.get("type", "") for event in self.events]

    def find(self, kind: str) -> list[dict]:
        return [event for event in self.events if event.get("type") == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The events of this type (e.g. CALL_ESTABLISHED) once there are at least count of them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.find(kind)) >= count or not self._reader.is_alive(),
                                          timeout) or len(self.find(kind)) < count:
                raise AssertionError(f"{len(self.find(kind))} of {count} {kind} from baresip; got {self.types()}\n"
                                     f"{self.log()[-2000:]}")
            return self.find(kind)

    def stop(self) -> None:
        """Stop this baresip by its PID (SIGTERM: it hangs up its calls first)."""
        stop_process(self.process)
        with contextlib.suppress(AttributeError, OSError):
            self._socket.close()
        self._log.close()
