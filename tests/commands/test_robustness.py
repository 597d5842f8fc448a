"""Bad input loses nothing, in every subcommand: usage errors (exit 2, one stderr line), unreadable configuration
(exit 5, file untouched), malformed SIP and MSRP from the network (rejected, the process lives and still takes a
real session), SIGINT/SIGTERM mid-session (BYE seen by the peer, unregistered in kamailio, exit 130), passwords
never in stdout, stderr, --log-file or --trace, stdout only JSON lines (also with -vv and --trace), --format text.

Every stdout line goes through json.loads in SIPCLIProcess' reader: a stray line stops the reader, so the
`summary` (last line SIPCLIDidEnd) assertions fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.kamailio import DOMAIN, USERS, registrar
from tests.support.procfs import listening_tcp_ports
from tests.support.sipcli import SIPCLI, SIPCLIProcess
from tests.support.sipp import start_sipp

pytestmark = pytest.mark.peers

LOOPBACK = ("--local-ip", "127.0.0.1")
ENV = {"ALICE_PW": USERS["alice"], "BOB_PW": USERS["bob"]}
PASSWORDS = tuple(USERS.values())


@pytest.fixture
def run(run):
    """The shared runner, with this module's environment added to every process."""

    def start(*args: str, config: str = "config", env: dict[str, str] | None = None):
        return run(*args, config=config, env={**ENV, **(env or {})})

    return start


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    server = registrar(tmp_path_factory.mktemp("kamailio"))
    yield server
    server.stop()


def sipcli(config_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*SIPCLI, *args], capture_output=True, text=True, input=stdin, timeout=30,
                          env={**os.environ, **ENV, "SIPCLI_CONFIG_DIR": str(config_dir)})


