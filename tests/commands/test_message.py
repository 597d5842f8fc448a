"""`sipcli message` and `listen` in pager mode (RFC 3428 MESSAGE) against real peers: another sipcli (P2P and
through kamailio), SIPp UAS/UAC scenarios, sipsak, and raw requests a test peer writes byte by byte."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid

import pytest

from tests.support.kamailio import registrar
from tests.support.ports import free_port
from tests.support.sipcli import SIPCLI

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
EMOJI = "Grüße, ça va? 😀👍 日本語"


def listen(run, *args: str):
    listener = run("listen", *LOOPBACK, *args)
    ready = listener.wait_for("SIPCLIListenDidStart")
    return listener, ready["data"]["uris"]["udp"]


def message_with_stdin(tmp_path, *args: str, stdin: str, env: dict | None = None) -> tuple[int, list[dict], str]:
    """Run `sipcli message ARGS` with stdin text: (exit code, JSON events, stderr)."""
    done = subprocess.run([*SIPCLI, "message", *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "config"), **(env or {})})
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def bodies(listener) -> list[str]:
    return [event["data"]["body"] for event in listener.find("SIPEngineGotMessage")]


def test_p2p_messages_arrive_intact_with_cpim_and_composing(run):
    listener, uri = listen(run, "--messages", "3", "--timeout", "20")
    sender = run("message", uri, EMOJI, "--message", "second", "--message", "third line ✓", *LOOPBACK,
                 "--composing")
    assert sender.wait() == 0, sender.stderr()
    assert listener.wait() == 0, listener.stderr()
    assert sorted(bodies(listener)) == sorted([EMOJI, "second", "third line ✓"])
    assert [e["data"]["code"] for e in sender.find("SIPMessageDidSucceed")] == [200] * 6  # 3 + 3 composing
    assert sender.summary["delivered"] == 3 and sender.summary["exit_code"] == 0
    got = listener.find("SIPEngineGotMessage")[0]["data"]
    assert got["content_type"] == "text/plain" and got["account"] == "account/bonjour@local"
    assert got["from_header"].startswith("<sip:") and got["request_uri"].startswith(uri.split("@")[0])
    states = [e["data"]["state"] for e in listener.find("SIPEngineGotComposingIndication")]
    assert states == ["active"] * 3
    assert listener.summary["messages"] == 3


def test_cpim_wrapping_and_stdin_lines(run, tmp_path):
    listener, uri = listen(run, "--messages", "2", "--timeout", "20")
    code, events, stderr = message_with_stdin(tmp_path, uri, *LOOPBACK, "--cpim", stdin=f"{EMOJI}\nbye\n")
    assert code == 0, stderr
    assert listener.wait() == 0
    got = listener.find("SIPEngineGotMessage")
    assert {g["data"]["content_type"] for g in got} == {"message/cpim"}
    texts = sorted(g["data"]["body"].split("\r\n\r\n")[-1] for g in got)
    assert texts == sorted([EMOJI, "bye"])
    assert all("DateTime: " in g["data"]["body"] and f"To: <{uri}>" in g["data"]["body"] for g in got)
    assert events[-1]["data"]["sent"] == 2


def test_text_format_shows_a_chat(run, tmp_path):
    port = free_port()
    listener = subprocess.Popen([*SIPCLI, "--format", "text", "listen", *LOOPBACK, "--port", str(port),
                                 "--messages", "1", "--timeout", "20"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "l")})
    try:
        line = ""
        while "listening at " not in line:  # the human view of SIPCLIListenDidStart
            line = listener.stdout.readline()
            assert line, "the listener ended early"
        sender = run("message", f"sip:someone@127.0.0.1:{port}", EMOJI, *LOOPBACK, "--cpim")
        assert sender.wait() == 0
        rest = listener.communicate(timeout=20)[0]
    finally:
        listener.kill() if listener.poll() is None else None
    chat = [line for line in rest.splitlines() if line.endswith(f": {EMOJI}")]
    assert len(chat) == 1 and "@127.0.0.1" in chat[0] and "SIPEngineGotMessage" not in chat[0]


def test_sipp_uas_200_and_refusals(sipp, run):
    ok = sipp("uas_message", calls=2)
    sender = run("message", ok.uri, "hello", "--message", EMOJI, *LOOPBACK)
    assert sender.wait() == 0, sender.stderr()
    assert ok.wait() == 0
    assert f"\n\n{EMOJI}" in ok.messages()
    for code, reason in ((404, "Not Found"), (486, "Busy Here")):
        uas = sipp(f"uas_message_{code}", calls=1)
        refused = run("message", uas.uri, "hi", *LOOPBACK)
        assert refused.wait() == 1
        (failure,) = refused.find("SIPMessageDidFail")
        assert failure["data"]["code"] == code and failure["data"]["reason"] == reason
        assert failure["data"]["originator"] == "remote" and "Call-ID" in failure["data"]["headers"]
        assert refused.summary["exit_code"] == 1


def test_sipp_uac_and_sipsak_send_into_listen(sipp, run, tmp_path):
    listener, uri = listen(run, "--messages", "4", "--timeout", "20")
    port = int(uri.rsplit(":", 1)[1])
    uac = sipp("uac_message", target=f"127.0.0.1:{port}", calls=3, extra=["-key", "body", "from sipp"])
    assert uac.wait() == 0, uac.output()[-1500:]
    # sipsak's own MESSAGE mode (-M) segfaults (notes/real-peers.md): it sends a MESSAGE from a file instead.
    local = free_port("udp")
    request = tmp_path / "message.sip"
    request.write_bytes(f"MESSAGE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};"
                        f"branch=z9hG4bKsipsak1\r\nFrom: <sip:sipsak@127.0.0.1:{local}>;tag=1\r\n"
                        f"To: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: sipsak-1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\n"
                        f"Max-Forwards: 70\r\n"
                        f"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nfrom sipsak".encode())
    sipsak = subprocess.run(["sipsak", "-f", str(request), "-s", f"sip:bob@127.0.0.1:{port}", "-l", str(local)],
                            capture_output=True, text=True, timeout=20)
    assert sipsak.returncode == 0, sipsak.stdout + sipsak.stderr  # 0: a 2xx came back
    assert listener.wait() == 0
    # SIPp ends its body with the scenario's line break (and counts it in Content-Length): bytes as sent.
    assert sorted(bodies(listener)) == ["from sipp 1\r\n", "from sipp 2\r\n", "from sipp 3\r\n", "from sipsak"]


def test_listen_times_out_when_fewer_messages_came(run):
    listener, uri = listen(run, "--messages", "2", "--timeout", "3")
    assert run("message", uri, "only one", *LOOPBACK).wait() == 0
    assert listener.wait() == 3
    assert listener.summary["messages"] == 1 and bodies(listener) == ["only one"]


def test_large_bodies_switch_to_tcp_or_are_refused_whole(run):
    """Above 1300 bytes pjsip sends over TCP (RFC 3261 18.1.1); the wheel's packet limit (PJSIP_MAX_PKT_LEN, 4000
    bytes per request) refuses 4 KB and 64 KB bodies before sending anything, never a truncated one."""
    # One port for UDP and TCP: pjsip switches to TCP on the port the URI names.
    listener, uri = listen(run, "--messages", "1", "--timeout", "20", "--trace", "--port", str(free_port()))
    body = ("0123456789abcdef" * 200)[:3000]
    sender = run("message", uri, body, *LOOPBACK)
    assert sender.wait() == 0, sender.stderr()
    assert listener.wait() == 0
    assert bodies(listener) == [body]
    incoming = [t["data"] for t in listener.find("SIPEngineSIPTrace") if t["data"]["data"].startswith("MESSAGE ")]
    assert [t["transport"] for t in incoming] == ["tcp"]
    for size in (4096, 65536):
        refused = run("message", uri, "x" * size, *LOOPBACK)
        assert refused.wait() == 4
        (failure,) = refused.find("SIPMessageDidFail")
        assert failure["data"]["code"] == 0 and failure["data"]["originator"] == "local"
        assert f"{size}-byte body is larger than the SIP engine's packet limit" in failure["data"]["reason"]


def _raw_request(port: int, user: str, body: bytes, content_type: str | None, proto: str = "udp") -> bytes:
    """Send one MESSAGE as the bytes given; the response's status line."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        branch = uuid.uuid4().hex
        headers = (f"MESSAGE sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/{proto.upper()} 127.0.0.1:{local};"
                   f"branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1:{local}>;tag={branch[:8]}"
                   f"\r\nTo: <sip:{user}@127.0.0.1:{port}>\r\nCall-ID: {branch}\r\nCSeq: 1 MESSAGE\r\n"
                   + (f"Content-Type: {content_type}\r\n" if content_type else "")
                   + f"Content-Length: {len(body)}\r\n\r\n").encode()
        if proto == "udp":
            sock.sendto(headers + body, ("127.0.0.1", port))
        else:
            sock.connect(("127.0.0.1", port))
            sock.sendall(headers + body)
        return sock.recv(65536).split(b"\r\n", 1)[0]


