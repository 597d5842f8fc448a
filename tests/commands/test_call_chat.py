"""Chat added to and removed from a running audio call, sipcli <-> sipcli: stream proposals accepted, rejected
and left undecided, hold/unhold with a chat line, and the streams SIPSessionDidStart lists for a chat-only call."""

from __future__ import annotations

import pytest

from tests.support.audio import sine_wav
from tests.support.sipcli import SIPCLIProcess

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


def listen(run, *args: str) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", *args)
    return listener, listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]


def data(process: SIPCLIProcess, name: str) -> list[dict]:
    return [event["data"] for event in process.find(name)]


def test_chat_added_to_a_call_then_removed_audio_goes_on(run, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 440, seconds=1, rate=8000)
    listener, uri = listen(run, "--chat", "--echo", "--play", str(tone), "--expect-audio")
    caller = run("call", uri, *LOOPBACK, "--play", str(tone), "--add-chat-after", "0.3", "--chat-message", "hello",
                 "--chat-message", "wörld", "--remove-chat-after", "1.5", "--duration", "3", "--expect-audio")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    for side, proposer in ((caller, "local"), (listener, "remote")):
        assert data(side, "SIPSessionDidStart")[0]["streams"] == ["audio"]
        proposals = data(side, "SIPSessionGotStreamProposal")
        assert [(d["proposer"], d["streams"]) for d in proposals] == [(proposer, ["chat"])]
        assert [d["proposer"] for d in data(side, "SIPSessionAcceptedStreamProposal")] == [proposer]
        assert [d["streams"] for d in data(side, "SIPSessionGotStreamUpdate")] == [["audio", "chat"], ["audio"]], \
            side.names()
        assert not side.find("MediaStreamDidFail")
        assert len(side.find("MediaStreamDidEnd")) == 1
        assert side.summary["exit_code"] == 0
    states = [d["state"] for d in data(listener, "SIPSessionChangedState")]
    assert states[:5] == ["INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSED", "ESTABLISHED"]
    assert "PROPOSING" in [d["state"] for d in data(caller, "SIPSessionChangedState")]
    assert [d["content"] for d in data(listener, "SIPSessionGotMessage")] == ["hello", "wörld"]
    assert [d["content"] for d in data(caller, "SIPSessionGotMessage")] == ["hello", "wörld"]  # the echoes
    assert len(data(caller, "SIPSessionDidDeliverMessage")) == 2
    # audio kept flowing after the chat was removed: each side received RTP to the end
    assert caller.summary["audio_received"] and caller.summary["duration"] >= 2.9


def test_hold_and_unhold_keep_the_chat_working(run):
    listener, uri = listen(run, "--chat", "--echo")
    caller = run("call", uri, *LOOPBACK, "--add-chat-after", "0.2", "--hold-after", "0.6", "--unhold-after", "1",
                 "--chat-message", "after unhold", "--chat-messages-after", "1.4", "--duration", "2")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0
    assert [d["originator"] for d in data(listener, "SIPSessionGotHoldRequest")] == ["remote"]
    assert [d["originator"] for d in data(listener, "SIPSessionGotUnholdRequest")] == ["remote"]
    assert [d["content"] for d in data(listener, "SIPSessionGotMessage")] == ["after unhold"]
    assert [d["content"] for d in data(caller, "SIPSessionGotMessage")] == ["after unhold"]
    assert len(data(caller, "SIPSessionDidDeliverMessage")) == 1
    names = caller.names()
    assert names.index("SIPSessionGotUnholdRequest") < names.index("SIPSessionDidDeliverMessage")
    failures = data(caller, "MediaStreamDidFail") + data(listener, "MediaStreamDidFail")
    assert not failures, failures


@pytest.mark.parametrize(("listen_args", "reason"), [
    (("--proposals", "reject"), "rejected by the application"),
    (("--proposals", "ignore", "--proposal-timeout", "0.5"), "no decision within 0.5 s"),
    ((), "rejected by the application"),  # chat proposed to a listener without --chat
])
def test_chat_proposal_rejected_call_goes_on(run, listen_args, reason):
    listener, uri = listen(run, *listen_args)
    caller = run("call", uri, *LOOPBACK, "--add-chat-after", "0.2", "--hold-after", "1.2", "--duration", "1.6",
                 "--expect-audio")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0
    # declined in a 200 OK (chat line port 0): pjsua 2.15.1 cannot take later offers after a 488 to a held re-INVITE
    assert [d["reason"] for d in data(caller, "SIPSessionRejectedStreamProposal")] == ["the answer disabled chat"]
    rejected = data(listener, "SIPSessionRejectedStreamProposal")
    assert [(d["proposer"], d["reason"]) for d in rejected] == [("remote", reason)]
    assert not caller.find("SIPSessionAcceptedStreamProposal") and not caller.find("SIPSessionGotStreamUpdate")
    # the session is sound after the refusal: a later re-INVITE (hold) goes through
    assert [d["originator"] for d in data(listener, "SIPSessionGotHoldRequest")] == ["remote"]
    assert [d["state"] for d in data(listener, "SIPSessionChangedState")][-3:] == \
        ["ESTABLISHED", "TERMINATING", "TERMINATED"]


def test_chat_only_call_did_start_lists_the_chat_on_both_sides(run, tmp_path):
    import json
    import os
    import subprocess

    from tests.support.sipcli import SIPCLI

    listener, uri = listen(run, "--chat")
    result = subprocess.run([*SIPCLI, "chat", uri, *LOOPBACK, "--message", "hi"], capture_output=True, text=True,
                            timeout=20, env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "chat")})
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["data"]["streams"] for e in events if e["name"] == "SIPSessionDidStart"] == [["chat"]]
    assert listener.wait() == 0
    assert data(listener, "SIPSessionDidStart")[0]["streams"] == ["chat"]


def test_call_usage_errors_for_chat_options(run):
    caller = run("call", "sip:bob@127.0.0.1:9", *LOOPBACK, "--remove-chat-after", "1")
    assert caller.wait() == 2
    assert "--remove-chat-after goes with an earlier --add-chat-after" in caller.stderr()
