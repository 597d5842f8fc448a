"""Offers from the remote party that the call was not built for, against SIPp: a re-INVITE or UPDATE that adds a
chat line (m=message) and more (video), into `call` (an outgoing audio call) and `listen`, and an answer with more
lines than the offer. The process lives, the proposal is reported and answered as --proposals says, the answer
keeps one line per offered line, and the call ends normally with BYE."""

from __future__ import annotations

import pytest

from tests.support.engine import installed_capabilities
from tests.support.sipcli import SIPCLIProcess
from tests.support.sipp import SIPp

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")


def data(process: SIPCLIProcess, name: str) -> list[dict]:
    return [event["data"] for event in process.find(name)]


def answer_m_lines(peer: SIPp) -> list[str]:
    """The m= lines of the last SDP answer sipcli sent to the peer (a 200 OK with a body)."""
    answers = [message for message in peer.received() if message.startswith("SIP/2.0 200") and "\nm=" in message]
    assert answers, peer.messages()[-3000:]
    return [line.strip() for line in answers[-1].splitlines() if line.startswith("m=")]


def ports(m_lines: list[str]) -> dict[str, int]:
    return {line[2:].split()[0]: int(line.split()[1]) for line in m_lines}


def assert_ended_normally(side: SIPCLIProcess, originator: str) -> None:
    assert side.wait() == 0, side.stderr()[-3000:]
    assert "Assertion" not in side.stderr()
    assert [d["originator"] for d in data(side, "SIPSessionDidEnd")] == [originator]
    assert side.summary["exit_code"] == 0


@pytest.mark.parametrize(("scenario", "args", "accepted", "reason"), [
    ("uas_reinvite_chat", ("--proposals", "reject"), False, "rejected by the application"),
    ("uas_reinvite_chat", ("--proposals", "accept"), False, "rejected by the application"),  # no chat support
    ("uas_reinvite_chat", ("--proposals", "accept", "--add-chat-after", "60"), True, None),
    ("uas_reinvite_chat_video", ("--proposals", "ignore", "--proposal-timeout", "0.3"), False,
     "no decision within 0.3 s"),
    ("uas_reinvite_chat_video", ("--proposals", "accept", "--add-chat-after", "60"), True, None),
])
def test_remote_adds_chat_to_an_outgoing_audio_call(run, sipp, scenario, args, accepted, reason):
    """The crash of issue 10 item 1: the answer to a held re-INVITE re-applied the call setting (one audio
    slot) and pjsua aborted on the two- or three-line answer."""
    peer = sipp(scenario)
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "1.5", *args)
    assert_ended_normally(caller, "local")
    assert peer.wait(10) == 0, peer.output()[-2000:]  # it completes only when our BYE arrived
    assert "BYE sip:" in peer.messages()
    assert [(d["proposer"], d["streams"]) for d in data(caller, "SIPSessionGotStreamProposal")] == \
        [("remote", ["chat"])]
    offered = 3 if scenario.endswith("_video") else 2
    answer = answer_m_lines(peer)
    assert len(answer) == offered, answer
    assert ports(answer)["audio"] != 0
    if offered == 3:
        assert ports(answer)["video"] == 0
    if accepted:
        assert ports(answer)["message"] != 0
        assert [d["proposer"] for d in data(caller, "SIPSessionAcceptedStreamProposal")] == ["remote"]
        assert [d["streams"] for d in data(caller, "SIPSessionGotStreamUpdate")] == [["audio", "chat"]]
    else:
        assert ports(answer)["message"] == 0
        assert [(d["proposer"], d["reason"]) for d in data(caller, "SIPSessionRejectedStreamProposal")] == \
            [("remote", reason)]
        assert not caller.find("SIPSessionGotStreamUpdate")


