"""Hold and unhold with SRTP (SDES) against peers that re-key with new crypto tags, and unusable answers.

The peers: SIPp scenarios that answer (or send) re-INVITEs with a crypto tag other than the one offered and a
fresh key, as the reference client sip-session3 does; an answer with a broken key or a tag never offered; another
sipcli with SRTP mandatory, whose audio is recorded after the unhold.
"""

from __future__ import annotations

import re
import wave
from datetime import datetime
from pathlib import Path

import pytest

from sipcli.wav import read_wav
from tests.support.audio import dominant_frequency, rms, sine_wav

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
_CRYPTO = re.compile(r"^a=crypto:(\d+) (\S+) inline:(\S+)", re.MULTILINE)


def holds(side) -> list[tuple[str, str]]:
    return [(event["name"], event["data"]["originator"]) for event in side.events
            if event["name"] in ("SIPSessionGotHoldRequest", "SIPSessionGotUnholdRequest")]


def sent_invites(side) -> list[str]:
    """The INVITEs side sent, in order, retransmissions left out."""
    invites: dict[str, str] = {}
    for event in side.find("SIPEngineSIPTrace"):
        data = event["data"]["data"]
        if event["data"]["direction"] == "outgoing" and data.startswith("INVITE "):
            invites.setdefault(re.search(r"^CSeq: *(\d+)", data, re.MULTILINE | re.IGNORECASE).group(1), data)
    return list(invites.values())


def test_hold_and_unhold_toward_a_peer_that_answers_new_crypto_tags(run, sipp):
    peer = sipp("uas_srtp_rekey")
    caller = run("call", peer.uri, *LOOPBACK, "--trace", "--hold-after", "0.3", "--unhold-after", "0.8",
                 "--duration", "1.3")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert peer.wait() == 0, peer.output()[-2000:]  # it saw the hold and unhold re-INVITEs, then the BYE
    assert holds(caller) == [("SIPSessionGotHoldRequest", "local"), ("SIPSessionGotUnholdRequest", "local")]
    assert not caller.find("MediaStreamDidFail") and not caller.find("SIPSessionDidFail")
    assert caller.summary["exit_code"] == 0 and caller.summary["duration"] >= 1.3
    first, hold, unhold = sent_invites(caller)
    assert offered_suites(first) == [[("1", "AES_CM_128_HMAC_SHA1_80"), ("2", "AES_CM_128_HMAC_SHA1_32")]]
    for offer in (hold, unhold):
        # the key in use, under both tags: the peer's tag 2 names it
        (key,) = {(suite, key) for _, suite, key in _CRYPTO.findall(offer)}
        assert [tag for tag, _, _ in _CRYPTO.findall(offer)] == ["1", "2"]
        assert key == next((suite, key) for _, suite, key in _CRYPTO.findall(first)
                           if suite == "AES_CM_128_HMAC_SHA1_80")
    assert "a=sendonly" in hold and "a=sendonly" not in unhold


@pytest.mark.parametrize(("crypto", "problem"), [
    ("1 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MGFiY2RlZmdoaWpr",
     "the answer's SRTP key has 21 bytes (AES_CM_128_HMAC_SHA1_80 needs 30)"),
    # a well-formed key under a tag above the two offered: pjmedia refuses it (ESDPINCRYPTOTAG)
    ("3 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0",
     "the answer's crypto tag 3 was not offered (offered tags: 1, 2)"),
], ids=["short-key", "tag-3"])
def test_an_unusable_answer_to_the_hold_fails_the_call(run, sipp, crypto, problem):
    peer = sipp("uas_srtp_bad_key", extra=("-set", "hold_crypto", crypto))
    caller = run("call", peer.uri, *LOOPBACK, "--hold-after", "0.3", "--unhold-after", "5", "--duration", "10")
    assert caller.wait() == 6, caller.stderr()[-2000:]
    assert peer.wait() == 0, peer.output()[-2000:]  # the BYE came at once
    (failure,) = caller.find("MediaStreamDidFail")
    assert failure["sender"] == "session/1/audio"
    assert failure["data"]["reason"].endswith(problem)
    (session_failure,) = caller.find("SIPSessionDidFail")
    assert session_failure["data"]["originator"] == "local" and session_failure["data"]["reason"] == \
        failure["data"]["reason"]
    assert holds(caller) == []
    names = caller.names()
    assert names.index("MediaStreamDidFail") < names.index("SIPSessionDidFail") < names.index("SIPSessionDidEnd")
    assert caller.summary["outcome"] == "media" and caller.summary["duration"] < 5
    assert problem in caller.summary["reason"]