def test_what_the_engine_answers_before_sipcli_decides(run, tmp_path):
    """pjsua answers 200 to every out-of-dialog MESSAGE before Python runs: a body without Content-Type (the
    reference answers 400) and a request for an unknown user (404) included. sipcli reports both, with the body
    pjsip itself drops and with account null, so nothing that was acknowledged is lost."""
    (tmp_path / "kamailio").mkdir()
    server = registrar(tmp_path / "kamailio")
    try:
        listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "BOB_PW", "--proxy",
                       server.proxy("udp"), "--messages", "3", "--timeout", "20", env={"BOB_PW": "bob-secret"})
        port = int(listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"].rsplit(":", 1)[1])
        assert _raw_request(port, "bob", "no type ☺".encode(), None) == b"SIP/2.0 200 OK"
        assert _raw_request(port, "nobody", b"for nobody", "text/plain") == b"SIP/2.0 200 OK"
        assert _raw_request(port, "bob", b"\xff\xfe not utf-8", "application/octet-stream") == b"SIP/2.0 200 OK"
        assert listener.wait() == 0
        untyped, unknown, binary = (e["data"] for e in listener.find("SIPEngineGotMessage"))
        assert untyped["content_type"] is None and untyped["body"] == "no type ☺"
        assert untyped["account"] == "account/bob@example.test"
        assert unknown["account"] is None and unknown["body"] == "for nobody"
        assert binary["body"] == {"base64": "//4gbm90IHV0Zi04"}
    finally:
        server.stop()


def test_engine_drops_and_truncates_requests_beyond_its_packet_limit(run):
    """Measured limits of the wheel's receiving side: over TCP a request above 4000 bytes is dropped unanswered;
    over UDP pjsip cuts the datagram at 4000 bytes and answers 200, and sipcli reports it truncated."""
    listener, uri = listen(run, "--messages", "1", "--timeout", "20")
    port = int(uri.rsplit(":", 1)[1])
    try:
        answer = _raw_request(port, "bob", b"t" * 5000, "text/plain", proto="tcp")
    except OSError:  # reset, or no answer within the 5 s the peer waits
        answer = b""
    assert answer == b""
    assert _raw_request(port, "bob", b"u" * 5000, "text/plain") == b"SIP/2.0 200 OK"
    assert listener.wait() == 0
    (got,) = (e["data"] for e in listener.find("SIPEngineGotMessage"))
    assert got["truncated"] is True and 3000 < len(got["body"]) < 5000 and set(got["body"]) == {"u"}


def test_no_response_is_a_timeout_and_refused_connection_a_transport_failure(run):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        quiet = run("message", f"sip:nobody@127.0.0.1:{port}", "anyone?", *LOOPBACK, "--timeout", "1.5")
        assert quiet.wait() == 3
        silent.settimeout(5)
        assert silent.recv(4096).startswith(b"MESSAGE sip:nobody@127.0.0.1")
    (failure,) = quiet.find("SIPMessageDidFail")
    assert failure["data"]["code"] == 408 and failure["data"]["originator"] == "local"
    closed = run("message", f"sip:nobody@127.0.0.1:{free_port('tcp')};transport=tcp", "hello", *LOOPBACK)
    assert closed.wait() == 4
    (failure,) = closed.find("SIPMessageDidFail")
    assert failure["data"]["originator"] == "local" and failure["data"]["code"] != 0


def test_registered_through_kamailio_with_407_challenge(run, tmp_path):
    (tmp_path / "kamailio").mkdir()
    server = registrar(tmp_path / "kamailio")
    try:
        env = {"ALICE_PW": "alice-secret", "BOB_PW": "bob-secret"}
        listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "BOB_PW", "--proxy",
                       server.proxy("udp"), "--messages", "2", "--timeout", "30", env=env)
        listener.wait_for("SIPCLIListenDidStart")
        sender = run("message", "sip:bob@example.test", EMOJI, "--message", "2nd", *LOOPBACK, "--from",
                     "alice@example.test", "--password-env", "ALICE_PW", "--proxy", server.proxy("udp"), "--trace",
                     env=env)
        assert sender.wait() == 0, sender.stderr()
        assert listener.wait() == 0, listener.stderr()
        assert sorted(bodies(listener)) == sorted([EMOJI, "2nd"])
        assert all(e["data"]["from_header"].startswith("<sip:alice@example.test>")
                   for e in listener.find("SIPEngineGotMessage"))
        traces = [t["data"]["data"] for t in sender.find("SIPEngineSIPTrace")]
        assert any(t.startswith("SIP/2.0 407") and "CSeq: " in t and " MESSAGE" in t for t in traces)
        assert any(t.startswith("MESSAGE ") and "Proxy-Authorization: Digest" in t for t in traces)
        nobody = run("message", "sip:nobody@example.test", "hi", *LOOPBACK, "--from", "alice@example.test",
                     "--password-env", "ALICE_PW", "--proxy", server.proxy("udp"), env=env)
        assert nobody.wait() == 1
        assert nobody.find("SIPMessageDidFail")[0]["data"]["code"] == 404
    finally:
        server.stop()