def test_update_adding_chat_and_video_to_an_outgoing_call(run, sipp):
    """pjsua answers an UPDATE itself (no proposal can be held): the extra lines are declined, the proposal is
    reported as rejected, the call goes on (even when the application would accept chat)."""
    peer = sipp("uas_update_chat_video")
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "1.5", "--add-chat-after", "60")
    assert_ended_normally(caller, "local")
    assert peer.wait(10) == 0, peer.output()[-2000:]
    answer = answer_m_lines(peer)
    assert ports(answer) == {"audio": ports(answer)["audio"], "message": 0, "video": 0} and ports(answer)["audio"]
    assert [(d["proposer"], d["streams"]) for d in data(caller, "SIPSessionGotStreamProposal")] == \
        [("remote", ["chat"])]
    assert [d["reason"] for d in data(caller, "SIPSessionRejectedStreamProposal")] == \
        ["proposed in an offer the engine answers at once (UPDATE): declined"]
    assert not caller.find("SIPSessionGotStreamUpdate")


def test_answer_with_more_lines_than_the_offer(run, sipp):
    peer = sipp("uas_answer_extra_lines")
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "0.5")
    assert_ended_normally(caller, "local")
    assert data(caller, "SIPSessionDidStart")[0]["streams"] == ["audio"]
    assert peer.wait(10) == 0, peer.output()[-2000:]


@pytest.mark.parametrize(("listen_args", "accepted"), [(("--chat",), True), ((), False),
                                                       (("--chat", "--proposals", "reject"), False)])
def test_remote_adds_chat_and_video_to_an_incoming_call(run, sipp, listen_args, accepted):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", *listen_args)
    port = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"].rsplit(":", 1)[1]
    peer = sipp("uac_reinvite_chat_video", f"127.0.0.1:{port}")
    assert peer.wait(15) == 0, peer.output()[-2000:]
    assert_ended_normally(listener, "remote")
    assert [(d["proposer"], d["streams"]) for d in data(listener, "SIPSessionGotStreamProposal")] == \
        [("remote", ["chat"])]
    answer = answer_m_lines(peer)
    assert len(answer) == 3 and ports(answer)["video"] == 0 and ports(answer)["audio"] != 0
    assert (ports(answer)["message"] != 0) is accepted
    decided = "SIPSessionAcceptedStreamProposal" if accepted else "SIPSessionRejectedStreamProposal"
    assert [d["proposer"] for d in data(listener, decided)] == ["remote"]


