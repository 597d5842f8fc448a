"""What sipcli reads out of the start of a SIP message too large to take."""

from __future__ import annotations

from sipcli.sipmessage import oversized_message_start

HEAD = "MESSAGE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1\r\nContent-Length: 9000\r\n\r\n"


def test_a_request_with_its_whole_header_section_gives_method_and_size():
    assert oversized_message_start(HEAD + "x" * 100) == ("MESSAGE", len(HEAD) + 9000)


def test_bare_line_feeds_and_the_compact_header_form_are_read():
    start = "INFO sip:bob@example.test SIP/2.0\nl: 50000\n\nxx"
    assert oversized_message_start(start) == ("INFO", start.index("\n\n") + 2 + 50000)


def test_a_header_section_cut_short_gives_no_size():
    assert oversized_message_start(HEAD[:60]) == ("MESSAGE", None)


def test_a_response_has_no_method():
    assert oversized_message_start("SIP/2.0 200 OK\r\nContent-Length: 9000\r\n\r\n") == (None, 9040)


def test_junk_and_a_malformed_length_give_nothing():
    assert oversized_message_start("\x1b[31m garbage") == (None, None)
    assert oversized_message_start("MESSAGE sip:a SIP/2.0\r\nContent-Length: -5\r\n\r\n") == ("MESSAGE", None)