def test_usage_errors(run):
    assert run("message", "sip:bob@", "x", *LOOPBACK).wait() == 2
    assert run("message", "sip:127.0.0.1", "x", *LOOPBACK).wait() == 2
    assert run("message", "sip:a@127.0.0.1:5", "x", "--content-type", "plain", *LOOPBACK).wait() == 2


def test_unregistered_account_routes_by_rfc3263_through_kamailio(run, tmp_path):
    """An account that does not register sends along sipcli.lookup's RFC 3263 route for the target's domain (SRV
    from a loopback DNS server), answering kamailio's 407 with its own credentials."""
    from tests.support.dns import DNSServer

    (tmp_path / "kamailio").mkdir()
    server = registrar(tmp_path / "kamailio")
    zone = {("_sip._udp.example.test", "SRV"): [f"10 10 {server.udp_port} proxy.example.test."],
            ("proxy.example.test", "A"): ["127.0.0.1"]}
    try:
        with DNSServer(zone) as dns:
            env = {"ALICE_PW": "alice-secret", "BOB_PW": "bob-secret"}
            accounts = [*SIPCLI, "accounts"]
            config = {**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "alice"), **env}
            subprocess.run([*accounts, "add", "alice@example.test", "--password-env", "ALICE_PW"], env=config,
                           check=True, capture_output=True, timeout=30)
            subprocess.run([*accounts, "set", "alice@example.test", "registration.enabled=false"], env=config,
                           check=True, capture_output=True, timeout=30)
            listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "BOB_PW", "--proxy",
                           server.proxy("udp"), "--messages", "1", "--timeout", "30", env=env)
            listener.wait_for("SIPCLIListenDidStart")
            sender = run("message", "sip:bob@example.test", "via SRV", *LOOPBACK, "--account", "alice@example.test",
                         "--nameserver", f"127.0.0.1:{dns.port}", "--trace", config="alice")
            assert sender.wait() == 0, sender.stderr()
            assert listener.wait() == 0
            assert bodies(listener) == ["via SRV"]
            assert not sender.find("SIPAccountRegistrationDidSucceed")
            assert ("_sip._udp.example.test", "SRV") in dns.queries
            traces = [t["data"] for t in sender.find("SIPEngineSIPTrace")]
            assert {t["destination"] for t in traces if t["direction"] == "outgoing"} == {
                f"127.0.0.1:{server.udp_port}"}
            assert any(t["data"].startswith("SIP/2.0 407") for t in traces)
    finally:
        server.stop()


def test_message_inside_a_call_is_reported(run, sipp):
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--messages", "1", "--timeout", "20")
    uac = sipp("uac_call_message", f"127.0.0.1:{uri.rsplit(':', 1)[1]}")
    assert uac.wait(15) == 0, uac.output()[-2000:]
    assert listener.wait() == 0, listener.stderr()
    (got,) = (e["data"] for e in listener.find("SIPEngineGotMessage"))
    assert got["body"].rstrip() == "inside the call" and got["account"] == "account/bonjour@local"