def json_lines(stdout: str) -> list[dict]:
    """stdout as JSON lines (anything else fails); when there are any, the last is SIPCLIDidEnd."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert not lines or lines[-1]["name"] == "SIPCLIDidEnd", stdout
    return lines


def no_password(*texts: str) -> None:
    for text in texts:
        for password in PASSWORDS:
            assert password not in text


def uri_port(uri: str) -> int:
    return int(uri.split(";")[0].rsplit(":", 1)[1])


def listen(run, *args: str, **kwargs) -> tuple[SIPCLIProcess, dict[str, str]]:
    listener = run("listen", *LOOPBACK, *args, **kwargs)
    return listener, listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]


# -- usage errors, configuration errors, --help ------------------------------------------------------------------

USAGE_ERRORS = [
    (("register", "--from", "bad"), "--from"),
    (("register", "--from", "a@example.test", "--proxy", "sip:"), "--proxy"),
    (("register", "--expires", "soon"), "--expires"),
    (("register", "--bogus"), "--bogus"),
    (("call", "sip:bob@"), "URI"),
    (("call", "sip:bob@127.0.0.1:99999"), "port"),
    (("call", "sip:bob@127.0.0.1:9", "--from", "a@example.test", "--proxy", "sip:a@b.test"), "--proxy"),
    (("call", "sip:bob@127.0.0.1:9", "--dtmf", "xyz"), "--dtmf"),
    (("call", "sip:bob@127.0.0.1:9", "--srtp", "maybe"), "--srtp"),
    (("call", "sip:bob@127.0.0.1:9", "--account", "a@example.test", "--from", "a@example.test"), "exclusive"),
    (("call",), "URI"),
    (("listen", "--port", "abc"), "--port"),
    (("listen", "--from", "nobody"), "--from"),
    (("listen", "--auto-answer", "--reject", "busy"), "exclusive"),
    (("listen", "--chat", "--relay", "msrp://127.0.0.1:9;tcp"), "--relay"),
    (("listen", "--relay", "msrp://127.0.0.1:9;tcp", "--from", "a@example.test"), "--relay"),
    (("chat", "sip:bob@"), "URI"),
    (("chat", "sip:bob@127.0.0.1:9", "--relay", "msrp://127.0.0.1:9;tcp"), "--relay"),
    (("chat", "sip:bob@127.0.0.1:9", "--password-env", "ALICE_PW"), "--from"),
    (("record", "sip:bob@", "out.wav"), "URI"),
    (("record", "sip:bob@127.0.0.1:9"), "FILE"),
    (("demo", "--duration", "x"), "--duration"),
    (("accounts", "add", "bad"), "bad"),
    (("accounts", "set", "a@example.test"), "KEY=VALUE"),
    (("nosuchcommand",), "nosuchcommand"),
]


def test_usage_errors_exit_2_with_one_line_in_every_subcommand(tmp_path):
    config = tmp_path / "config"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda case: sipcli(config, *case[0]), USAGE_ERRORS))
    for (args, fragment), result in zip(USAGE_ERRORS, results, strict=True):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (args, result.stderr)
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in lines[0], (args, result.stderr)
        json_lines(result.stdout)
    assert not config.exists()  # nothing was written


@pytest.mark.parametrize("damage", ["corrupt", "directory"])
def test_unreadable_config_exits_5_and_is_left_untouched_in_every_session_command(tmp_path, damage):
    config = tmp_path / "config"
    config.mkdir()
    path = config / "config.json"
    if damage == "corrupt":
        path.write_bytes(b'{"accounts": {"alice@example.test": ')
        path.chmod(0o600)
    else:
        path.mkdir()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in config.rglob("*"))
    content = path.read_bytes() if damage == "corrupt" else None
    commands = [("register",), ("call", "sip:bob@127.0.0.1:9"), ("listen",), ("chat", "sip:bob@127.0.0.1:9"),
                ("record", "sip:bob@127.0.0.1:9", str(tmp_path / "out.wav"))]
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda c: sipcli(config, *c, "--account", "alice@example.test"), commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 5, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "config.json" in lines[0] and "Traceback" not in result.stderr, result.stderr
        summary = json_lines(result.stdout)[-1]["data"]
        assert (summary["outcome"], summary["exit_code"]) == ("config", 5)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in config.rglob("*")) == before
    if content is not None:
        assert path.read_bytes() == content
    assert not (tmp_path / "out.wav").exists()


def test_help_of_every_subcommand(tmp_path):
    commands = [(), ("register",), ("call",), ("listen",), ("chat",), ("record",), ("demo",), ("accounts",),
                *[("accounts", sub) for sub in ("list", "add", "show", "set", "delete", "default")]]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: sipcli(tmp_path / "config", *c, "--help"), commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 0 and result.stderr == "", (command, result.stderr)
        assert result.stdout.startswith(f"Usage: sipcli {' '.join(command)}".rstrip() + " "), result.stdout


# -- malformed SIP and MSRP from the network ---------------------------------------------------------------------

def sip_request(method: str, transport: str, sdp: bytes = b"") -> bytes:
    """A SIP request with fresh Call-ID and branch (no retransmission of an earlier one)."""
    tag = uuid.uuid4().hex
    head = (f"{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:9;rport;branch=z9hG4bK{tag}\r\n"
            f"From: <sip:a@127.0.0.1>;tag={tag}\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: {tag}\r\nCSeq: 1 {method}\r\n"
            f"Max-Forwards: 70\r\nContact: <sip:a@127.0.0.1:9>\r\n")
    if sdp:
        head += "Content-Type: application/sdp\r\n"
    return f"{head}Content-Length: {len(sdp)}\r\n\r\n".encode() + sdp


GARBAGE_SIP = [
    b"\x00\xff\xfe not SIP at all \r\n\r\n",
    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKtrunc",  # truncated
    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: bad\r\nFrom: <<<\r\nTo: >\r\nCSeq: x\r\nContent-Length: 99\r\n\r\nv=0",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\n"
    b"From: <sip:a@b.test>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nContent-Length: 0\r\n\r\n",
    b"X" * 60000,
]


def test_listen_survives_malformed_sip_over_udp_and_tcp_then_takes_a_real_call(run):
    listener, uris = listen(run, "--auto-answer", "--count", "1")
    udp_port, tcp_port = uri_port(uris["udp"]), uri_port(uris["tcp"])
    bad_sdp = b"v=0\r\no=garbage\r\nm=audio x RTP/AVP\r\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(3)
        for payload in GARBAGE_SIP:
            udp.sendto(payload, ("127.0.0.1", udp_port))
        udp.sendto(sip_request("INVITE", "UDP", bad_sdp), ("127.0.0.1", udp_port))
        assert udp.recv(65535).startswith(b"SIP/2.0 400 ")  # rport: the answer comes back to this socket
    for payload in [*GARBAGE_SIP, b"".join(GARBAGE_SIP)]:
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=3) as tcp:
            tcp.sendall(payload)
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=3) as tcp:
        tcp.sendall(sip_request("INVITE", "TCP", bad_sdp))
        assert tcp.recv(65535).startswith(b"SIP/2.0 400 ")
    assert listener.process.poll() is None and not listener.find("SIPSessionNewIncoming")
    caller = run("call", uris["tcp"], *LOOPBACK, "--duration", "0.3")
    assert caller.wait() == 0, caller.stderr()
    assert listener.wait() == 0, listener.stderr()
    assert len(listener.find("SIPSessionNewIncoming")) == 1 and listener.summary["sessions"] == 1
    assert "Traceback" not in listener.stderr()


def exchange(port: int, payload: bytes) -> bytes:
    """Send payload on a fresh MSRP connection: what came back before the peer closed (or 2 s passed)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        try:
            connection.sendall(payload)
            while chunk := connection.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
    return received


