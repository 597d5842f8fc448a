"""Start kamailio on loopback for a test: registrar + proxy with digest auth, optionally TLS.

Passwords live in an htable (no database); kamailio never resolves names through DNS. `Kamailio.location()`
reads the registrar's location table through the ctl socket with `kamcmd`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

MODULES_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
DOMAIN = "example.test"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def listening(port: int, proto: str) -> bool:
    """Whether a socket is bound to 127.0.0.1:port (proto 'udp', or 'tcp' in LISTEN state)."""
    wanted = f"0100007F:{port:04X}"
    for row in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[1] == wanted and (proto == "udp" or cols[3] == "0A"):
            return True
    return False


@dataclass
class Kamailio:
    """A running kamailio: its ports, users and helpers to inspect it."""

    workdir: Path
    udp_port: int
    tcp_port: int
    tls_port: int | None
    users: Mapping[str, str]
    domain: str = DOMAIN
    process: subprocess.Popen | None = field(default=None, repr=False)

    def proxy(self, transport: str = "udp") -> str:
        port = {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]
        return f"sip:127.0.0.1:{port};transport={transport}"

    def log(self) -> str:
        return (self.workdir / "kamailio.log").read_text(errors="replace")

    def location(self) -> str:
        """The registrar's location table (`ul.dump`) as text."""
        return subprocess.run(["kamcmd", "-s", f"unixs:{self.workdir / 'ctl.sock'}", "ul.dump"],
                              capture_output=True, text=True, timeout=5).stdout

    def stop(self) -> None:
        """Stop kamailio and every child it forked (they share its own process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def registrar_config(k: Kamailio, tls_cert: Path | None = None, tls_key: Path | None = None,
                     extra_modules: str = "", extra_routes: str = "") -> str:
    """A registrar/proxy for `k.domain` with digest auth for `k.users`; loose routing between them."""
    listens = [f"listen=udp:127.0.0.1:{k.udp_port}", f"listen=tcp:127.0.0.1:{k.tcp_port}"]
    tls = ""
    if k.tls_port:
        listens.append(f"listen=tls:127.0.0.1:{k.tls_port}")
        (k.workdir / "tls.cfg").write_text(
            f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"private_key = {tls_key}\ncertificate = {tls_cert}\n"
            f"[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n")
        tls = f'enable_tls=yes\nloadmodule "tls.so"\nmodparam("tls", "config", "{k.workdir / "tls.cfg"}")\n'
    seeds = "".join(f'        $sht(u=>{name}) = "{password}";\n' for name, password in k.users.items())
    return f"""#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
dns=no
rev_dns=no
use_dns_cache=no
dns_try_naptr=no
auto_aliases=no
alias="{k.domain}"
{chr(10).join(listens)}
mpath="{MODULES_DIR}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "ctl.so"
loadmodule "cfgutils.so"
{tls}{extra_modules}
modparam("htable", "htable", "u=>size=4;")
modparam("ctl", "binrpc", "unixs:{k.workdir / 'ctl.sock'}")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 1)
modparam("registrar", "default_expires", 3600)
modparam("rr", "enable_full_lr", 1)
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)

event_route[htable:mod-init] {{
{seeds}}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
{extra_routes}
    if (is_method("REGISTER")) {{
        if ($tU == $null || $sht(u=>$tU) == $null) {{ sl_send_reply("404", "Not Found"); exit; }}
        if (!pv_www_authenticate("$td", "$sht(u=>$tU)", "0")) {{ www_challenge("$td", "0"); exit; }}
        consume_credentials();
        save("location");
        exit;
    }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if (from_uri == myself) {{
        if ($sht(u=>$fU) == $null) {{ sl_send_reply("403", "Forbidden"); exit; }}
        if (!pv_proxy_authenticate("$fd", "$sht(u=>$fU)", "0")) {{ proxy_challenge("$fd", "0"); exit; }}
        consume_credentials();
    }}
    if (is_method("INVITE|SUBSCRIBE")) {{ record_route(); }}
    if (uri == myself) {{
        if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    }}
    t_relay();
}}
"""


def start_kamailio(workdir: Path, config: str, k: Kamailio, timeout: float = 10.0) -> Kamailio:
    """Run kamailio with config in the foreground and wait until its sockets listen."""
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(config)
    log = open(workdir / "kamailio.log", "w")  # noqa: SIM115 - owned by the process
    k.process = subprocess.Popen(
        ["kamailio", "-DD", "-E", "-f", str(cfg), "-m", "64", "-M", "8", "-Y", str(workdir), "-w", str(workdir)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    wanted = [(k.udp_port, "udp"), (k.tcp_port, "tcp")] + ([(k.tls_port, "tcp")] if k.tls_port else [])
    while not all(listening(port, proto) for port, proto in wanted):
        if k.process.poll() is not None or time.monotonic() > deadline:
            k.stop()
            raise RuntimeError(f"kamailio did not start:\n{k.log()[-3000:]}")
        time.sleep(0.02)
    return k


def registrar(workdir: Path, users: Mapping[str, str] = USERS, tls_cert: Path | None = None,
              tls_key: Path | None = None) -> Kamailio:
    """Start a registrar/proxy on free loopback ports (TLS too when a certificate is given)."""
    k = Kamailio(workdir, free_port(), free_port("tcp"), free_port("tcp") if tls_cert else None, dict(users))
    return start_kamailio(workdir, registrar_config(k, tls_cert, tls_key), k)
