"""Hold with SRTP (SDES): an unusable answer to the hold re-INVITE fails the call, it is never swallowed."""

from __future__ import annotations

import pytest

from tests.support.sipp import start_sipp

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


@pytest.fixture
def sipp(tmp_path):
    started = []

    def start(scenario: str):
        process = start_sipp(scenario, tmp_path / "sipp")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def holds(side) -> list[tuple[str, str]]:
    return [(event["name"], event["data"]["originator"]) for event in side.events
            if event["name"] in ("SIPSessionGotHoldRequest", "SIPSessionGotUnholdRequest")]


def test_an_unusable_answer_to_the_hold_fails_the_call(run, sipp):
    peer = sipp("uas_srtp_bad_key")
    caller = run("call", peer.uri, *LOOPBACK, "--hold-after", "0.3", "--unhold-after", "5", "--duration", "10")
    assert caller.wait() == 6, caller.stderr()[-2000:]
    assert peer.wait() == 0, peer.output()[-2000:]  # the BYE came at once
    (failure,) = caller.find("MediaStreamDidFail")
    assert failure["sender"] == "session/1/audio"
    assert failure["data"]["reason"].endswith("the answer's SRTP key has 21 bytes (AES_CM_128_HMAC_SHA1_80 needs 30)")
    (session_failure,) = caller.find("SIPSessionDidFail")
    assert session_failure["data"]["originator"] == "local" and session_failure["data"]["reason"] == \
        failure["data"]["reason"]
    assert holds(caller) == []
    names = caller.names()
    assert names.index("MediaStreamDidFail") < names.index("SIPSessionDidFail") < names.index("SIPSessionDidEnd")
    assert caller.summary["outcome"] == "media" and caller.summary["duration"] < 5
    assert "SRTP key has 21 bytes" in caller.summary["reason"]
