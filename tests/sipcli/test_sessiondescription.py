import pytest

from sipcli.sessiondescription import (
    DISABLED_CHAT,
    MediaSection,
    SessionDescription,
    splice_chat,
    without_needless_lines,
)

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


def _offer(*media: str, connection: str = "c=IN IP4 192.0.2.1") -> str:
    return "\r\n".join(["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", connection, "t=0 0", *media]) + "\r\n"


def test_media_refusal_names_ipv6_audio_at_session_or_media_level():
    from sipcli.sessiondescription import IPV6_MEDIA, media_refusal

    audio = "m=audio 4000 RTP/AVP 0"
    assert media_refusal(_offer(audio, connection="c=IN IP6 2001:db8::1")) == IPV6_MEDIA
    assert media_refusal(_offer(audio, "c=IN IP6 ::1")) == IPV6_MEDIA
    assert media_refusal(_offer(audio)) is None
    # a disabled IPv6 audio line next to an IPv4 one is no obstacle
    assert media_refusal(_offer("m=audio 0 RTP/AVP 0", "c=IN IP6 ::1", "m=audio 4000 RTP/AVP 0",
                                "c=IN IP4 192.0.2.1")) is None
    assert media_refusal("not sdp") is None
    # an engine with IPv6 (Capabilities.ipv6, sipcli's engine build) takes it
    assert media_refusal(_offer(audio, "c=IN IP6 ::1"), ipv6=True) is None


def test_refusal_reason_for_pjsuas_own_488s():
    from sipcli.sessiondescription import offered_audio_codecs, refusal_reason

    g729 = _offer("m=audio 4000 RTP/AVP 18 101", "a=rtpmap:101 telephone-event/8000")
    assert offered_audio_codecs(g729) == ["G729"]
    assert refusal_reason(g729, ["PCMU", "G722"]) == \
        "no audio codec in common (offered: G729; accepted: PCMU, G722)"
    assert refusal_reason(_offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/48000/2"), ["PCMU"]).startswith(
        "no audio codec in common (offered: opus;")
    assert refusal_reason(_offer("m=audio 4000 RTP/AVP 0"), ["pcmu"]) is None
    chat_only = _offer("m=message 2855 TCP/MSRP *", "a=path:msrp://192.0.2.1:2855/x;tcp")
    assert refusal_reason(chat_only, ["PCMU"]) == \
        "an offer without active audio cannot be taken by this engine (offered: chat)"
    assert refusal_reason("", ["PCMU"]) is None


PJSUA_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:151\r\nt=0 0\r\n"
             "m=audio 50120 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\na=rtcp:50121 IN IP4 127.0.0.1\r\n"
             "a=rtpmap:9 G722/8000\r\na=ssrc:845025867 cname:387eec266069ba74\r\n"
             "m=audio 50130 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\na=rtcp:50200 IN IP4 127.0.0.1\r\n"
             "m=audio 50140 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\na=rtcp:50141 IN IP4 192.0.2.1\r\n"
             "m=audio 50150 RTP/AVP 9\r\na=rtcp:50151\r\n")


def test_needless_lines_go_and_only_a_default_rtcp_line_with_them():
    assert without_needless_lines(PJSUA_SDP) == (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=audio 50120 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:9 G722/8000\r\n"
        "m=audio 50130 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\na=rtcp:50200 IN IP4 127.0.0.1\r\n"  # not port + 1
        "m=audio 50140 RTP/AVP 9\r\nc=IN IP4 127.0.0.1\r\na=rtcp:50141 IN IP4 192.0.2.1\r\n"  # another address
        "m=audio 50150 RTP/AVP 9\r\n")
    assert without_needless_lines("") == ""
