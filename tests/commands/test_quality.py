"""Call quality from real RTP (sipcli to sipcli, clean and through a lossy relay) and the expectations that fail
a job on it; --expect-code against SIPp's busy UAS."""

from __future__ import annotations

import pytest

from tests.support.audio import sine_wav
from tests.support.lossy_path import LossyPath
from tests.support.sipcli import SIPCLIProcess

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
PCMU = ("--codec", "PCMU")


def listen(run, *args: str) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *LOOPBACK, *PCMU, *args)
    return listener, listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]


def final_statistics(side: SIPCLIProcess) -> dict:
    """The final SIPSessionGotAudioStatistics, which comes just before SIPSessionDidEnd."""
    names = side.names()
    ended = names.index("SIPSessionDidEnd")
    assert names[ended - 1] == "SIPSessionGotAudioStatistics", names
    statistics = side.events[ended - 1]["data"]
    assert statistics["final"] is True
    return statistics


def test_clean_call_reports_figures_and_passes_its_expectations(run, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 1000, seconds=1, rate=8000)
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--play", str(tone))
    caller = run("call", uri, *LOOPBACK, *PCMU, "--duration", "3", "--stats-interval", "1", "--expect-mos", "4.2",
                 "--expect-max-loss", "1%", "--expect-max-jitter", "40", "--expect-codec", "pcmu",
                 "--expect-duration-min", "2.5")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    statistics = final_statistics(caller)
    assert statistics["codec"] == "PCMU" and statistics["clock_rate"] == 8000
    # 3 s of a 20 ms tone: about 150 packets of 160 bytes, none lost
    assert 120 <= statistics["packets_received"] <= 160
    assert statistics["bytes_received"] == 160 * statistics["packets_received"]
    assert statistics["packets_lost"] == 0 and statistics["loss_percent"] == 0
    assert statistics["packets_discarded"] == 0 and statistics["packets_duplicated"] == 0
    assert 0 <= statistics["jitter_mean_ms"] <= statistics["jitter_max_ms"] < 40
    assert statistics["rtt_ms"] is None or 0 <= statistics["rtt_ms"] < 50
    assert 4.2 <= statistics["mos"] <= 4.41  # G.711's range in the E-model: R 93.2 at best
    assert "G.107" in statistics["mos_method"] and "G.113" in statistics["codec_impairment_source"]
    periodic = [e["data"] for e in caller.find("SIPSessionGotAudioStatistics") if not e["data"]["final"]]
    assert len(periodic) >= 2
    assert periodic[0]["packets_received"] < periodic[-1]["packets_received"] <= statistics["packets_received"]
    summary = caller.summary
    assert summary["quality"]["mos"] == statistics["mos"] and summary["quality"]["codec"] == "PCMU"
    assert "expectation" not in summary
    heard = final_statistics(listener)  # the caller plays nothing: silence is suppressed, its few packets count
    assert heard["codec"] == "PCMU" and heard["packets_lost"] == 0
    # the listener reads its figures after the BYE: what it sent meanwhile never reached the caller's figures
    assert statistics["packets_received"] <= heard["packets_sent"] <= statistics["packets_received"] + 25


@pytest.fixture
def lossy(request):
    paths: list[LossyPath] = []

    def start(listener_uri: str) -> LossyPath:
        path = LossyPath(int(listener_uri.rsplit(":", 1)[1].split(";")[0]))
        paths.append(path)
        return path

    yield start
    for path in paths:
        path.close()


def test_lossy_path_shows_the_loss_and_a_lower_mos_and_fails_max_loss(run, lossy, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 1000, seconds=1, rate=8000)
    caller_tone = sine_wav(tmp_path / "caller.wav", 440, seconds=1, rate=8000)
    listener, uri = listen(run, "--auto-answer", "--count", "1", "--play", str(tone))
    path = lossy(uri)
    caller = run("call", path.uri, *LOOPBACK, *PCMU, "--play", str(caller_tone), "--duration", "4",
                 "--expect-max-loss", "2%")
    assert caller.wait() == 6, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    summary = caller.summary
    assert summary["outcome"] == "media" and summary["expectation"] == "--expect-max-loss 2%"
    assert "--expect-max-loss 2%" in summary["reason"] and "lost" in summary["reason"]
    for side, direction in ((caller, "to_caller"), (listener, "to_listener")):
        statistics = final_statistics(side)
        dropped, forwarded = path.dropped[direction], path.forwarded[direction]
        assert dropped >= 15  # 4 s at 50 packets/s, every tenth dropped
        # Each side reads its figures at the hang-up, while the relay may still pass the other side's last packets;
        # and pjsua counts a gap only when the packet after it arrives.
        assert forwarded - 25 <= statistics["packets_received"] <= forwarded
        assert dropped - 3 <= statistics["packets_lost"] <= dropped
        # every tenth of the packets up to the last one received: 10 % at most, 10 % - 90/packets at least
        assert 8.5 <= statistics["loss_percent"] <= 10.0
        assert 3.0 <= statistics["mos"] <= 3.7  # G.711 with PLC at 10 % random loss: R about 66
    assert summary["quality"]["loss_percent"] == final_statistics(caller)["loss_percent"]


def test_expect_code_486_against_sipp_busy_passes(run, sipp):
    busy = sipp("uas_busy", calls=3)
    passed = run("call", busy.uri, *LOOPBACK, "--expect-code", "486")
    assert passed.wait() == 0, passed.stderr()[-2000:]
    assert passed.summary["code"] == 486 and passed.summary["outcome"] == "ok"
    assert passed.find("SIPSessionDidFail")[0]["data"]["code"] == 486
    other = run("call", busy.uri, *LOOPBACK, "--expect-code", "603")
    assert other.wait() == 6
    assert other.summary["expectation"] == "--expect-code 603" and other.summary["code"] == 486
    plain = run("call", busy.uri, *LOOPBACK)
    assert plain.wait() == 1 and "expectation" not in plain.summary


def test_answered_call_fails_expect_code_486_and_codec(run):
    listener, uri = listen(run, "--auto-answer", "--count", "2", "--expect-code", "200")
    answered = run("call", uri, *LOOPBACK, *PCMU, "--duration", "0.5", "--expect-code", "486")
    assert answered.wait() == 6
    assert answered.summary["expectation"] == "--expect-code 486"
    wrong_codec = run("call", uri, *LOOPBACK, *PCMU, "--duration", "0.5", "--expect-codec", "GSM")
    assert wrong_codec.wait() == 6
    assert wrong_codec.summary["reason"] == "expectation --expect-codec GSM failed: the codec was PCMU"
    assert listener.wait() == 0


def test_listen_expectations_on_a_busy_listener(run):
    listener, uri = listen(run, "--reject", "busy", "--count", "1", "--expect-code", "486")
    caller = run("call", uri, *LOOPBACK)
    assert caller.wait() == 1
    assert listener.wait() == 0 and listener.summary["sessions"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (("--expect-max-loss", "120%"), "--expect-max-loss"),
    (("--expect-max-loss", "lots"), "--expect-max-loss"),
    (("--expect-mos", "nan"), "--expect-mos"),
    (("--expect-code", "99"), "--expect-code"),
    (("--stats-interval", "0"), "--stats-interval"),
])
def test_bad_expectations_are_usage_errors(run, args, message):
    caller = run("call", "sip:nobody@127.0.0.1:9", *args)
    assert caller.wait() == 2
    assert message in caller.stderr() and len(caller.stderr().strip().splitlines()) == 1
