"""Run linphonec (Debian's linphone-cli, a real SIP UA) on loopback for a test, driven through its stdin.

Each Linphonec has its own HOME and configuration file (`linphonec -c RC`): SIP on free 127.0.0.1 ports, RTP
bound to 127.0.0.1, WAV files instead of a soundcard, no STUN and no registrar (IP-literal targets only, or an
outbound proxy on loopback: `proxy=`), a large `nortp_timeout` (its default hangs up a call whose RTP pauses).
What it prints on stdout is collected line by line; `wait_for(regex)` waits for an event, e.g.

    Receiving new incoming call from sip:x@127.0.0.1, assigned id 1
    Call 1 with sip:x@127.0.0.1 connected.
    Media streams established with sip:x@127.0.0.1 for call 1 (audio).
    Receiving tone 1 from sip:x@127.0.0.1
    Call 1 with sip:x@127.0.0.1 ended (No error).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from tests.support.kamailio import listening
from tests.support.ports import free_port
from tests.support.processes import stop_process

LINPHONEC = shutil.which("linphonec")


def rc_text(sip_port: int, tcp_port: int, user: str, ipv6: bool, proxy: str | None, identity: str | None,
            password: str | None) -> str:
    """A linphonec configuration that keeps it on loopback (no STUN, no DNS, no registration)."""
    text = f"""[sip]
sip_port={sip_port}
sip_tcp_port={tcp_port}
sip_tls_port=-1
bind_address=127.0.0.1
contact=sip:{user}@127.0.0.1
guess_hostname=0
register_only_when_network_is_up=0
use_ipv6=0
{"default_proxy=0" if proxy else ""}
[rtp]
audio_rtp_port=-1
video_rtp_port=-1
text_rtp_port=-1
{"" if ipv6 else "bind_address=127.0.0.1"}
nortp_timeout=3600
[net]
stun_server=
[sound]
remote_ring=
[video]
display=0
capture=0
"""
    if proxy:
        text += f"""[proxy_0]
reg_proxy=<{proxy}>
reg_route=<{proxy};lr>
reg_identity={identity}
reg_sendregister=0
publish=0
dial_escape_plus=0
"""
    if password:
        assert identity is not None
        name, domain = identity.removeprefix("sip:").split("@", 1)
        text += f"[auth_info_0]\nusername={name}\npasswd={password}\nrealm={domain}\ndomain={domain}\n"
    return text


class Linphonec:
    """One running linphonec: send(command) to its stdin, wait_for(regex) on its stdout; stop() at teardown."""

    def __init__(self, workdir: Path, *, auto_answer: bool = True, ipv6: bool = False, play: Path | None = None,
                 record: Path | None = None, user: str = "linphone", proxy: str | None = None,
                 identity: str | None = None, password: str | None = None, timeout: float = 10.0) -> None:
        """Start it and wait until it listens on its SIP ports with its sound files and IPv6 setting applied.

        ipv6=False gives `ipv6 disable`: linphonec 5.1 otherwise offers IPv6 media (`c=IN IP6`) whenever the
        host has an IPv6 address, whatever the configuration says. proxy: an outbound proxy URI (IP literal)
        for every request, with identity (and password for its digest challenges); nothing registers.
        """
        assert LINPHONEC, "linphonec is not installed"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # liblinphone stays out of its "on" state (and answers every INVITE 503) when its database can't open.
        (workdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port("udp")
        self.tcp_port = free_port("tcp")
        self.uri = f"sip:{user}@127.0.0.1:{self.sip_port}"
        self.rc = workdir / "linphonerc"
        self.rc.write_text(rc_text(self.sip_port, self.tcp_port, user, ipv6, proxy, identity or self.uri, password))
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._stderr = open(workdir / "linphonec.err", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [LINPHONEC, "-c", str(self.rc), *(["-a"] if auto_answer else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            env={**os.environ, "HOME": str(workdir), "LANG": "C"}, cwd=workdir)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.command("soundcard use files", r"Using wav files instead of soundcard", timeout)
            self.command(f"ipv6 {'enable' if ipv6 else 'disable'}", rf"ipv6 use {'en' if ipv6 else 'dis'}abled",
                         timeout)
            if play:
                self.send(f"play {play}")
            if record:
                self.send(f"record {record}")
            self.command("autoanswer", r"Auto answer is (en|dis)abled", timeout)
            deadline = time.monotonic() + timeout
            while not (listening(self.sip_port, "udp") and listening(self.tcp_port, "tcp")):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"linphonec does not listen on {self.sip_port}:\n{self.output()}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                # The prompt precedes whatever it prints next on the same line.
                self.lines.append(line.rstrip("\n").removeprefix("linphonec> "))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def command(self, command: str, answer: str, timeout: float = 10.0) -> re.Match[str]:
        """Send command and wait for its answer (a regex), printed after it was sent."""
        start = len(self.lines)
        self.send(command)
        return self.wait_for(answer, timeout, start)

    def wait_for(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """The first line from index start on that matches pattern (re.search), waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            index = start
            while True:
                while index < len(self.lines):
                    if match := regex.search(self.lines[index]):
                        return match
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"linphonec printed no {pattern!r}:\n{self.output()}")
                self._changed.wait(min(remaining, 0.1))

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def stop(self) -> None:
        """Quit it (its own teardown ends its calls), by its PID if it does not go in time."""
        stop_process(self.process, 5, ask=lambda: self.send("quit"))
        self._reader.join(5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream:
                    stream.close()
        self._stderr.close()
