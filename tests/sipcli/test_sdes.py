"""SDES crypto lines (sipcli.sdes): widening a re-offer's key over every tag, and why an answer is unusable."""

from __future__ import annotations

import base64

import pytest

from sipcli.sdes import Crypto, answer_problem, offer_key_under_tags
from sipcli.sessiondescription import SessionDescription

KEY = "PgRVnBitXdihTayXO2twQt/V3RVaapadBiQ3/h1S"  # 30 bytes
PEER_KEY = "MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0"  # 30 bytes
HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def sdp(*crypto: str, proto: str = "RTP/SAVP", direction: str = "sendonly", chat: bool = False) -> str:
    lines = [f"m=audio 4000 {proto} 0 101", "a=rtpmap:0 PCMU/8000", *(f"a=crypto:{c}" for c in crypto),
             f"a={direction}"]
    if chat:
        lines += ["m=message 5000 TCP/MSRP *", "a=path:msrp://127.0.0.1:5000/abc;tcp"]
    return HEAD + "\r\n".join(lines) + "\r\n"


def cryptos(text: str, index: int = 0) -> list[str]:
    return SessionDescription.parse(text).media[index].attributes("crypto")


def test_a_reoffered_key_is_offered_under_every_tag_pjmedia_takes():
    offer = sdp(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}", chat=True)
    widened = offer_key_under_tags(offer, 4)
    assert cryptos(widened) == [f"{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY}" for tag in (1, 2, 3, 4)]
    description = SessionDescription.parse(widened)
    assert description.media[0].direction == "sendonly" and description.media[0].lines[0] == "a=rtpmap:0 PCMU/8000"
    assert str(description.media[1]) == str(SessionDescription.parse(offer).media[1])  # the chat line untouched
    assert widened.startswith(HEAD) and widened.endswith("\r\n")


def test_session_parameters_and_the_key_stay_and_the_offered_tag_comes_first():
    widened = offer_key_under_tags(sdp(f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^20|1:4 UNENCRYPTED_SRTCP"), 3)
    assert [Crypto.parse(value).tag for value in cryptos(widened)] == [2, 1, 3]
    assert {value.split(" ", 1)[1] for value in cryptos(widened)} == {
        f"AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^20|1:4 UNENCRYPTED_SRTCP"}


@pytest.mark.parametrize("offer", [
    sdp("1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 64, f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),  # a first offer
    sdp(proto="RTP/AVP"),  # no SRTP
    sdp("1 AES_CM_128_HMAC_SHA1_80"),  # malformed: sent as the engine wrote it
    "",  # pjsua2 hands an SDP over 1024 bytes as empty
])
def test_other_offers_are_left_alone(offer):
    assert offer_key_under_tags(offer, 4) == offer


def test_one_suite_means_nothing_to_widen():
    offer = sdp(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    assert offer_key_under_tags(offer, 1) == offer


def test_crypto_parse_is_strict_about_the_tag():
    assert Crypto.parse(f"12 AES_CM_128_HMAC_SHA1_80 inline:{KEY}").key == base64.b64decode(KEY)
    non_ascii_digit = "\u0661"
    for value in ("x AES_CM_128_HMAC_SHA1_80 inline:k", "1", "1 AES", "1234567890 S inline:k",
                  f"{non_ascii_digit} S inline:k"):
        with pytest.raises(ValueError):
            Crypto.parse(value)


OFFER = sdp(*(f"{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY}" for tag in (1, 2, 3, 4)))


@pytest.mark.parametrize(("answer", "problem"), [
    (sdp(f"3 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}", direction="recvonly"), None),
    (sdp(proto="RTP/AVP"), None),  # plain RTP: not an SDES question
    (sdp(), "the answer has no a=crypto line"),
    (sdp(f"1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}", f"2 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"),
     "the answer has 2 a=crypto lines (one expected)"),
    (sdp(f"7 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}"),
     "the answer's crypto tag 7 was not offered (offered tags: 1, 2, 3, 4)"),
    (sdp(f"1 AES_CM_128_HMAC_SHA1_32 inline:{PEER_KEY}"),
     "the answer's crypto suite AES_CM_128_HMAC_SHA1_32 is not the one offered with tag 1 (AES_CM_128_HMAC_SHA1_80)"),
    (sdp("1 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MGFiY2RlZmdoaWpr"),
     "the answer's SRTP key has 21 bytes (AES_CM_128_HMAC_SHA1_80 needs 30)"),
    (sdp("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64"), "the answer's SRTP key is not an inline base64 key"),
    (sdp("1 AES_CM_128_HMAC_SHA1_80"), "the answer has a malformed crypto attribute: '1 AES_CM_128_HMAC_SHA1_80'"),
])
def test_answer_problem(answer, problem):
    assert answer_problem(OFFER, answer) == problem