def test_a_peer_rekeying_in_its_own_reinvites_holds_and_unholds(run, sipp):
    peer = sipp("uas_srtp_remote_rekey")
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "2")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert peer.wait() == 0, peer.output()[-2000:]  # each 200 OK answered the offered tags 7 and 9
    assert holds(caller) == [("SIPSessionGotHoldRequest", "remote"), ("SIPSessionGotUnholdRequest", "remote")]
    assert not caller.find("MediaStreamDidFail") and not caller.find("SIPSessionDidFail")


def heard_after_unhold(caller, recording: Path, directory: Path, skip: float = 0.3) -> Path:
    """The second of the caller's recording that starts skip seconds after SIPSessionGotUnholdRequest, as a WAV."""
    def seconds(name: str) -> float:
        return datetime.fromisoformat(caller.wait_for(name)["time"].replace("Z", "+00:00")).timestamp()

    offset = seconds("SIPSessionGotUnholdRequest") - seconds("SIPSessionDidStartRecordingAudio") + skip
    audio = read_wav(recording, rate=8000)
    after = audio.samples[int(offset * audio.rate):int((offset + 1.0) * audio.rate)]
    assert len(after) == audio.rate
    segment = directory / "after-unhold.wav"
    with wave.open(str(segment), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.rate)
        wav.writeframes(after.tobytes())
    return segment


def test_srtp_mandatory_between_two_sipcli_audio_flows_after_unhold(run, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 1000, seconds=1, rate=8000)
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--srtp", "mandatory", "--play", str(tone))
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    heard = tmp_path / "heard.wav"
    caller = run("call", uri, *LOOPBACK, "--trace", "--srtp", "mandatory", "--hold-after", "0.8", "--unhold-after",
                 "1.6", "--duration", "3.2", "--record", str(heard), "--expect-audio")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    assert holds(caller) == [("SIPSessionGotHoldRequest", "local"), ("SIPSessionGotUnholdRequest", "local")]
    assert holds(listener) == [("SIPSessionGotHoldRequest", "remote"), ("SIPSessionGotUnholdRequest", "remote")]
    _, hold, unhold = sent_invites(caller)
    assert all("RTP/SAVP" in offer and _CRYPTO.search(offer) for offer in (hold, unhold))
    segment = heard_after_unhold(caller, heard, tmp_path)  # the listener's tone, through the re-keyed SRTP
    assert rms(segment) > 1000
    assert dominant_frequency(segment) == pytest.approx(1000, abs=15)


UNHOLD_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"  # uas_srtp_rekey's key in its answer to the unhold (tag 2)


