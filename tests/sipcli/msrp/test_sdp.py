"""The m=message media description and the connection direction (RFC 4975 section 8, RFC 6135)."""

from __future__ import annotations

import pytest

from sipcli.msrp.sdp import MessageMedia, SDPError, answer_setup, connection_role, find_message_media
from sipcli.msrp.uri import MSRPURI, URIError

OFFER = """v=0\r
o=- 1 1 IN IP4 127.0.0.1\r
s=-\r
c=IN IP4 127.0.0.1\r
t=0 0\r
m=audio 4000 RTP/AVP 0\r
a=inactive\r
m=message 2855 TCP/TLS/MSRP *\r
a=path:msrps://relay.example:2855/r1;tcp msrps://127.0.0.1:2855/abc;tcp\r
a=accept-types:message/cpim text/plain\r
a=accept-wrapped-types:text/*\r
a=max-size:1048576\r
a=setup:actpass\r
"""


def test_parse_an_offer_and_build_it_back() -> None:
    [(index, media)] = find_message_media(OFFER)
    assert index == 1 and media.port == 2855 and media.use_tls
    assert [u.session_id for u in media.path] == ["r1", "abc"]
    assert media.accept_types == ["message/cpim", "text/plain"] and media.accept_wrapped_types == ["text/*"]
    assert media.setup == "actpass" and media.max_size == 1048576
    again = MessageMedia.parse(media.to_sdp())
    again.port = media.port
    assert again == media


def test_build_defaults() -> None:
    text = MessageMedia([MSRPURI("127.0.0.1", 40000, "s1")]).to_sdp()
    assert text.startswith("m=message 40000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:40000/s1;tcp\r\n")
    assert "a=accept-types:message/cpim text/plain\r\n" in text and "a=accept-wrapped-types:text/plain\r\n" in text
    assert "a=setup:actpass\r\n" in text
    assert MessageMedia.parse("m=message 0 TCP/MSRP *\r\n").port == 0  # a removed chat stream


def test_bad_sections() -> None:
    with pytest.raises(SDPError):
        MessageMedia.parse("m=message 2855 TCP/MSRP *\r\n")
    with pytest.raises(URIError):
        MessageMedia.parse("m=message 2855 TCP/MSRP *\r\na=path:http://x/y\r\n")


@pytest.mark.parametrize(("offer", "answer", "offerer", "answerer"), [
    ("actpass", "passive", "active", "passive"),
    ("actpass", "active", "passive", "active"),
    ("passive", "active", "passive", "active"),
    (None, None, "active", "passive"),  # RFC 4975 without a=setup: the offerer connects
])
def test_connection_direction(offer: str | None, answer: str | None, offerer: str, answerer: str) -> None:
    if offer in ("actpass", "passive", None) and answer in ("passive", "active"):
        assert answer_setup(offer) in ("passive", "active")
    assert connection_role(True, answer) == offerer
    assert connection_role(False, answer) == answerer


def test_default_answer() -> None:
    assert answer_setup("actpass") == "passive" and answer_setup(None) == "passive"
    assert answer_setup("active") == "passive" and answer_setup("passive") == "active"
