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
        assert "OPUS is not available" in call.summary["reason"] and "PCMU" in call.summary["reason"]
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
