"""`sipcli chat` and `listen --chat` between two sipcli processes: P2P over TCP and TLS, through kamailio's MSRP
relay, 1,000 messages each way from a pipe, an interactive terminal, a refused message, a failed MSRP connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pexpect
import pytest

from tests.support.kamailio import DOMAIN, USERS, registrar
from tests.support.msrp_relay import msrp_relay
from tests.support.ports import free_port
from tests.support.sipcli import SIPCLI, SIPCLIProcess

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


def chat(tmp_path, *args: str, stdin: str = "", env: dict[str, str] | None = None,
         timeout: float = 40) -> tuple[int, list[dict], str]:
    """Run `sipcli chat ...` to its end with stdin: exit code, JSON lines, stderr."""
    result = subprocess.run([*SIPCLI, "chat", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "caller"), **(env or {})})
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def named(events: list[dict], name: str) -> list[dict]:
    return [event for event in events if event["name"] == name]


def listen_chat(run, *args: str, **kwargs) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *LOOPBACK, "--auto-answer", "--chat", "--echo", "--count", "1", *args, **kwargs)
    ready = listener.wait_for("SIPCLIListenDidStart")
    return listener, ready["data"]["uris"]["udp"]


def test_thousand_messages_each_way_from_a_pipe_exactly_once_in_order(run, tmp_path):
    listener, uri = listen_chat(run)
    lines = [f"message {n}" for n in range(1000)]
    # --expect-messages: stay until the echoes are back too (else the chat ends once its own messages are delivered)
    code, events, stderr = chat(tmp_path, uri, *LOOPBACK, "--expect-messages", "1000", stdin="\n".join(lines) + "\n")
    assert code == 0, stderr[-2000:]
    assert events[-1]["data"]["delivered"] == 1000 and events[-1]["data"]["not_delivered"] == 0
    assert len(named(events, "SIPSessionDidDeliverMessage")) == 1000
    assert [e["data"]["content"] for e in named(events, "SIPSessionGotMessage")] == lines  # the echoes
    assert listener.wait() == 0
    assert [e["data"]["content"] for e in listener.find("SIPSessionGotMessage")] == lines
    assert len(listener.find("SIPSessionDidDeliverMessage")) == 1000
    assert listener.find("SIPSessionNewIncoming")[0]["data"]["streams"] == ["chat"]
    got = named(events, "SIPSessionGotMessage")[0]["data"]
    assert got["content_type"] == "text/plain" and got["cpim_headers"]["To"].startswith("<sip:")


def test_p2p_chat_over_tls_with_audio(run, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    (tmp_path / "listener").mkdir()
    settings = {"general": {"tls": {"certificate": str(tmp_path / "both.pem")}}}
    (tmp_path / "listener" / "config.json").write_text(json.dumps(settings))
    (tmp_path / "both.pem").write_text(cert.read_text() + key.read_text())
    listener, uri = listen_chat(run, config="listener")
    code, events, stderr = chat(tmp_path, uri, *LOOPBACK, "--msrp-tls", "--tls-ca", str(cert), "--audio",
                                "--message", "über TLS", "--message", "two", "--expect-messages", "2")
    assert code == 0, stderr[-2000:]
    started = named(events, "MediaStreamDidStart")[0]["data"]
    assert started["remote_path"][0].startswith("msrps://127.0.0.1:")
    assert [e["data"]["content"] for e in named(events, "SIPSessionGotMessage")] == ["über TLS", "two"]
    assert listener.wait() == 0
    assert listener.find("SIPSessionNewIncoming")[0]["data"]["streams"] == ["audio", "chat"]


def test_chat_through_kamailio_msrp_relay_both_registered(run, tmp_path):
    (tmp_path / "registrar").mkdir()
    (tmp_path / "relay").mkdir()
    kamailio = registrar(tmp_path / "registrar")
    relay = msrp_relay(tmp_path / "relay")
    try:
        relay_uri = f"msrp://127.0.0.1:{relay.tcp_port};tcp"
        env = {"BOB_PW": USERS["bob"], "ALICE_PW": USERS["alice"]}
        listener = run("listen", *LOOPBACK, "--auto-answer", "--chat", "--echo", "--count", "1",
                       "--from", f"bob@{DOMAIN}", "--password-env", "BOB_PW", "--proxy", kamailio.proxy(),
                       "--relay", relay_uri, env=env)
        listener.wait_for("SIPCLIListenDidStart", 15)
        code, events, stderr = chat(tmp_path, f"sip:bob@{DOMAIN}", *LOOPBACK, "--from", f"alice@{DOMAIN}",
                                    "--password-env", "ALICE_PW", "--proxy", kamailio.proxy(),
                                    "--relay", relay_uri, "--trace",
                                    "--message", "via the relay", "--expect-messages", "1", env=env)
        assert code == 0, stderr[-3000:] + relay.log()[-2000:]
        # the chat session leaves its registered account alone: no REGISTER between its INVITE and its BYE
        sent = [e["data"]["data"].split(" ", 1)[0] for e in named(events, "SIPEngineSIPTrace")
                if e["data"]["direction"] == "outgoing" and not e["data"]["data"].startswith("SIP/2.0")]
        assert "INVITE" in sent and "BYE" in sent
        assert "REGISTER" not in sent[sent.index("INVITE"):sent.index("BYE")], sent
        started = named(events, "MediaStreamDidStart")[0]["data"]
        relay_prefix = f"msrp://127.0.0.1:{relay.tcp_port}/"
        assert started["local_path"][0].startswith(relay_prefix)
        assert started["remote_path"][0].startswith(relay_prefix)
        assert [e["data"]["content"] for e in named(events, "SIPSessionGotMessage")] == ["via the relay"]
        assert listener.wait() == 0
    finally:
        relay.stop()
        kamailio.stop()


def test_refused_message_is_exit_1(run, tmp_path):
    _, uri = listen_chat(run)
    code, events, _ = chat(tmp_path, uri, *LOOPBACK, "--no-cpim", "--content-type", "application/x-unknown",
                           "--message", "nobody takes this")
    assert code == 1
    refused = named(events, "SIPSessionDidNotDeliverMessage")[0]["data"]
    assert refused["code"] == 415
    assert events[-1]["data"]["code"] == 415


def test_msrp_connection_failure_is_exit_4(tmp_path):
    kamailio = registrar(tmp_path)
    try:
        code, events, stderr = chat(tmp_path, f"sip:bob@{DOMAIN}", *LOOPBACK, "--from", f"alice@{DOMAIN}",
                                    "--password-env", "ALICE_PW", "--proxy", kamailio.proxy(),
                                    "--relay", f"msrp://127.0.0.1:{free_port('tcp')};tcp",
                                    env={"ALICE_PW": USERS["alice"]})
    finally:
        kamailio.stop()
    assert code == 4, stderr[-2000:]
    assert "MSRP" in events[-1]["data"]["reason"]


def test_interactive_terminal_chat(run, tmp_path):
    listener, uri = listen_chat(run)
    child = pexpect.spawn(sys.executable, ["-m", "sipcli.commands", "chat", uri, *LOOPBACK], encoding="utf-8",
                          env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "tty")}, timeout=20)
    try:
        child.expect("MediaStreamDidStart")
        child.sendline("hello from a terminal")
        child.expect('"name":"SIPSessionGotMessage".*"content":"hello from a terminal"')
        child.sendeof()
        child.expect('"name":"SIPCLIDidEnd".*"exit_code":0')
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert listener.wait() == 0
