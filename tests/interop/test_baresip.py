"""sipcli against a real baresip UA (Debian's baresip-core 1.0) on loopback, seen from baresip's side too.

baresip runs with one local account that never registers, PCMU/PCMA, a WAV tone as its microphone (`aufile`) and
the `sndfile` filter writing what it decoded to a WAV; the test drives it and reads its UA events over ctrl_tcp
(tests/support/baresip.py). What baresip 1.0 does differently from a newer one, as measured here:
- It has no file player (aufile is a source only): what it hears is its sndfile dump, and that dump ends at the
  call's first re-INVITE (also between two baresip 1.0), so after a hold what baresip hears is not checked.
- `mediaenc=srtp-mand` answers only RTP/SAVP offers: sipcli's `--srtp optional` (best effort: RTP/AVP with
  a=crypto) gets 488 from it, as does `--srtp mandatory` from a baresip without mediaenc; `mediaenc=srtp` (best
  effort) takes both.
- Its ctrl_tcp reports a BYE from the peer as CALL_CLOSED "Connection reset by peer".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, sine_wav
from tests.support.baresip import BARESIP, Baresip
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

if not BARESIP.exists():
    pytest.skip(f"{BARESIP} is missing (Debian package baresip-core)", allow_module_level=True)
pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
BARESIP_TONE = 1000
SIPCLI_TONE = 600
CODECS = {"PCMU", "PCMA"}  # all this baresip has (g711.so)
CALL_STATES = {"CALL_INCOMING", "CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED", "CALL_CLOSED"}


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """start(mediaenc=None) runs a baresip that auto-answers and sends a BARESIP_TONE tone (20 s)."""
    started: list[Baresip] = []
    tone = sine_wav(tmp_path / "baresip-tone.wav", BARESIP_TONE, seconds=20, rate=8000)

    def start(mediaenc: str | None = None) -> Baresip:
        peer = Baresip(tmp_path / f"baresip{len(started)}", tone, mediaenc=mediaenc)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def sipcli_tone(tmp_path: Path) -> Path:
    return sine_wav(tmp_path / "sipcli-tone.wav", SIPCLI_TONE, seconds=3)


def listener(run, *args: str):
    """`sipcli listen` for one session on a free port, once it takes calls; its URI."""
    port = free_port()
    process = run("listen", "--port", str(port), *LOOPBACK, "--auto-answer", "--count", "1", *args)
    process.wait_for("SIPCLIListenDidStart")
    return process, f"sip:sipcli@127.0.0.1:{port}"


def wait_for_audio(side, packets: int, timeout: float = 10.0) -> dict:
    """The first periodic SIPSessionGotAudioStatistics (--stats-interval) that counts `packets` more RTP packets
    received and sent than the first one printed from now on."""
    seen = len(side.find("SIPSessionGotAudioStatistics"))
    first = side.wait_for_count("SIPSessionGotAudioStatistics", seen + 1, timeout)[-1]["data"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += 1
        latest = side.wait_for_count("SIPSessionGotAudioStatistics", seen + 1, timeout)[-1]["data"]
        if min(latest["packets_received"] - first["packets_received"],
               latest["packets_sent"] - first["packets_sent"]) >= packets:
            return latest
    raise AssertionError(f"fewer than {packets} RTP packets each way within {timeout} s: {first} then {latest}")


def assert_two_way_audio(peer: Baresip, recording: Path) -> None:
    assert dominant_frequency(recording) == BARESIP_TONE
    assert dominant_frequency(peer.heard()) == SIPCLI_TONE


def test_call_to_baresip_exchanges_audio_both_ways(run, baresip, sipcli_tone, tmp_path):
    peer = baresip()
    heard = tmp_path / "heard.wav"
    caller = run("call", peer.uri, *LOOPBACK, "--play", str(sipcli_tone), "--record", str(heard), "--duration", "2")
    assert caller.wait(20) == 0, caller.stderr()[-2000:]
    (started,) = caller.find("SIPSessionDidStart")
    codec = started["data"]["audio_codec"]
    assert codec in CODECS and started["data"]["audio_srtp_active"] is False
    assert caller.summary["audio_received"] is True and caller.summary["duration"] >= 2
    assert peer.wait_for("CALL_CLOSED")[0]["param"] == "Connection reset by peer"  # baresip 1.0's word for a BYE
    assert [kind for kind in peer.types() if kind in CALL_STATES] == ["CALL_ESTABLISHED", "CALL_CLOSED"], peer.types()
    assert re.search(rf"^audio: Set audio decoder: {codec} 8000Hz", peer.log(), re.MULTILINE), peer.log()
    assert_two_way_audio(peer, heard)


def test_baresip_sends_rfc4733_dtmf_and_hangs_up(run, baresip):
    peer = baresip()
    callee, uri = listener(run, "--expect-dtmf", "123#")
    peer.command("dial", uri)
    peer.wait_for("CALL_ESTABLISHED")
    callee.wait_for("SIPSessionDidStart")
    peer.command("sndcode", "123#")
    digits = callee.wait_for_count("SIPSessionGotDTMF", 4)
    assert [(d["data"]["digit"], d["data"]["method"]) for d in digits] == [
        ("1", "rfc2833"), ("2", "rfc2833"), ("3", "rfc2833"), ("#", "rfc2833")]
    peer.command("hangup")
    assert callee.wait(15) == 0, callee.stderr()[-2000:]
    assert callee.find("SIPSessionDidEnd")[0]["data"]["originator"] == "remote"
    assert callee.summary["sessions"] == 1
    assert peer.wait_for("CALL_CLOSED")[0]["direction"] == "outgoing"


@pytest.mark.parametrize("method", [(), ("--dtmf-info",)], ids=["rfc4733", "info"])
def test_sipcli_sends_dtmf_that_baresip_reports(run, baresip, method):
    peer = baresip()
    caller = run("call", peer.uri, *LOOPBACK, "--dtmf", "123#", *method, "--dtmf-delay", "0.2", "--duration", "2")
    assert caller.wait(20) == 0, caller.stderr()[-2000:]
    assert [e["data"]["digit"] for e in caller.find("SIPCLIDidSendDTMF")] == list("123#")
    assert not caller.find("SIPSessionDidNotSendDTMF")
    started = peer.wait_for("CALL_DTMF_START", 4)
    assert [e["param"] for e in started] == list("123#")
    assert len(peer.find("CALL_DTMF_END")) == 4


def test_srtp_call_to_baresip_that_requires_it(run, baresip, sipcli_tone, tmp_path):
    peer = baresip("srtp-mand")
    heard = tmp_path / "heard.wav"
    caller = run("call", peer.uri, *LOOPBACK, "--srtp", "mandatory", "--play", str(sipcli_tone),
                 "--record", str(heard), "--duration", "2")
    assert caller.wait(20) == 0, caller.stderr()[-2000:]
    assert caller.find("SIPSessionDidStart")[0]["data"]["audio_srtp_active"] is True
    peer.wait_for("CALL_CLOSED")
    assert peer.find("CALL_MENC")[0]["param"] == "0,audio,AES_CM_128_HMAC_SHA1_80"
    assert "srtp: audio: SRTP is Enabled" in peer.log()
    assert_two_way_audio(peer, heard)


def test_srtp_call_from_baresip_that_requires_it(run, baresip, sipcli_tone, tmp_path):
    peer = baresip("srtp-mand")
    callee, uri = listener(run, "--srtp", "mandatory", "--play", str(sipcli_tone), "--record", str(tmp_path / "rec"),
                           "--expect-audio", "--stats-interval", "0.25")
    peer.command("dial", uri)
    peer.wait_for("CALL_ESTABLISHED")
    assert callee.wait_for("SIPSessionDidStart")["data"]["audio_srtp_active"] is True
    assert peer.find("CALL_MENC")[0]["param"] == "0,audio,AES_CM_128_HMAC_SHA1_80"
    peer.wait_for("CALL_RTPESTAB")  # baresip decrypted sipcli's first packet
    wait_for_audio(callee, 75)
    peer.command("hangup")
    assert callee.wait(15) == 0, callee.stderr()[-2000:]
    (recording,) = (tmp_path / "rec").iterdir()
    assert_two_way_audio(peer, recording)


@pytest.mark.parametrize("srtp", ["mandatory", "optional"])
def test_srtp_call_to_baresip_that_offers_it_best_effort(run, baresip, srtp):
    peer = baresip("srtp")
    caller = run("call", peer.uri, *LOOPBACK, "--srtp", srtp, "--duration", "0.5")
    assert caller.wait(20) == 0, caller.stderr()[-2000:]
    assert caller.find("SIPSessionDidStart")[0]["data"]["audio_srtp_active"] is True
    assert peer.wait_for("CALL_MENC")[0]["param"] == "0,audio,AES_CM_128_HMAC_SHA1_80"


@pytest.mark.parametrize(("mediaenc", "srtp"), [("srtp-mand", "optional"), ("srtp-mand", "disabled"),
                                                (None, "mandatory")])
def test_srtp_mismatch_with_baresip_is_refused_with_488(run, baresip, mediaenc, srtp):
    peer = baresip(mediaenc)
    caller = run("call", peer.uri, *LOOPBACK, "--srtp", srtp, "--duration", "1")
    assert caller.wait(20) == 1, caller.stderr()[-2000:]
    assert caller.summary["code"] == 488
    assert not peer.find("CALL_ESTABLISHED")


def test_hold_and_resume_from_baresip(run, baresip):
    peer = baresip()
    callee, uri = listener(run, "--stats-interval", "0.25")
    peer.command("dial", uri)
    peer.wait_for("CALL_ESTABLISHED")
    callee.wait_for("SIPSessionDidStart")
    peer.command("hold")
    assert callee.wait_for("SIPSessionGotHoldRequest")["data"]["originator"] == "remote"
    peer.command("resume")
    assert callee.wait_for("SIPSessionGotUnholdRequest")["data"]["originator"] == "remote"
    wait_for_audio(callee, 25)  # the call survives: RTP flows both ways again after the unhold
    assert not callee.find("SIPSessionDidEnd") and not peer.find("CALL_CLOSED")
    peer.command("hangup")
    assert callee.wait(15) == 0, callee.stderr()[-2000:]
    assert callee.find("SIPSessionDidEnd")[0]["data"]["originator"] == "remote"
    assert [e["data"]["state"] for e in callee.find("SIPSessionChangedState")][-1] == "TERMINATED"