def test_chat_listener_survives_malformed_msrp_then_chats(run, tmp_path):
    listener, uris = listen(run, "--auto-answer", "--chat", "--echo", "--count", "1")
    (msrp_port,) = listening_tcp_ports(listener.process.pid) - {uri_port(uris["tcp"])}
    stranger = f"msrp://127.0.0.1:{msrp_port}/nosuchsession;tcp"
    frames = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no To-Path: dropped at once
        b"MSRP t1 SEND\r\nTo-Path: not-a-uri\r\nFrom-Path: msrp://127.0.0.1:9/a;tcp\r\n\r\n",
        b"MSRP t2 SEND\r\nX-Big: " + b"a" * 100_000 + b"\r\n",  # oversized header block
        b"\xff\xfe\x00\r\n" * 5000,
    ]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda frame: exchange(msrp_port, frame), frames))
    assert all(answer == b"" for answer in answers), answers  # refused by closing, never a crash
    # A frame for a session that does not exist is left unanswered while held, then dropped: never delivered.
    exchange(msrp_port, f"MSRP t3 SEND\r\nTo-Path: {stranger}\r\nFrom-Path: msrp://127.0.0.1:9/a;tcp\r\n"
                        f"Message-ID: m1\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                        f"-------t3$\r\n".encode())
    assert listener.process.poll() is None and not listener.find("SIPSessionGotMessage")
    chat = run("chat", uris["udp"], *LOOPBACK, "--message", "still here", config="caller")
    assert chat.wait(20) == 0, chat.stderr()
    assert listener.wait() == 0, listener.stderr()
    assert [e["data"]["content"] for e in listener.find("SIPSessionGotMessage")] == ["still here"]
    assert len(chat.find("SIPSessionDidDeliverMessage")) == 1


# -- SIGINT/SIGTERM mid-session: BYE at the peer, unregistered, exit 130; passwords never printed ----------------

def add_account(config: Path, user: str) -> None:
    result = sipcli(config, "accounts", "add", f"{user}@{DOMAIN}", "--password-env", f"{user.upper()}_PW")
    assert result.returncode == 0, result.stderr


def registered(kamailio, user: str) -> bool:
    return f"AoR: {user}@" in kamailio.location() or f"AoR: {user}\n" in kamailio.location()


@pytest.mark.parametrize("command", ["call", "listen", "chat"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_session_sends_bye_unregisters_and_exits_130(run, kamailio, tmp_path, command, signum):
    """bob listens and alice calls (or chats), both registered through kamailio; one of them gets the signal.

    The listener uses an ad hoc account (--from/--password-env) with -vv and --trace to stderr; the caller a
    configured account (--account) with -vv, --trace and --log-file: the passwords appear nowhere.
    """
    chat = command == "chat"
    add_account(tmp_path / "caller", "alice")
    config_before = (tmp_path / "caller" / "config.json").read_bytes()
    log_file = tmp_path / "caller.log"
    listener = run("-vv", "listen", *LOOPBACK, "--trace", "--from", f"bob@{DOMAIN}", "--password-env", "BOB_PW",
                   "--proxy", kamailio.proxy("tcp"), "--auto-answer", "--count", "1", *(["--chat"] if chat else []))
    listener.wait_for("SIPCLIListenDidStart")
    assert registered(kamailio, "bob")
    caller = run("-vv", "--log-file", str(log_file), "chat" if chat else "call", f"sip:bob@{DOMAIN}", *LOOPBACK,
                 "--trace", "--account", f"alice@{DOMAIN}", "--proxy", kamailio.proxy("tcp"), "--duration", "30",
                 config="caller")
    caller.wait_for("SIPSessionDidStart")
    listener.wait_for("SIPSessionDidStart")
    assert registered(kamailio, "alice")
    signalled, peer, user = (listener, caller, "bob") if command == "listen" else (caller, listener, "alice")
    signalled.signal(signum)
    assert signalled.wait() == 130, signalled.stderr()
    assert (signalled.summary["outcome"], signalled.summary["exit_code"]) == ("interrupted", 130)
    assert signalled.find("SIPSessionDidEnd")[0]["data"]["originator"] == "local"
    assert signalled.find("SIPAccountRegistrationDidEnd")[0]["data"]["code"] == 200
    assert not registered(kamailio, user)
    # the peer got the BYE: its session ended from the remote side, and it exits normally
    assert peer.wait_for("SIPSessionDidEnd")["data"]["originator"] == "remote"
    if peer is caller:
        peer.signal(signal.SIGINT)  # --duration 30: the caller ends its wait once hung up
    peer.wait()
    bye = [e for e in peer.find("SIPEngineSIPTrace") if e["data"]["direction"] == "incoming"
           and "BYE sip:" in e["data"]["data"].split("\r\n", 1)[0]]
    assert bye, "the peer's trace shows no incoming BYE"
    for process in (listener, caller):
        names = process.names()
        order = ["SIPApplicationWillStart", "SIPApplicationDidStart", "SIPApplicationWillEnd",
                 "SIPApplicationDidEnd", "SIPCLIDidEnd"]
        assert [name for name in names if name in order] == order, names
        assert process.find("SIPEngineSIPTrace")
        no_password(json.dumps(process.events), process.stderr())
    assert "SIPEngineSIPTrace" not in caller.stderr()  # traces are JSON lines on stdout only
    no_password(log_file.read_text())
    assert (tmp_path / "caller" / "config.json").read_bytes() == config_before
    assert (tmp_path / "caller" / "config.json").stat().st_mode & 0o777 == 0o600


def test_register_never_prints_passwords_with_trace_and_verbose(kamailio, tmp_path):
    config = tmp_path / "config"
    add_account(config, "alice")
    log_file = tmp_path / "register.log"
    adhoc = sipcli(config, "-vv", "register", "--trace", "--from", f"bob@{DOMAIN}", "--password-env", "BOB_PW",
                   "--proxy", kamailio.proxy("udp"))
    stored = sipcli(config, "-vv", "--log-file", str(log_file), "register", "--trace", "--account",
                    f"alice@{DOMAIN}", "--proxy", kamailio.proxy("udp"))
    for result in (adhoc, stored):
        assert result.returncode == 0, result.stderr
        lines = json_lines(result.stdout)
        assert any(line["name"] == "SIPEngineSIPTrace" and "Authorization:" in line["data"]["data"]
                   for line in lines)
        no_password(result.stdout, result.stderr)
    assert log_file.stat().st_size > 0
    no_password(log_file.read_text())


# -- output formats ---------------------------------------------------------------------------------------------

def test_record_with_verbose_and_trace_prints_only_json_lines(tmp_path):
    uas = start_sipp("uas_answer", tmp_path / "sipp")
    try:
        result = sipcli(tmp_path / "config", "-vv", "record", uas.uri, str(tmp_path / "out.wav"), *LOOPBACK,
                        "--trace", "--duration", "0.3")
        assert uas.wait(10) == 0
    finally:
        uas.stop()
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert {"SIPEngineSIPTrace", "SIPSessionDidStart", "SIPSessionDidEnd"} <= {line["name"] for line in lines}
    assert (lines[-1]["data"]["outcome"], lines[-1]["data"]["exit_code"]) == ("ok", 0)
    assert result.stderr  # -vv diagnostics went to stderr
    assert (tmp_path / "out.wav").stat().st_size > 44


def test_format_text_for_a_session_command(run, tmp_path):
    listener, uris = listen(run, "--auto-answer", "--count", "1")
    caller = subprocess.run([*SIPCLI, "--format", "text", "call", uris["udp"], *LOOPBACK, "--duration", "0.2"],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "caller")})
    assert caller.returncode == 0, caller.stderr
    lines = caller.stdout.splitlines()
    assert not any(line.startswith("{") for line in lines)
    assert any(line.endswith("  ringing") for line in lines) and any("  answered: " in line for line in lines), \
        caller.stdout
    assert "done: ok: session ended" in lines[-1] and "exit 0 (the job did what was asked)" in lines[-1]
    assert listener.wait() == 0



# -- media gaps: SRTP policy, DTMF over SIP INFO, no RTP -----------------------------------------------------------

def test_srtp_mandatory_both_sides_and_a_mismatch_refused_with_488(run):
    listener, uris = listen(run, "--auto-answer", "--count", "1", "--srtp", "mandatory", "--expect-dtmf", "12")
    plain = run("call", uris["udp"], *LOOPBACK, "--srtp", "disabled", "--duration", "0.2")
    assert plain.wait() == 1  # refused by the SIP engine before any session exists: it does not count
    assert plain.summary["code"] == 488
    secure = run("call", uris["udp"], *LOOPBACK, "--trace", "--srtp", "mandatory", "--dtmf-info", "--dtmf", "12",
                 "--dtmf-delay", "0.1", "--duration", "0.6", "--expect-audio")
    assert secure.wait() == 0, secure.stderr()
    invite = next(e["data"]["data"] for e in secure.find("SIPEngineSIPTrace") if e["data"]["direction"] == "outgoing"
                  and e["data"]["data"].startswith("INVITE "))
    assert "RTP/SAVP" in invite and "a=crypto:" in invite
    assert listener.wait() == 0, listener.stderr()
    digits = [(e["data"]["digit"], e["data"]["method"]) for e in listener.find("SIPSessionGotDTMF")]
    assert digits == [("1", "info"), ("2", "info")]


def test_no_rtp_from_the_peer_is_got_no_audio_and_exit_6(tmp_path, run):
    uas = start_sipp("uas_answer", tmp_path / "sipp")  # answers with SDP but never sends RTP
    try:
        caller = run("call", uas.uri, *LOOPBACK, "--expect-audio", "--duration", "5.6")
        assert caller.wait(20) == 6, caller.stderr()
        assert uas.wait(5) == 0
    finally:
        uas.stop()
    assert caller.summary["outcome"] == "media"
    assert len(caller.find("SIPSessionGotNoAudio")) == 1
