"""What a newcomer and a CI script hit first: `call --audio/--chat`, the default account, bounded waits that say
what happened, option values checked before any traffic (issue 8; issue 12 item 9)."""

from __future__ import annotations

import socket

import pytest

from tests.support.kamailio import DOMAIN, USERS, registrar
from tests.support.sipcli import SIPCLIProcess

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


def listen(run, *args: str, **kwargs) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", *args, **kwargs)
    return listener, listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]


def test_call_with_audio_and_chat_in_one_session(run):
    listener, uri = listen(run, "--chat", "--echo")
    caller = run("call", uri, *LOOPBACK, "--audio", "--chat", "--chat-message", "hi", "--expect-messages", "1",
                 "--dtmf", "12", "--dtmf-delay", "0")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    assert caller.find("SIPSessionDidStart")[0]["data"]["streams"] == ["audio", "chat"]
    assert [e["data"]["content"] for e in caller.find("SIPSessionGotMessage")] == ["hi"]  # the echo
    assert [e["data"]["sent"] for e in caller.find("SIPCLIDidSendDTMF")] == ["1", "12"]
    assert "".join(e["data"]["digit"] for e in listener.find("SIPSessionGotDTMF")) == "12"


def test_chat_with_audio_stays(run):
    listener, uri = listen(run, "--chat", "--echo")
    caller = run("chat", uri, *LOOPBACK, "--audio", "--message", "both", "--expect-messages", "1")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0
    assert caller.find("SIPSessionDidStart")[0]["data"]["streams"] == ["audio", "chat"]


@pytest.mark.parametrize(("args", "fragment"), [
    (("call", "sip:a@127.0.0.1:5", "--no-audio"), "--no-audio needs --chat"),
    (("call", "sip:a@127.0.0.1:5", "--dtmf", "12x"), "not DTMF digits"),
    (("call", "sip:a@127.0.0.1:5", "--record", "/proc/self/x"), "/proc/self/x: cannot be written"),
    (("record", "sip:a@127.0.0.1:5", "/proc/self/x"), "/proc/self/x: cannot be written"),
    (("listen", "--record", "/proc/self/x"), "/proc/self/x: cannot be created"),
    (("call", "sip:a@127.0.0.1:5", "--rtp-ports", "40000-39000"), "1024 <= FIRST < LAST"),
    (("chat", "sip:a@127.0.0.1:5", "--relay", "msrp://"), "--relay"),
    (("call", "sip:a@127.0.0.1:5", "--p2p", "--account", "a@example.test"), "--p2p goes with none"),
])
def test_bad_option_values_are_one_line_and_exit_2(run, args, fragment):
    process = run(*args)
    assert process.wait() == 2
    stderr = process.stderr()
    assert fragment in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_a_codec_the_engine_lacks_is_exit_2_naming_the_available_ones_before_any_call(run):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.2)
    try:
        call = run("call", f"sip:a@127.0.0.1:{sink.getsockname()[1]}", *LOOPBACK, "--codec", "OPUS")
        assert call.wait() == 2
        reason = call.summary["reason"]
        assert "--codec opus" in reason.lower() and "PCMU" in reason and "Engine build" in reason, reason
        assert not call.find("SIPSessionNewOutgoing")
        with pytest.raises(TimeoutError):
            sink.recv(65535)  # no INVITE was sent
    finally:
        sink.close()


def test_listen_timeout_exits_3_when_nothing_arrived(run):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--timeout", "0.5")
    assert listener.wait() == 3
    assert listener.summary["reason"] == "no session arrived within 0.5 s"


def test_listen_timeout_after_a_session_exits_0(run):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--timeout", "3")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--duration", "0.2")
    assert caller.wait() == 0
    assert listener.wait() == 0
    assert listener.summary["sessions"] == 1


def test_registration_to_a_silent_registrar_is_reported_as_failed_before_the_summary(run):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        register = run("register", "--from", "a@example.test", "--proxy", f"sip:127.0.0.1:{silent.getsockname()[1]}",
                       "--local-ip", "127.0.0.1", "--timeout", "1")
        assert register.wait() == 3
        names = register.names()
        assert names[-1] == "SIPCLIDidEnd" and "SIPAccountRegistrationDidFail" in names
        failed = register.find("SIPAccountRegistrationDidFail")[-1]["data"]
        assert failed["code"] == 408 and f":{silent.getsockname()[1]}" in failed["reason"]
    finally:
        silent.close()