@pytest.mark.parametrize(("scenario", "event", "reason"), [
    pytest.param("uac_ipv6_offer", "SIPSessionDidFail", "IPv6 media is not supported by this engine",
                 marks=pytest.mark.skipif(installed_capabilities().get("ipv6", False),
                                          reason="the installed engine answers IPv6 media (test_full_engine)")),
    ("uac_no_common_codec", "SIPSessionManagerDidRefuseSession", "no audio codec in common (offered: G729; "),
    pytest.param("uac_chat_only", "SIPSessionManagerDidRefuseSession",
                 "an offer without active audio cannot be taken by this engine (offered: chat)",
                 marks=pytest.mark.skipif(installed_capabilities().get("chat_only_offers", False),
                                          reason="the installed engine takes chat-only offers (test_full_engine)")),
])
def test_listen_refuses_an_offer_it_cannot_take_and_keeps_serving(run, sipp, scenario, event, reason):
    """488 for an IPv6 media address (pjsua2 has no IPv6) or no codec in common: our refusal, reported with its
    real reason, not counted as one of the --count sessions; the next call is answered."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1")
    port = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"].rsplit(":", 1)[1]
    refused = sipp(scenario, f"127.0.0.1:{port}")
    assert refused.wait(10) == 0, refused.output()[-2000:]  # the scenario expects the 488 and ACKs it
    report = listener.wait_for(event)["data"]
    assert report["code"] == 488 and report["reason"].startswith(reason), report
    if event == "SIPSessionDidFail":
        assert report["originator"] == "local"
        assert [d["originator"] for d in data(listener, "SIPSessionDidEnd")] == ["local"]
        assert f"SIP/2.0 488 {reason}" in refused.messages()
    else:
        assert report["caller"].startswith("sipp <sip:sipp@127.0.0.1:") and report["user_agent"] == "SIPp-UAC"
        assert report["streams"] == (["chat"] if scenario == "uac_chat_only" else ["audio"])
        assert ("m=message 2855" if scenario == "uac_chat_only" else "a=rtpmap:18 G729/8000") in report["offer"]
        assert not listener.find("SIPSessionNewIncoming")
    assert listener.process.poll() is None  # still serving
    caller = sipp("uac_hold", f"127.0.0.1:{port}", extra=["-d", "300"])
    assert caller.wait(10) == 0, caller.output()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    assert listener.summary["sessions"] == 1
    assert len(listener.find("SIPSessionDidStart")) == 1


def test_remote_removing_audio_next_to_chat_is_a_stream_update_not_a_hold(run, sipp):
    """The peer keeps the chat and makes the audio a=inactive (sipcli's remove_audio(), the reference client's
    chat-only sessions): the audio stream goes (GotStreamUpdate ["chat"]), nobody put anyone on hold."""
    peer = sipp("uas_chat_then_remove_audio")
    caller = run("call", peer.uri, *LOOPBACK, "--add-chat-after", "0.2", "--duration", "1.5")
    assert_ended_normally(caller, "local")
    assert peer.wait(10) == 0, peer.output()[-2000:]
    assert [d["streams"] for d in data(caller, "SIPSessionGotStreamUpdate")] == [["audio", "chat"], ["chat"]]
    assert not caller.find("SIPSessionGotHoldRequest") and not caller.find("SIPSessionGotUnholdRequest")


def test_chat_declined_with_port_zero_fails_at_once(run, sipp):
    """linphonec answers the chat line with port 0: a failure the moment the answer arrives, exit 1, BYE."""
    peer = sipp("uas_decline_chat")
    chat = run("chat", peer.uri, *LOOPBACK, "--message", "hello", "--timeout", "20")
    assert chat.wait(10) == 1, chat.stderr()[-2000:]
    assert data(chat, "MediaStreamDidFail") == [{"reason": "the remote party declined the chat stream"}]
    # the session fails for that reason, not for the 200 that carried the answer
    assert [(d["originator"], d["code"], d["reason"]) for d in data(chat, "SIPSessionDidFail")] == \
        [("local", 0, "the remote party declined the chat stream")]
    assert chat.summary["reason"] == "the remote party declined the chat stream"
    assert chat.summary["outcome"] == "refused"
    assert peer.wait(10) == 0, peer.output()[-2000:]  # it ends only with our BYE
    assert not chat.find("SIPSessionDidDeliverMessage")


@pytest.mark.parametrize(("codec", "srtp", "rate"), [("PCMA", "mandatory", 8000), ("G722", "disabled", 16000)])
def test_did_start_tells_the_negotiated_codec_rate_and_srtp(run, codec, srtp, rate):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--srtp", srtp)
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--codec", codec, "--srtp", srtp, "--duration", "0.3")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    for side in (caller, listener):
        started = data(side, "SIPSessionDidStart")[0]
        assert (started["audio_codec"], started["audio_sample_rate"], started["audio_srtp_active"]) == \
            (codec, rate, srtp == "mandatory"), started


def test_listen_without_chat_declines_a_chat_only_offer(run, tmp_path):
    """sipcli's chat-only offer (an inactive audio line next to m=message) reaches a listener without --chat:
    declined with 603, a refusal (exit 1 with the code), not a failed accept() (exit 4)."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    chat = run("chat", uri, *LOOPBACK, "--message", "hello", config="chat")
    assert chat.wait() == 1 and chat.summary["code"] == 603, chat.stderr()[-2000:]
    assert listener.wait() == 1, listener.stderr()[-2000:]
    assert listener.summary["outcome"] == "refused" and listener.summary["code"] == 603
    assert data(listener, "SIPSessionNewIncoming")[0]["streams"] == ["chat"]
    assert [d["originator"] for d in data(listener, "SIPSessionDidEnd")] == ["local"]


