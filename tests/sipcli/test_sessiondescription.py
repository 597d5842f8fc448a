import pytest

from sipcli.sessiondescription import DISABLED_CHAT, MediaSection, SessionDescription, splice_chat

OFFER = (
    "v=0\r\no=- 3913 3913 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\na=X-nat:0\r\n"
    "m=audio 4000 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\na=rtcp:4001 IN IP4 127.0.0.1\r\na=sendrecv\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    "m=audio 4002 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
)
CHAT = (
    "m=message 2855 TCP/MSRP *\r\nc=IN IP4 127.0.0.1\r\na=path:msrp://127.0.0.1:2855/abc;tcp\r\n"
    "a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:text/plain\r\na=setup:actpass"
)


def test_parse_and_serialize_round_trip():
    description = SessionDescription.parse(OFFER)
    assert [m.kind for m in description.media] == ["audio", "audio"]
    assert str(description) == OFFER


def test_splice_replaces_second_audio_slot_with_chat():
    spliced = SessionDescription.parse(splice_chat(OFFER, CHAT))
    assert [m.kind for m in spliced.media] == ["audio", "message"]
    chat = spliced.media[1]
    assert chat.port == 2855 and chat.proto == "TCP/MSRP" and chat.formats == ["*"]
    assert chat.attributes("path") == ["msrp://127.0.0.1:2855/abc;tcp"]
    assert chat.attributes("setup") == ["actpass"]
    assert spliced.streams() == ["audio", "chat"]
    assert str(spliced.media[0]) == str(SessionDescription.parse(OFFER).media[0])


def test_disabled_chat_keeps_the_m_line_position():
    spliced = SessionDescription.parse(splice_chat(OFFER, None))
    assert spliced.media[1].m_line == DISABLED_CHAT
    assert spliced.streams() == ["audio"]


def test_inactive_audio_is_still_an_offered_stream():
    description = SessionDescription.parse(OFFER)
    held = description.media[0].with_direction("inactive")
    assert held.direction == "inactive"
    assert held.attributes("inactive") == [""]
    assert [line for line in held.lines if line in ("a=sendrecv", "a=inactive")] == ["a=inactive"]


@pytest.mark.parametrize("bad", ["", "m=audio 1 RTP/AVP 0\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n"])
def test_malformed_sdp_is_rejected(bad):
    with pytest.raises(ValueError):
        SessionDescription.parse(bad)


def test_splice_rejects_a_non_message_section_and_a_missing_slot():
    with pytest.raises(ValueError):
        splice_chat(OFFER, "m=audio 1 RTP/AVP 0")
    with pytest.raises(ValueError):
        splice_chat(OFFER, CHAT, slot=2)


def test_media_section_direction_default_is_sendrecv():
    assert MediaSection.parse("m=audio 1 RTP/AVP 0").direction == "sendrecv"