def test_the_default_account_is_used_unless_p2p_is_asked(run, tmp_path):
    (tmp_path / "kamailio").mkdir()
    server = registrar(tmp_path / "kamailio")
    try:
        env = {"BOB_PW": USERS["bob"], "ALICE_PW": USERS["alice"]}
        for user in ("bob", "alice"):
            added = run("accounts", "add", f"{user}@{DOMAIN}", "--password-env", f"{user.upper()}_PW", "--proxy",
                        server.proxy("udp"), "--default", env=env, config=user)
            assert added.wait() == 0, added.stderr()
        listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", config="bob")
        listener.wait_for("SIPCLIListenDidStart", 15)
        assert listener.events[0]["name"] == "SIPCLIDidSelectAccount"
        assert listener.events[0]["data"] == {"account": f"bob@{DOMAIN}", "mode": "default"}
        caller = run("call", f"bob@{DOMAIN}", *LOOPBACK, "--duration", "0.3", config="alice")
        assert caller.wait(20) == 0, caller.stderr()
        assert caller.events[0]["data"] == {"account": f"alice@{DOMAIN}", "mode": "default"}
        assert listener.wait() == 0
        p2p = run("call", f"sip:bob@127.0.0.1:{server.udp_port}", *LOOPBACK, "--p2p", "--timeout", "5",
                  config="alice")
        p2p.wait(20)
        assert p2p.events[0]["data"] == {"account": "bonjour@local", "mode": "p2p"}
        assert not p2p.find("SIPAccountRegistrationDidSucceed")
    finally:
        server.stop()


def test_demo_text_view_reads_like_a_story(run, tmp_path):
    import os
    import subprocess

    from tests.support.sipcli import SIPCLI

    result = subprocess.run([*SIPCLI, "--format", "text", "demo", "--duration", "2"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "config")})
    assert result.returncode == 0, result.stderr
    lines = [line.split("  ", 1)[1] for line in result.stdout.splitlines()]
    assert not any("{" in line for line in lines), result.stdout  # no raw JSON, the listener's included
    assert lines[0] == "P2P mode (no account)" and lines[1].startswith("demo: start `sipcli listen` on loopback")
    assert "Success: audio received on both sides and the listener got 1234#: exit 0" in lines[1]
    for expected in ("ringing", "[listener] DTMF # received", "DTMF 1234# sent", "hung up",
                     "[listener] hung up by remote"):
        assert expected in lines, result.stdout
    assert any(line.startswith("answered: ") and "kHz, SRTP" in line for line in lines)
    assert any(line.startswith("[listener] incoming audio from sip:") for line in lines)
    assert lines[-1].startswith("done: ok: session ended; lasted ") and "audio received" in lines[-1]
    assert lines[-1].endswith("-> exit 0 (the job did what was asked)") and "DTMF received" not in lines[-1]


def test_incoming_session_names_the_caller(run):
    listener, uri = listen(run)
    caller = run("call", uri, *LOOPBACK, "--duration", "0.2")
    assert caller.wait() == 0
    assert listener.wait() == 0
    incoming = listener.find("SIPSessionNewIncoming")[0]["data"]
    assert incoming["remote_uri"].startswith("sip:") and incoming["local_uri"].startswith(uri.split("@")[0] + "@")
    assert incoming["call_id"] and incoming["user_agent"].startswith("sipcli ")