def test_dtmf_info_refused_by_the_peer_fails_the_job(run, sipp):
    peer = sipp("uas_info_500")
    caller = run("call", peer.uri, *LOOPBACK, "--dtmf", "5", "--dtmf-info", "--dtmf-delay", "0.2", "--duration", "1")
    assert caller.wait() == 1, caller.stderr()[-2000:]
    (refused,) = data(caller, "SIPSessionDidNotSendDTMF")
    assert (refused["digit"], refused["code"], refused["reason"]) == ("5", 500, "Server Internal Error")
    assert caller.summary["outcome"] == "refused" and caller.summary["code"] == 500
    assert [d["originator"] for d in data(caller, "SIPSessionDidEnd")] == ["local"]
    assert peer.wait(10) == 0, peer.output()[-2000:]  # INFO refused, then our BYE


def test_dtmf_info_accepted_is_no_failure(run):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--expect-dtmf", "12")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--dtmf", "12", "--dtmf-info", "--dtmf-delay", "0.2", "--duration", "1.2")
    assert caller.wait() == 0, caller.stderr()[-2000:]
    assert listener.wait() == 0, listener.stderr()[-2000:]
    assert not caller.find("SIPSessionDidNotSendDTMF")
    assert [(d["digit"], d["method"]) for d in data(listener, "SIPSessionGotDTMF")] == [("1", "info"), ("2", "info")]


def test_re_offer_after_a_remote_added_chat_keeps_the_sessions_lines(run, sipp):
    """The chat line the peer added is no audio slot to pjsua: our later re-offer (removing the chat) must not
    ask pjsua for a second audio slot, which it would add as a third, active m=audio line."""
    peer = sipp("uas_reinvite_chat_then_removal")
    caller = run("call", peer.uri, *LOOPBACK, "--proposals", "accept", "--add-chat-after", "0.8",
                 "--remove-chat-after", "1.2", "--duration", "2")
    assert_ended_normally(caller, "local")
    assert peer.wait(10) == 0, peer.output()[-2000:]
    assert [d["streams"] for d in data(caller, "SIPSessionGotStreamUpdate")] == [["audio", "chat"], ["audio"]]
    offers = [message for message in peer.received() if message.startswith("INVITE ") and "\nm=" in message]
    re_offer = [line.split()[0] + " " + line.split()[1] for line in offers[-1].splitlines() if line.startswith("m=")]
    assert len(offers) == 2 and [line.split()[0] for line in re_offer] == ["m=audio", "m=message"], re_offer
    assert re_offer[1] == "m=message 0"


@pytest.mark.skipif(installed_capabilities().get("sdp_buffer", 0) >= 8192,
                    reason="the installed engine's SDP buffer holds the answer")
def test_re_invite_whose_answer_pjsua2_cannot_print_is_refused_not_fatal(run, sipp):
    """Sixteen lines: the offer fits pjsua2's 1024-byte SDP print buffer, pjsua's answer does not, so the held
    proposal can only get a 488; the reason says so, and the call goes on to a normal end."""
    peer = sipp("uas_reinvite_many_lines")
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "1.5")
    assert_ended_normally(caller, "local")
    assert peer.wait(10) == 0, peer.output()[-2000:]
    assert [(d["proposer"], d["streams"]) for d in data(caller, "SIPSessionGotStreamProposal")] == \
        [("remote", ["chat"])]
    size = installed_capabilities()["sdp_buffer"]
    assert [d["reason"] for d in data(caller, "SIPSessionRejectedStreamProposal")] == \
        [f"refused with 488: the answer exceeds the engine's {size}-byte SDP buffer"]
    assert any(message.startswith("SIP/2.0 488") for message in peer.received())
