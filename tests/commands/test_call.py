"""`sipcli call`, `listen`, `record` and `demo` against real peers: another sipcli, SIPp, kamailio."""

from __future__ import annotations

import signal

import pytest

from tests.support.audio import dominant_frequency, sine_wav
from tests.support.engine import installed_capabilities
from tests.support.kamailio import registrar
from tests.support.sipcli import SIPCLIProcess

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


def listen(run, *args: str) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *LOOPBACK, *args)
    ready = listener.wait_for("SIPCLIListenDidStart")
    return listener, ready["data"]["uris"]["udp"]


def test_p2p_call_audio_both_ways_dtmf_and_hold(run, tmp_path):
    caller_tone = sine_wav(tmp_path / "caller.wav", 440, seconds=1, rate=8000)
    listener_tone = sine_wav(tmp_path / "listener.wav", 1000, seconds=1, rate=44100, channels=2)
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--play", str(listener_tone), "--record",
                           str(tmp_path / "calls"), "--expect-dtmf", "159#", "--expect-audio")
    caller = run("call", uri, *LOOPBACK, "--play", str(caller_tone), "--record", str(tmp_path / "heard.wav"),
                 "--dtmf", "159#", "--dtmf-delay", "0.2", "--hold-after", "1.5", "--unhold-after", "2",
                 "--duration", "3", "--expect-audio")
    assert caller.wait() == 0, caller.stderr()
    assert listener.wait() == 0, listener.stderr()
    assert caller.summary["exit_code"] == 0 and listener.summary["exit_code"] == 0
    digits = "".join(event["data"]["digit"] for event in listener.find("SIPSessionGotDTMF"))
    assert digits == "159#"
    for side, originator in ((caller, "local"), (listener, "remote")):
        holds = [e["data"]["originator"] for e in side.find("SIPSessionGotHoldRequest")]
        unholds = [e["data"]["originator"] for e in side.find("SIPSessionGotUnholdRequest")]
        assert holds == [originator] and unholds == [originator], side.names()
    assert dominant_frequency(tmp_path / "heard.wav") == pytest.approx(1000, abs=15)
    (recording,) = (tmp_path / "calls").glob("*.wav")
    assert dominant_frequency(recording) == pytest.approx(440, abs=15)
    assert caller.find("SIPSessionDidEnd")[0]["data"]["originator"] == "local"
    assert listener.find("SIPSessionDidEnd")[0]["data"]["originator"] == "remote"


def test_audio_only_call_and_listen_never_import_msrp(run):
    importtime = {"PYTHONPROFILEIMPORTTIME": "1"}  # every import is listed on stderr
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", env=importtime)
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--duration", "0.2", env=importtime)
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    for side in (caller, listener):
        assert "sipcli.session" in side.stderr()
        assert "sipcli.msrp.connection" not in side.stderr() and "sipcli.chat" not in side.stderr()


def test_listen_rejects_busy(run):
    listener, uri = listen(run, "--reject", "busy", "--count", "1")
    caller = run("call", uri, *LOOPBACK)
    assert caller.wait() == 1
    assert caller.summary["code"] == 486
    failure = caller.find("SIPSessionDidFail")[0]["data"]
    assert {k: failure[k] for k in ("originator", "code", "reason")} == {"originator": "remote", "code": 486,
                                                                          "reason": "Busy Here"}
    assert failure["timestamp"].endswith("Z")
    assert listener.wait() == 0


def test_expect_dtmf_missing_is_exit_6(run):
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--expect-dtmf", "7")
    caller = run("call", uri, *LOOPBACK, "--duration", "0.3")
    assert caller.wait() == 0
    assert listener.wait() == 6
    assert listener.summary["outcome"] == "media"


@pytest.mark.parametrize(("scenario", "args", "exit_code", "expected"), [
    ("uas_answer", ("--duration", "0.2"), 0, "SIPSessionDidStart"),
    ("uas_ring_answer", ("--duration", "0.2"), 0, "SIPSessionGotRingIndication"),
    ("uas_busy", (), 1, "SIPSessionDidFail"),
    ("uas_bye_after", (), 0, "SIPSessionDidEnd"),
    ("uas_no_answer", ("--timeout", "1"), 3, "SIPSessionDidFail"),
])
def test_call_outcomes_against_sipp(run, sipp, scenario, args, exit_code, expected):
    uas = sipp(scenario)
    caller = run("call", uas.uri, *LOOPBACK, *args)
    assert caller.wait() == exit_code, caller.stderr()
    assert caller.summary["exit_code"] == exit_code
    assert caller.find(expected)
    assert uas.wait(10) == 0, uas.output()[-2000:]
    if scenario == "uas_busy":
        assert caller.summary["code"] == 486
    if scenario == "uas_bye_after":
        assert caller.find("SIPSessionDidEnd")[0]["data"]["originator"] == "remote"
        assert caller.summary["duration"] == pytest.approx(2, abs=0.5)
    if scenario == "uas_no_answer":
        assert "CANCEL sip:" in uas.messages()


