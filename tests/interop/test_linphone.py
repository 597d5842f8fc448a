"""sipcli against a real linphonec (Debian's linphone-cli 5.1) on loopback, from linphonec's side too.

What linphonec 5.1 does that these tests meet (measured here):
- it answers an MSRP chat offer with the chat line refused (`m=message 0`): sipcli reports the chat declined
  and hangs up (exit 1);
- it offers IPv6 media (`c=IN IP6`) when the host has an IPv6 address and `ipv6 enable` is on, even to an IPv4
  SIP peer: the PyPI engine refuses that offer with 488 (README, "Chat");
- its `chat` command drops the port of a `sip:user@host:port` target, so its pager-mode MESSAGE reaches a
  sipcli listener through a proxy (kamailio) where sipcli is registered;
- it prints a received MESSAGE's text and the RFC 4733 digits it receives; a line of digits typed during a
  call sends them as RFC 4733 events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, sine_wav
from tests.support.engine import missing
from tests.support.kamailio import registrar
from tests.support.linphone import LINPHONEC, Linphonec

pytestmark = [pytest.mark.peers,
              pytest.mark.skipif(LINPHONEC is None, reason="linphonec is not installed (Debian package linphone-cli)")]

LOOPBACK = ("--local-ip", "127.0.0.1")
DECLINED = "the remote party declined the chat stream"


def host_has_ipv6_address() -> bool:
    """Whether an interface has a global IPv6 address (linphonec then offers IPv6 media)."""
    with open("/proc/net/if_inet6") as table:
        return any(fields[3] == "00" for fields in (line.split() for line in table) if fields[5] != "lo")


@pytest.fixture
def linphonec(tmp_path):
    """start(**options) runs a Linphonec (tests/support/linphone.py) in its own directory; stopped at teardown."""
    started: list[Linphonec] = []

    def start(**options) -> Linphonec:
        peer = Linphonec(tmp_path / f"linphonec{len(started)}", **options)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()
    for peer in started:
        # Every target is an IP literal or goes through a loopback proxy: a name lookup would leave the machine.
        assert "DNS resolution" not in (peer.workdir / "linphonec.err").read_text(errors="replace")


def traced(process, direction: str, start: str) -> list[str]:
    return [event["data"]["data"] for event in process.find("SIPEngineSIPTrace")
            if event["data"]["direction"] == direction and event["data"]["data"].startswith(start)]


def test_call_to_auto_answering_linphonec_exchanges_audio_and_dtmf(run, linphonec, tmp_path):
    """Each side hears the other's tone (linphonec plays and records WAV files), and linphonec reports the
    RFC 4733 digits sipcli sent."""
    peer = linphonec(play=sine_wav(tmp_path / "1000.wav", 1000, 3, rate=8000), record=tmp_path / "peer.wav")
    heard = tmp_path / "heard.wav"
    caller = run("call", peer.uri, *LOOPBACK, "--duration", "2", "--record", str(heard), "--timeout", "10",
                 "--play", str(sine_wav(tmp_path / "440.wav", 440, 3, rate=8000)), "--dtmf", "12#",
                 "--dtmf-delay", "0.3")
    assert caller.wait(20) == 0, caller.stderr()[-2000:]
    started = caller.wait_for("SIPSessionDidStart")["data"]
    assert started["audio_codec"] in ("PCMU", "PCMA")  # G722 is off in linphonec's defaults, Opus not in the wheel
    assert caller.summary["dtmf_sent"] == "12#" and caller.summary["audio_received"] is True
    call = peer.wait_for(r"^Receiving new incoming call from (sip:\S+), assigned id (\d+)")
    assert call[1].endswith("@127.0.0.1")
    for digit in "12#":
        peer.wait_for(rf"^Receiving tone {digit} from {call[1]}$")
    peer.wait_for(rf"^Call {call[2]} with {call[1]} ended \(No error\)\.$")  # sipcli's BYE
    assert abs(dominant_frequency(heard) - 1000) <= 20
    assert abs(dominant_frequency(tmp_path / "peer.wav") - 440) <= 20


def test_linphonec_calls_listen_and_sends_dtmf(run, linphonec, tmp_path):
    """linphonec calls `sipcli listen`, plays its file and sends two digits; it hangs up; listen counts it."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--expect-dtmf", "4*",
                   "--record", str(tmp_path / "recordings"), "--timeout", "30")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    peer = linphonec(auto_answer=False, play=sine_wav(tmp_path / "1000.wav", 1000, 3, rate=8000))
    peer.send(f"call {uri}")
    peer.wait_for(rf"^Call (\d+) with {uri} connected\.$")
    assert listener.wait_for("SIPSessionNewIncoming")["data"]["remote_uri"] == "sip:linphone@127.0.0.1"
    listener.wait_for("SIPSessionDidStart")
    peer.send("4")
    listener.wait_for_count("SIPSessionGotDTMF", 1)
    peer.send("*")
    digits = listener.wait_for_count("SIPSessionGotDTMF", 2)
    assert [(d["data"]["digit"], d["data"]["method"]) for d in digits] == [("4", "rfc2833"), ("*", "rfc2833")]
    peer.send("terminate")
    peer.wait_for(rf"^Call \d+ with {uri} ended \(No error\)\.$")
    assert listener.wait(10) == 0, listener.stderr()[-2000:]
    assert listener.wait_for("SIPSessionDidEnd")["data"]["originator"] == "remote"
    assert listener.summary["sessions"] == 1
    recording = listener.wait_for("SIPSessionDidStopRecordingAudio")["data"]["file_name"]
    assert abs(dominant_frequency(Path(recording)) - 1000) <= 20