@pytest.mark.parametrize("key", [UNHOLD_KEY, "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"], ids=["answered", "stale"])
def test_after_unhold_audio_is_decrypted_with_the_key_the_peer_answered(run, sipp, tmp_path, key):
    """SIPp sends no SRTP itself: the test sends a 1 kHz tone as the peer, with the key of its unhold answer
    (heard) or with the key of its first answer, which the unhold replaced (dropped: silence, exit 6)."""
    pytest.importorskip("pylibsrtp")
    from tests.support.srtp import send_srtp_tone

    peer = sipp("uas_srtp_rekey")
    heard = tmp_path / "heard.wav"
    caller = run("call", peer.uri, *LOOPBACK, "--hold-after", "0.3", "--unhold-after", "0.8", "--duration", "2.8",
                 "--record", str(heard), "--expect-audio")
    caller.wait_for("SIPSessionGotUnholdRequest")
    unhold_offer = peer.messages().rsplit("INVITE sip:", 1)[1]
    port = int(re.search(r"^m=audio (\d+) RTP/SAVP", unhold_offer, re.MULTILINE).group(1))
    send_srtp_tone(("127.0.0.1", port), key, 1000, 1.5)
    code = caller.wait()
    assert peer.wait() == 0, peer.output()[-2000:]
    assert not caller.find("MediaStreamDidFail")
    segment = heard_after_unhold(caller, heard, tmp_path)
    if key == UNHOLD_KEY:
        assert code == 0 and caller.summary["audio_received"] is True, caller.stderr()[-2000:]
        assert rms(segment) > 1000
        assert dominant_frequency(segment) == pytest.approx(1000, abs=15)
    else:
        assert code == 6 and caller.summary["audio_received"] is False
        assert rms(segment) < 50


def offered_suites(offer: str) -> list[list[tuple[str, str]]]:
    """The (tag, suite) crypto lines of each m-line of offer, in order."""
    return [[(tag, suite) for tag, suite, _ in _CRYPTO.findall(section)]
            for section in re.split(r"^m=", offer, flags=re.MULTILINE)[1:]]


def test_a_session_with_chat_offers_the_rfc4568_suites_and_its_chat_works(run):
    """A session that starts with chat offers AES_CM_128_HMAC_SHA1_80 and _32 (tags 1 and 2) on its audio line,
    and its offer fits pjsua2's 1024-byte SDP buffer with the chat line."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--chat", "--echo", "--srtp", "mandatory")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("chat", uri, *LOOPBACK, "--audio", "--trace", "--srtp", "mandatory", "--message", "hello",
                 "--expect-messages", "1")  # stay for the echo
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    first = sent_invites(caller)[0]
    assert "m=message" in first
    assert offered_suites(first) == [[("1", "AES_CM_128_HMAC_SHA1_80"), ("2", "AES_CM_128_HMAC_SHA1_32")], []]
    assert [d["data"]["content"] for d in caller.find("SIPSessionGotMessage")] == ["hello"]  # the echo
    assert caller.wait_for("SIPSessionDidStart")["data"]["streams"] == ["audio", "chat"]
    assert not caller.find("MediaStreamDidFail") and not listener.find("MediaStreamDidFail")


def test_chat_added_to_an_srtp_call_then_hold_and_unhold(run):
    """The call offers the two RFC 4568 suites; the re-INVITE that adds the chat line and the hold and unhold
    re-offers carry the audio key under tags 1 and 2 and keep the chat."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--chat", "--echo", "--srtp", "mandatory")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--trace", "--srtp", "mandatory", "--add-chat-after", "0.2",
                 "--hold-after", "0.6", "--unhold-after", "1", "--chat-message", "after unhold",
                 "--chat-messages-after", "1.4", "--duration", "2")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    first, add_chat, hold, unhold = sent_invites(caller)
    assert offered_suites(first) == [[("1", "AES_CM_128_HMAC_SHA1_80"), ("2", "AES_CM_128_HMAC_SHA1_32")]]
    assert "m=message" in add_chat and "m=message" in hold and "m=message" in unhold
    for offer in (add_chat, hold, unhold):
        (key,) = {(suite, key) for _, suite, key in _CRYPTO.findall(offer)}
        assert [tag for tag, _ in offered_suites(offer)[0]] == ["1", "2"]
        assert key[0] == offered_suites(first)[0][0][1]  # the suite the listener chose, in use
    assert holds(caller) == [("SIPSessionGotHoldRequest", "local"), ("SIPSessionGotUnholdRequest", "local")]
    assert [d["data"]["content"] for d in caller.find("SIPSessionGotMessage")] == ["after unhold"]
    assert not caller.find("MediaStreamDidFail") and not listener.find("MediaStreamDidFail")