def test_sipp_sends_rfc2833_dtmf_into_listen(run, sipp):
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--expect-dtmf", "159")
    port = uri.rsplit(":", 1)[1]
    uac = sipp("uac_dtmf", f"127.0.0.1:{port}")
    assert uac.wait(15) == 0, uac.output()[-2000:]
    assert listener.wait() == 0, listener.stderr()
    digits = [event["data"] for event in listener.find("SIPSessionGotDTMF")]
    assert "".join(d["digit"] for d in digits) == "159"
    assert {d["method"] for d in digits} == {"rfc2833"}


def test_sigint_mid_call_sends_bye(run, sipp):
    uas = sipp("uas_answer")
    caller = run("call", uas.uri, *LOOPBACK)
    caller.wait_for("SIPSessionDidStart")
    caller.signal(signal.SIGINT)
    assert caller.wait() == 130
    assert caller.summary["outcome"] == "interrupted"
    assert uas.wait(5) == 0  # the scenario completes only when our BYE arrived
    assert "BYE sip:" in uas.messages()


def test_sigint_while_ringing_sends_cancel(run, sipp):
    uas = sipp("uas_no_answer")
    caller = run("call", uas.uri, *LOOPBACK)
    caller.wait_for("SIPSessionGotRingIndication")
    caller.signal(signal.SIGTERM)
    assert caller.wait() == 130
    assert uas.wait(5) == 0
    assert "CANCEL sip:" in uas.messages()


def test_record_command(run, sipp, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 700, seconds=1, rate=16000)
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--play", str(tone))
    recorder = run("record", uri, str(tmp_path / "out.wav"), *LOOPBACK, "--duration", "1.5")
    assert recorder.wait() == 0, recorder.stderr()
    assert listener.wait() == 0
    assert dominant_frequency(tmp_path / "out.wav") == pytest.approx(700, abs=15)


def test_call_and_listen_registered_through_kamailio(run, tmp_path):
    (tmp_path / "kamailio").mkdir()
    server = registrar(tmp_path / "kamailio")
    try:
        env = {"ALICE_PW": "alice-secret", "BOB_PW": "bob-secret"}
        listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "BOB_PW", "--proxy",
                       server.proxy("udp"), "--auto-answer", "--count", "1", "--expect-dtmf", "42", env=env)
        listener.wait_for("SIPCLIListenDidStart")
        assert "bob" in server.location()
        caller = run("call", "sip:bob@example.test", *LOOPBACK, "--from", "alice@example.test", "--password-env",
                     "ALICE_PW", "--proxy", server.proxy("udp"), "--dtmf", "42", "--dtmf-delay", "0.2",
                     "--duration", "1", "--expect-audio", env=env)
        assert caller.wait() == 0, caller.stderr()
        assert listener.wait() == 0, listener.stderr()
        assert listener.find("SIPAccountRegistrationDidSucceed") and caller.find("SIPAccountRegistrationDidSucceed")
        assert listener.find("SIPAccountRegistrationDidEnd")
    finally:
        server.stop()


def test_malformed_uri_is_a_usage_error(run):
    bad = run("call", "sip:bob@", *LOOPBACK)
    assert bad.wait() == 2


def test_demo(run):
    demo = run("demo", "--duration", "2")
    assert demo.wait(20) == 0, demo.stderr()
    relayed = [event["data"] for event in demo.find("SIPCLIDemoListenerEvent")]
    digits = "".join(e["data"]["digit"] for e in relayed if e["name"] == "SIPSessionGotDTMF")
    assert digits == "1234#"
    assert relayed[-1]["name"] == "SIPCLIDidEnd" and relayed[-1]["data"]["exit_code"] == 0
    assert demo.summary["audio_received"] is True


@pytest.mark.skipif(installed_capabilities().get("max_calls", 4) != 4,
                    reason="asserts the PyPI wheel's four calls (see test_full_engine for 100)")
def test_listen_takes_four_concurrent_calls_and_refuses_the_fifth(run, tmp_path):
    """pjsua2-python is built with PJSUA_MAX_CALLS 4: a fifth concurrent call gets 486 and the listener lives on."""
    import subprocess

    from tests.support.ports import free_port

    listener, uri = listen(run, "--auto-answer", "--duration", "2", "--count", "4")
    target = uri.removeprefix("sip:").split("@", 1)[1]
    uac = subprocess.run(["sipp", "-sn", "uac", target, "-i", "127.0.0.1", "-p", str(free_port("udp")),
                          "-m", "5", "-l", "5", "-r", "50", "-d", "500", "-nostdin", "-timeout", "15",
                          "-trace_err", "-error_file", str(tmp_path / "sipp_errors.log")],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert uac.returncode == 1  # one of the five failed
    assert "SIP/2.0 486" in (tmp_path / "sipp_errors.log").read_text(errors="replace")
    assert listener.wait() == 0, listener.stderr()
    assert len(listener.find("SIPSessionDidStart")) == 4
    refused = listener.find("SIPEngineDidRefuseIncomingCall")  # invisible before: pjsua answers it alone
    assert [event["data"]["code"] for event in refused] == [486]
    assert listener.summary["refused_over_limit"] == 1
