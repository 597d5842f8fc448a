"""The chat stream without an engine: the SDP it writes into pjsua's offers and answers, what it takes from the
peer's SDP, CPIM wrapping, the OTR rule, and which re-INVITE offers count as stream proposals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sipcli.cpim import CPIM_TYPE, decode_cpim, encode_cpim
from sipcli.msrp.connection import MessageReceived
from sipcli.msrp.uri import MSRPURI
from sipcli.notification import NotificationCenter
from sipcli.session import IllegalStateError, Session, SessionError, _DriverHooks
from sipcli.sessiondescription import SessionDescription, offered_chat
from sipcli.streams.chat import ChatStream

PJSUA_OFFER = (  # what pjsua writes with two audio slots; the second becomes the chat line
    "v=0\r\no=- 3913 3913 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=audio 4002 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
)
PJSUA_ANSWER = (  # pjsua's answer to an offer with an m=message line: a disabled placeholder
    "v=0\r\no=- 3914 3914 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
    "m=audio 4010 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=message 0 TCP/MSRP *\r\nc=IN IP4 0.0.0.0\r\n"
)


def remote_sdp(setup: str = "actpass", port: int = 2855, audio: str = "sendrecv") -> str:
    chat = (f"m=message {port} TCP/MSRP *\r\nc=IN IP4 127.0.0.1\r\na=path:msrp://127.0.0.1:{port}/peer;tcp\r\n"
            f"a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:text/plain\r\na=setup:{setup}\r\n")
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
            f"m=audio 5000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na={audio}\r\n" + chat)


class _Account:
    id = "alice@example.test"
    pj_account = None


@pytest.fixture
def stream():
    session = Session(_Account())
    chat = ChatStream(session)
    session._add_stream(chat)
    chat.local_path = [MSRPURI.new("127.0.0.1", 40000)]
    yield chat
    NotificationCenter().purge_observer(chat)


def chat_section(sdp: str):
    description = SessionDescription.parse(sdp)
    assert [m.kind for m in description.media] == ["audio", "message"]
    return description.media[1]


def test_offer_puts_the_chat_line_in_the_second_slot(stream):
    section = chat_section(stream.rewrite_sdp(PJSUA_OFFER, None))
    assert section.port == 40000 and section.proto == "TCP/MSRP"
    assert section.attributes("path") == [str(stream.local_path[0])]
    assert "message/cpim" in section.attributes("accept-types")[0].split()
    assert section.attributes("accept-wrapped-types")[0].split()[0] == "text/plain"  # else the reference drops all
    assert section.attributes("setup") == ["actpass"]
    assert "c=IN IP4 127.0.0.1" in section.lines


def test_chat_only_offer_keeps_an_inactive_audio_line(stream):
    stream.audio_inactive = True
    description = SessionDescription.parse(stream.rewrite_sdp(PJSUA_OFFER, None))
    assert description.media[0].port == 4000 and description.media[0].direction == "inactive"


def test_removed_chat_is_a_disabled_line_in_place(stream):
    stream.enabled = False
    section = chat_section(stream.rewrite_sdp(PJSUA_OFFER, None))
    assert section.port == 0 and section.kind == "message"


@pytest.mark.parametrize(("offer_setup", "our_setup"), [("actpass", "passive"), ("active", "passive"),
                                                        ("passive", "active")])
def test_answer_setup_follows_the_offer(stream, offer_setup, our_setup):
    section = chat_section(stream.rewrite_sdp(PJSUA_ANSWER, remote_sdp(offer_setup)))
    assert section.port == 40000 and section.attributes("setup") == [our_setup]


def test_answer_received_negotiates_or_drops_the_chat(stream):
    stream.session.state = "CALLING"  # the 200 OK to our INVITE: the MSRP connection starts once established
    stream.we_offered = True
    assert stream.answer_received(remote_sdp("passive"))
    assert stream.negotiated and stream.remote.path[0].port == 2855 and stream.setup == "passive"
    stream.we_offered = True
    assert not stream.answer_received(remote_sdp(port=0).replace("a=path:msrp://127.0.0.1:0/peer;tcp\r\n", ""))
    assert not stream.negotiated


def test_offered_chat_only_at_the_chat_slot_and_with_a_port():
    assert offered_chat(remote_sdp()).path[0].port == 2855
    assert offered_chat(remote_sdp(port=0).replace("a=path:msrp://127.0.0.1:0/peer;tcp\r\n", "")) is None
    assert offered_chat(PJSUA_OFFER) is None


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str]] = []

    def send_message(self, body: bytes, content_type: str) -> str:
        self.sent.append((bytes(body), content_type))
        return f"id{len(self.sent)}"


def test_send_wraps_in_cpim_only_when_the_peer_accepts_it(stream):
    stream.transport = _Transport()
    stream.remote = offered_chat(remote_sdp())
    message_id = stream.send_message("hello")
    body, content_type = stream.transport.sent[0]
    assert content_type == CPIM_TYPE and decode_cpim(body).text() == "hello"
    assert stream.messages[message_id].cpim
    stream.remote.accept_types = ["text/plain"]
    stream.send_message("plain")
    assert stream.transport.sent[1] == (b"plain", "text/plain")


class _Collector:
    def __init__(self, session) -> None:
        self.got = []
        NotificationCenter().add_observer(self, name="SIPSessionGotMessage", sender=session)

    def handle_notification(self, notification) -> None:
        self.got.append(notification.data)


def received(body: bytes, content_type: str) -> MessageReceived:
    return MessageReceived("m1", content_type, body, SimpleNamespace(headers={"Message-ID": "m1"}))


def test_received_cpim_plain_text_and_otr_queries(stream):
    collector = _Collector(stream.session)
    try:
        cpim = encode_cpim("grüße".encode(), "text/plain", "<sip:bob@example.test>", ["<sip:alice@example.test>"])
        stream._on_event(received(cpim, CPIM_TYPE))
        stream._on_event(received(b"plain", "text/plain"))
        stream._on_event(received(b"?OTRv3?", "text/plain"))  # the reference client's first message: ignored
        stream._on_event(received(b"", "text/plain"))  # the empty SEND that binds a connection
    finally:
        NotificationCenter().purge_observer(collector)
    assert [(g.content, g.content_type) for g in collector.got] == [("grüße", "text/plain"), ("plain", "text/plain")]
    assert collector.got[0].cpim_headers["From"] == "<sip:bob@example.test>"
    assert collector.got[1].cpim_headers == {}


def test_reinvite_offers_that_propose_streams():
    session = Session(_Account())
    session.streams["audio"] = object()
    assert _DriverHooks(session).proposed_streams(remote_sdp()) == ["chat"]  # adding chat to an audio call
    session.streams["chat"] = chat = ChatStream(session)
    chat.negotiated = True
    assert _DriverHooks(session).proposed_streams(remote_sdp(audio="sendonly")) == []  # hold keeps the streams
    del session.streams["audio"]
    assert _DriverHooks(session).proposed_streams(remote_sdp(audio="inactive")) == []  # chat only, refreshed
    assert _DriverHooks(session).proposed_streams(remote_sdp()) == ["audio"]  # audio added to a chat-only session
    NotificationCenter().purge_observer(chat)


def test_accept_and_reject_proposal_rules():
    session = Session(_Account())
    with pytest.raises(IllegalStateError, match="only in PROPOSED"):
        session.accept_proposal(chat=True)
    with pytest.raises(IllegalStateError):
        session.reject_proposal()
    session.state = "PROPOSED"
    session._remote_proposal_streams = ["chat"]
    with pytest.raises(SessionError, match="only proposed streams"):
        session.accept_proposal(audio=True)
    with pytest.raises(SessionError, match="at least one"):
        session.accept_proposal()