@pytest.mark.skipif(not host_has_ipv6_address(), reason="linphonec offers IPv6 media only when the host has an "
                                                        "IPv6 address")
def test_linphonec_ipv6_media_offer_is_refused_cleanly_and_listen_keeps_serving(run, linphonec):
    """linphonec with `ipv6 enable` offers `c=IN IP6 <the host's address>` to an IPv4 SIP peer. The PyPI engine
    has no IPv6: listen refuses it with 488 (SIPSessionDidFail, originator local: README), does not count it and
    answers linphonec's next call once `ipv6 disable` made it offer IPv4. An engine with IPv6 answers it."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1", "--timeout", "30", "--trace")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    peer = linphonec(auto_answer=False, ipv6=True)
    peer.send(f"call {uri}")
    offer = listener.wait_for("SIPSessionNewIncoming")
    assert any("\nc=IN IP6 " in invite for invite in traced(listener, "incoming", "INVITE "))
    if missing("ipv6"):
        peer.wait_for(rf"^Call 1 with {uri} error\.$")
        failure = listener.wait_for("SIPSessionDidFail")
        failed = failure["data"]
        assert (failed["originator"], failed["code"], failed["reason"]) == \
            ("local", 488, "IPv6 media is not supported by this engine")
        assert failure["sender"] == offer["sender"] and listener.process.poll() is None
        peer.command("ipv6 disable", r"ipv6 use disabled")
        peer.send(f"call {uri}")
    peer.wait_for(rf"^Call (\d+) with {uri} connected\.$")
    listener.wait_for("SIPSessionDidStart")
    peer.send("terminate")
    assert listener.wait(10) == 0, listener.stderr()[-2000:]
    assert listener.summary["sessions"] == 1


def test_chat_to_linphonec_is_declined_and_hung_up(run, linphonec):
    """linphonec answers the chat line with port 0: exit 1 with the README's reason, and a BYE it accepts."""
    peer = linphonec()
    chat = run("chat", peer.uri, *LOOPBACK, "--message", "hello", "--timeout", "10", "--trace")
    assert chat.wait(20) == 1, chat.stderr()[-2000:]
    assert chat.summary["outcome"] == "refused" and chat.summary["reason"] == DECLINED
    assert [event["data"]["reason"] for event in chat.find("MediaStreamDidFail")] == [DECLINED]
    failed = chat.wait_for("SIPSessionDidFail")["data"]
    assert (failed["originator"], failed["code"], failed["reason"]) == ("local", 0, DECLINED)
    answer = next(r for r in traced(chat, "incoming", "SIP/2.0 200") if "INVITE" in r.split("\r\n\r\n")[0])
    assert "\nm=message 0 " in answer
    assert traced(chat, "outgoing", "BYE ") and any("BYE" in r for r in traced(chat, "incoming", "SIP/2.0 200"))
    assert not chat.find("SIPSessionDidDeliverMessage")
    peer.wait_for(r"^Call (\d+) with sip:\S+@127\.0\.0\.1 ended \(No error\)\.$")


def test_message_to_linphonec_is_printed(run, linphonec):
    peer = linphonec()
    sender = run("message", peer.uri, "hello linphone", *LOOPBACK, "--timeout", "10")
    assert sender.wait(15) == 0, sender.stderr()[-2000:]
    assert sender.wait_for("SIPMessageDidSucceed")["data"]["code"] == 200
    peer.wait_for(r"^Message received from sip:\S+@127\.0\.0\.1: hello linphone$")


def test_linphonec_chat_reaches_listen_through_a_proxy(run, linphonec, tmp_path):
    """linphonec's `chat` (pager mode) to bob@example.test through kamailio (it authenticates as alice) reaches
    the registered `sipcli listen --messages 1` with its body; no name is ever looked up."""
    (tmp_path / "kamailio").mkdir()
    proxy = registrar(tmp_path / "kamailio")
    try:
        listener = run("listen", "--from", "bob@example.test", "--proxy", proxy.proxy("udp"), "--password-env", "PW",
                       "--messages", "1", *LOOPBACK, "--timeout", "20", env={"PW": proxy.users["bob"]})
        listener.wait_for("SIPCLIListenDidStart", 15)
        peer = linphonec(proxy=f"sip:127.0.0.1:{proxy.udp_port}", identity="sip:alice@example.test",
                         password=proxy.users["alice"])
        peer.send("chat sip:bob@example.test hello from linphone")
        got = listener.wait_for("SIPEngineGotMessage", 10)["data"]
        assert (got["body"], got["content_type"]) == ("hello from linphone", "text/plain")
        assert got["from_header"].startswith("<sip:alice@example.test>")
        assert listener.wait(10) == 0, listener.stderr()[-2000:]
    finally:
        proxy.stop()
