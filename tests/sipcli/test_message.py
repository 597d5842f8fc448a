"""sipcli.message's sans-IO side: SIP request/response parsing, RFC 3994 isComposing documents, Message checks."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from sipcli.message import (
    ComposingIndication,
    Message,
    MessageError,
    build_iscomposing,
    parse_iscomposing,
    parse_request,
    parse_response,
)

EMOJI = "Grüße 😀"


def request(body: bytes, *headers: str, length: int | None = None) -> bytes:
    lines = ["MESSAGE sip:bob@127.0.0.1:5070 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK1",
             'f: "Alice" <sip:alice@example.test>;tag=1', "t: <sip:bob@example.test>", "i: abc", "CSeq: 1 MESSAGE",
             *headers, f"l: {len(body) if length is None else length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_request_with_compact_headers_and_utf8_body():
    parsed = parse_request(request(EMOJI.encode(), "c: text/plain;charset=utf-8"))
    assert parsed.method == "MESSAGE" and parsed.request_uri == "sip:bob@127.0.0.1:5070"
    assert parsed.from_header == '"Alice" <sip:alice@example.test>;tag=1'
    assert parsed.to_header == "<sip:bob@example.test>" and parsed.sender_uri == "sip:alice@example.test"
    assert parsed.headers["Call-ID"] == "abc" and parsed.content_type == "text/plain;charset=utf-8"
    assert parsed.body == EMOJI.encode() and not parsed.truncated


def test_body_without_content_type_and_binary_body_are_kept():
    parsed = parse_request(request(b"\xff\x00 raw\r\n\r\nmore"))
    assert parsed.content_type is None and parsed.body == b"\xff\x00 raw\r\n\r\nmore"


def test_truncated_body_and_extra_bytes():
    assert parse_request(request(b"x" * 10, length=50)).truncated
    cut = parse_request(request(b"abcdef", length=3))
    assert cut.body == b"abc" and not cut.truncated


def test_folded_and_repeated_headers_and_bounds():
    parsed = parse_request(request(b"", "Subject: one\r\n two", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2"))
    assert parsed.headers["Subject"] == "one two"
    assert parsed.headers["Via"].count("SIP/2.0/UDP") == 2
    many = parse_request(request(b"", *(f"X-{i}: {i}" for i in range(1000))))
    assert len(many.headers) <= 200
    with pytest.raises(ValueError):
        parse_request(b"MESSAGE " + b"x" * (1 << 21))
    with pytest.raises(ValueError):
        parse_request(b"SIP/2.0 200 OK\r\n\r\n")


def test_response():
    code, reason, headers = parse_response(b"SIP/2.0 486 Busy Here\r\nCall-ID: x\r\nCSeq: 2 MESSAGE\r\n\r\n")
    assert (code, reason, headers) == (486, "Busy Here", {"Call-ID": "x", "CSeq": "2 MESSAGE"})
    with pytest.raises(ValueError):
        parse_response(b"MESSAGE sip:a@b SIP/2.0\r\n\r\n")


def test_iscomposing_round_trip():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = build_iscomposing("active", "text/plain", refresh=60, last_active=moment)
    assert parse_iscomposing(body) == ComposingIndication("active", "text/plain", 60, moment)
    assert parse_iscomposing(build_iscomposing("idle")).state == "idle"
    with pytest.raises(ValueError):
        build_iscomposing("typing")


@pytest.mark.parametrize("body", [
    b"<isComposing><state>sleeping</state></isComposing>",
    b"<other/>",
    b"not xml",
    b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><isComposing><state>&a;</state></isComposing>',
    b"<isComposing>" + b" " * 9000 + b"</isComposing>",
])
def test_bad_iscomposing_documents_are_refused(body):
    with pytest.raises(ValueError):
        parse_iscomposing(body)


def test_message_checks_its_input_before_any_engine():
    message = Message("sip:alice@example.test", "<sip:bob@example.test;transport=tcp>", None, "text/plain", EMOJI)
    assert str(message.target) == "sip:bob@example.test;transport=tcp" and message.body == EMOJI.encode()
    assert message.state == "NULL" and message.notification_id.startswith("message/")
    with pytest.raises(MessageError):
        Message("sip:a@b", "bob", None, "text/plain", "x")
    with pytest.raises(MessageError):
        Message("sip:a@b", "sip:bob@h", None, "text/plain", b"\xff")
    with pytest.raises(MessageError):
        Message("sip:a@b", "sip:bob@h", None, "text/plain", "x", extra_headers=[("X-Bad", "a\r\nInjected: 1")])


LIBRARY_PEER = """
import asyncio, json, sys
from sipcli.account import BonjourAccount
from sipcli.application import SIPApplication
from sipcli.configuration import MemoryStorage
from sipcli.message import Message
from sipcli.notification import NotificationCenter

class Recorder:
    def __init__(self):
        self.events = []
    def handle_notification(self, n):
        self.events.append({"name": n.name, "sender": n.sender.notification_id,
                            "code": n.data.code, "reason": n.data.reason, "originator": n.data.originator})

async def main():
    recorder = Recorder()
    for name in ("SIPMessageDidSucceed", "SIPMessageDidFail"):
        NotificationCenter().add_observer(recorder, name=name)
    await SIPApplication().start(MemoryStorage(), engine_options={"local_ip": "127.0.0.1"},
                                 accounts=["bonjour@local"], sessions=False)
    account = BonjourAccount()
    while account.pj_account is None:
        await asyncio.sleep(0.01)
    ok, busy = sys.argv[1:3]
    codes = [await Message(None, ok, None, "text/plain", "hé 😀").send(5),
             # addressed to the first UAS, routed (Route header) to the busy one
             await Message(None, ok, f"<{busy};lr>", "text/plain", "route me").send(5)]
    await SIPApplication().stop()
    print(json.dumps({"codes": codes, "events": recorder.events}))

asyncio.run(main())
"""


def test_library_message_to_sipp_uas_and_through_a_route_header(tmp_path):
    pytest.importorskip("pjsua2")
    from tests.support.sipp import start_sipp

    ok = start_sipp("uas_message", tmp_path / "ok", calls=1)
    busy = start_sipp("uas_message_486", tmp_path / "busy", calls=1)
    try:
        done = subprocess.run([sys.executable, "-c", LIBRARY_PEER, f"sip:svc@127.0.0.1:{ok.port}",
                               f"sip:127.0.0.1:{busy.port}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["codes"][:2] == [200, 486]
        first, second = result["events"][:2]
        assert first["name"] == "SIPMessageDidSucceed" and first["reason"] == "OK"
        assert second == {"name": "SIPMessageDidFail", "sender": second["sender"], "code": 486,
                          "reason": "Busy Here", "originator": "remote"}
        assert f"MESSAGE sip:svc@127.0.0.1:{ok.port} SIP/2.0" in busy.messages() and "route me" in busy.messages()
        assert "hé 😀" in ok.messages() and "route me" not in ok.messages()
        assert ok.wait() == 0 and busy.wait() == 0
    finally:
        ok.stop()
        busy.stop()
