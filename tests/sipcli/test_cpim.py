"""CPIM (RFC 3862) encoding, lenient decoding, and the choice between CPIM and plain text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sipcli.cpim import CPIMError, decode_cpim, encode_cpim, format_address, parse_address, use_cpim


def test_round_trip_with_all_headers() -> None:
    when = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    data = encode_cpim("grüße".encode(), "text/plain; charset=utf-8", sender=format_address("sip:a@x.test", "Al"),
                       recipients=[format_address("sip:b@x.test")], cc=["<sip:c@x.test>"], timestamp=when,
                       subject="hi", namespaces={"MyFeatures": "mid:MessageFeatures@id.foo.com"},
                       extra_headers=[("MyFeatures.VitalMessageOption", "Confirmation-requested")])
    message = decode_cpim(data)
    assert message.body == "grüße".encode() and message.text() == "grüße"
    assert message.content_type == "text/plain"
    assert parse_address(message.sender) == ("Al", "sip:a@x.test")
    assert message.recipients == ["<sip:b@x.test>"] and message.headers["cc"] == ["<sip:c@x.test>"]
    assert message.timestamp == when and message.first("Subject") == "hi"
    assert message.headers["NS"] == ["MyFeatures <mid:MessageFeatures@id.foo.com>"]
    assert message.headers["MyFeatures.VitalMessageOption"] == ["Confirmation-requested"]


def test_lenient_decoding_of_what_the_reference_client_sends() -> None:
    data = (b"From: <sip:alice@example.test>\r\nTo: <sip:bob@example.test>\r\n"
            b"DateTime: 2024-05-01T12:30:15.654321+00:00\r\n\r\n"
            b"Content-Type: text/plain;charset=utf8\nContent-Length: 5\n\nhallo")
    message = decode_cpim(data)
    assert message.text() == "hallo" and message.charset == "utf8"
    assert message.timestamp.microsecond == 654321


def test_not_cpim() -> None:
    with pytest.raises(CPIMError):
        decode_cpim(b"no separation at all")


def test_wrapping_choice_from_accept_types() -> None:
    assert use_cpim("text/plain", ["message/cpim", "text/plain"], ["text/plain"])
    assert use_cpim("text/html", ["message/cpim"], ["text/*"])
    assert not use_cpim("text/plain", ["text/plain"])
    assert not use_cpim("text/plain", ["message/cpim", "text/plain"], [])  # no wrapped types: send it plain
    assert not use_cpim("text/plain", ["*"])
    with pytest.raises(CPIMError):
        use_cpim("image/png", ["text/plain"])
