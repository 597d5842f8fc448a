"""Chat on the default settings (all configured codecs, SRTP optional): the library makes the offer fit pjsua2's
SDP buffer (sipcli.pjsua.media.fit_codecs) and fails the session clearly where it cannot; ChatSupport is
started by SIPApplication. Peers: two library-driven processes (tests/support/peer.py)."""

from __future__ import annotations

import pytest

from sipcli.pjsua.media import SDP_BUFFER_SIZE, SDPTooLarge, fit_codecs, sdp_size
from tests.support.engine import installed_capabilities
from tests.support.peer import caller_and_callee

SIX_CODECS = ["G722", "PCMU", "PCMA", "speex", "GSM", "iLBC"]  # the default list before it became the first three


def test_fit_keeps_the_preferred_codecs_that_fit():
    assert fit_codecs(SIX_CODECS, media_lines=1, crypto_lines=2) == SIX_CODECS
    with_chat = fit_codecs(SIX_CODECS, media_lines=2, crypto_lines=2)
    assert with_chat == ["G722", "PCMU", "PCMA"]  # in order; each codec after them would overflow
    assert sdp_size(with_chat, 2, 2) <= SDP_BUFFER_SIZE
    assert all(sdp_size([*with_chat, codec], 2, 2) > SDP_BUFFER_SIZE for codec in ("speex", "GSM", "iLBC"))
    # without SRTP the small codecs after speex still fit: speex (three clock rates) is what is left out
    assert fit_codecs(SIX_CODECS, media_lines=2, crypto_lines=0) == ["G722", "PCMU", "PCMA", "GSM", "iLBC"]


def test_fit_follows_the_buffer_size():
    assert fit_codecs(SIX_CODECS, media_lines=2, crypto_lines=2, limit=4096) == SIX_CODECS
    with pytest.raises(SDPTooLarge, match="600-byte"):
        fit_codecs(SIX_CODECS, media_lines=2, crypto_lines=2, limit=600)


def start_peers(tmp_path, caller_settings: dict | None = None):
    pytest.importorskip("pjsua2")
    yield from caller_and_callee(tmp_path, "SIPAccountDidActivate", caller_settings)


@pytest.fixture
def peers(tmp_path):
    yield from start_peers(tmp_path)


@pytest.fixture
def six_codec_peers(tmp_path):
    """The caller configured with SIX_CODECS: an offer of them all
    with a chat line overflows pjsua2's buffer (about 1,480 bytes with SRTP; three codecs make 953)."""
    yield from start_peers(tmp_path, {"general": {"audio": {"codec_list": SIX_CODECS}}})


@pytest.mark.peers
def test_audio_and_chat_on_default_settings(peers):
    caller, callee, uri = peers
    caller.run(f"session = Session(account); result = session.connect({uri!r}, audio=True, chat=True)")
    for peer in (caller, callee):
        started = peer.wait_for("SIPSessionDidStart")
        assert sorted(started["data"]["streams"]) == ["audio", "chat"]
        peer.wait_for("MediaStreamDidStart")
    caller.run("sent = session.send_message('hello')")
    got = callee.wait_for("SIPSessionGotMessage")
    assert got["data"]["content"] == "hello"
    delivered = caller.wait_for("SIPSessionDidDeliverMessage")["data"]
    # the raw MSRP messages, as the reference's MSRPData: the SEND received, the REPORT/response that confirmed
    raw = got["data"]["message"]
    assert raw["method"] == "SEND" and raw["message_id"] == delivered["message_id"]
    assert raw["headers"]["Message-ID"] == raw["message_id"] and raw["transaction_id"]
    start, end, total = raw["byte_range"]
    assert start == 1 and end == total and total > len("hello")  # CPIM-wrapped, in one chunk
    confirmation = delivered["message"]  # a success REPORT for this message, or the 200 response to the SEND
    assert delivered["code"] == 200 and confirmation["transaction_id"]
    assert (confirmation["method"], confirmation["message_id"]) == ("REPORT", delivered["message_id"]) or \
        (confirmation["method"], confirmation["code"]) == (None, 200)
    for peer in (caller, callee):
        assert not peer.find("MediaStreamDidFail") and not peer.find("SIPSessionDidFail")
    caller.run("assert session.audio_srtp_active, 'SRTP optional on both sides: negotiated'")
    caller.run("result = session.end()")
    callee.wait_for("SIPSessionDidEnd")


@pytest.mark.peers
def test_a_session_whose_chat_cannot_fit_fails_before_any_invite(peers):
    caller, callee, uri = peers
    caller.run("from sipcli.session import SessionManager; SessionManager().sdp_buffer_size = 600")
    caller.run(f"session = Session(account); result = session.connect({uri!r}, audio=True, chat=True)")
    failed = caller.wait_for("SIPSessionDidFail")
    assert failed["data"]["originator"] == "local" and failed["data"]["code"] == 0
    assert "600-byte" in failed["data"]["reason"]
    caller.wait_for("SIPSessionDidEnd")
    assert not callee.find("SIPSessionNewIncoming")


@pytest.mark.peers
def test_six_codecs_are_trimmed_to_an_offer_that_fits(six_codec_peers):
    """The library offers only the codecs that fit next to the chat line: the session starts with chat."""
    caller, callee, uri = six_codec_peers
    caller.run(f"session = Session(account); result = session.connect({uri!r}, audio=True, chat=True)")
    for peer in (caller, callee):
        assert sorted(peer.wait_for("SIPSessionDidStart")["data"]["streams"]) == ["audio", "chat"]
    assert not caller.find("SIPSessionDidFail")
    caller.run("result = session.end()")
    callee.wait_for("SIPSessionDidEnd")


@pytest.mark.peers
@pytest.mark.skipif(installed_capabilities().get("sdp_buffer", 0) >= 8192,
                    reason="the installed engine's SDP buffer holds every codec (test_full_engine)")
def test_an_offer_that_still_overflows_fails_the_session(six_codec_peers):
    """Told the buffer is larger than it is, the library offers all six codecs: pjsua2 hands over no SDP to add
    the chat line to, and the session fails instead of going on with audio only."""
    caller, _callee, uri = six_codec_peers
    caller.run("from sipcli.session import SessionManager; SessionManager().sdp_buffer_size = 4096")
    caller.run(f"session = Session(account); result = session.connect({uri!r}, audio=True, chat=True)")
    failed = caller.wait_for("SIPSessionDidFail")
    assert failed["data"]["originator"] == "local" and "SDP buffer" in failed["data"]["reason"]
    ended = caller.wait_for("SIPSessionDidEnd")
    assert ended["data"]["originator"] == "local"
    assert not caller.find("SIPSessionDidStart")