def test_p2p_to_a_domain_uses_rfc3263_with_failover(run):
    from tests.support.dns import DNSServer
    from tests.support.ports import free_port

    listener, _ = listen(run)
    tcp_port = int(listener.find("SIPCLIListenDidStart")[0]["data"]["uris"]["tcp"].split(":")[2].split(";")[0])
    closed = free_port("tcp")
    records = {("_sip._tcp.example.test", "SRV"): [f"10 0 {closed} dead.example.test.",
                                                   f"20 0 {tcp_port} live.example.test."],
               ("dead.example.test", "A"): ["127.0.0.1"], ("live.example.test", "A"): ["127.0.0.1"]}
    with DNSServer(records) as dns:
        caller = run("call", "bob@example.test", "--p2p", *LOOPBACK, "--nameserver", dns.nameserver,
                     "--duration", "0.2")
        assert caller.wait(40) == 0, caller.stderr()
    assert listener.wait() == 0
    assert ("_sip._tcp.example.test", "SRV") in dns.queries
    # one session: its INVITE failed at the dead address's transport, and Session.connect sent it along the
    # next route, which answered (the Request-URI stays the domain; the route is the next hop)
    assert not caller.find("SIPSessionDidFail")
    assert len(caller.find("SIPSessionNewOutgoing")) == 1 and caller.find("SIPSessionDidStart")


def test_p2p_to_a_domain_without_dns_records_names_the_host(run):
    from tests.support.dns import DNSServer

    with DNSServer({}) as dns:
        caller = run("call", "bob@nowhere.test", "--p2p", *LOOPBACK, "--nameserver", dns.nameserver)
        assert caller.wait(30) == 4
    assert caller.summary["reason"] == "no SIP server for nowhere.test: NXDOMAIN"
    assert "PJ_EEOF" not in caller.stderr()


def test_waits_say_what_is_happening_on_a_terminal(tmp_path):
    """stderr a terminal: a call to a silent peer and a registration to a silent registrar report their wait."""
    import os
    import signal

    import pexpect

    from tests.support.sipcli import SIPCLI

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "config")}
    try:
        call = pexpect.spawn(SIPCLI[0], [*SIPCLI[1:], "call", f"sip:bob@127.0.0.1:{port}", *LOOPBACK], env=env,
                             encoding="utf-8", timeout=15)
        call.expect(rf"sipcli: no response from 127\.0\.0\.1:{port} yet, 2 s")
        call.expect(rf"sipcli: no response from 127\.0\.0\.1:{port} yet, 4 s")
        call.kill(signal.SIGINT)
        call.expect(pexpect.EOF)
        call.close()
        assert call.exitstatus == 130
        register = pexpect.spawn(SIPCLI[0], [*SIPCLI[1:], "register", "--from", "a@example.test", "--proxy",
                                             f"sip:127.0.0.1:{port}", "--local-ip", "127.0.0.1", "--timeout", "3"],
                                 env=env, encoding="utf-8", timeout=15)
        register.expect(rf"no response from the registrar 127\.0\.0\.1:{port};transport=udp yet, 2 s "
                        r"\(gives up after 3 s\)")
        register.expect(pexpect.EOF)
        register.close()
        assert register.exitstatus == 3
    finally:
        silent.close()


def test_help_documents_every_default_wait():
    import subprocess

    from tests.support.sipcli import SIPCLI

    for command, waits in {"call": ("32 s", "30 s"), "record": ("32 s", "30 s"), "chat": ("32 s", "30 s"),
                           "listen": ("30 s",), "register": ("[default: 30",)}.items():
        out = subprocess.run([*SIPCLI, command, "--help"], capture_output=True, text=True, timeout=30).stdout
        flat = " ".join(out.split())
        for wait in waits:
            assert wait in flat, (command, wait)


def test_rtp_ports_come_from_the_given_range(run):
    import re

    listener, uri = listen(run, "--rtp-ports", "41000-41009")
    caller = run("call", uri, *LOOPBACK, "--rtp-ports", "42000-42009", "--trace", "--duration", "0.2")
    assert caller.wait() == 0, caller.stderr()
    assert listener.wait() == 0
    sdps = [e["data"]["data"] for e in caller.find("SIPEngineSIPTrace") if "m=audio " in e["data"]["data"]]
    ours = [int(m) for sdp in sdps if sdp.startswith("INVITE ") for m in re.findall(r"m=audio (\d+)", sdp)]
    theirs = [int(m) for sdp in sdps if sdp.startswith("SIP/2.0 200") for m in re.findall(r"m=audio (\d+)", sdp)]
    assert ours and all(42000 <= port <= 42009 for port in ours), ours
    assert theirs and all(41000 <= port <= 41009 for port in theirs), theirs
