"""The sans-IO MSRP session: delivery rules, responses, REPORTs, chunking, reassembly, limits, timeouts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipcli.msrp.connection import (
    MAX_INTERLEAVED,
    MAX_PARTIAL_MESSAGES,
    ConnectionClosed,
    MessageDelivered,
    MessageNotDelivered,
    MessageReceived,
    MSRPConnection,
    ProtocolError,
)
from sipcli.msrp.message import MSRPFrame
from sipcli.msrp.parser import MSRPParser
from sipcli.msrp.uri import MSRPURI

A = MSRPURI.parse("msrp://127.0.0.1:7001/alice;tcp")
B = MSRPURI.parse("msrp://127.0.0.1:7002/bob;tcp")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def endpoints(**options) -> tuple[MSRPConnection, MSRPConnection]:
    return MSRPConnection([A], [B], **options), MSRPConnection([B], [A], **options)


def pump(a: MSRPConnection, b: MSRPConnection) -> None:
    """Move bytes both ways until both sides are quiet."""
    while a.has_data_to_send() or b.has_data_to_send():
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())


def frames(data: bytes) -> list[MSRPFrame]:
    return MSRPParser().feed(data)


def test_message_is_delivered_by_the_200_response() -> None:
    a, b = endpoints()
    mid = a.send_message(b"hi")
    pump(a, b)
    assert [(e.message_id, e.body) for e in b.next_events()] == [(mid, b"hi")]
    assert a.next_events() == [MessageDelivered(mid, 200, "OK")]


def test_received_message_carries_its_frame_and_no_report_unless_asked() -> None:
    a, b = endpoints()
    mid = a.send_message("héllo".encode(), "text/plain; charset=utf-8")
    b.receive_data(a.data_to_send())
    [event] = b.next_events()
    assert (event.message_id, event.content_type, event.body) == (mid, "text/plain; charset=utf-8", "héllo".encode())
    assert event.frame.headers["From-Path"] == str(A)
    [response] = frames(b.data_to_send())
    assert response.code == 200 and response.headers["To-Path"] == str(A) and response.headers["From-Path"] == str(B)


def test_success_report_decides_delivery() -> None:
    a, b = endpoints(chunk_size=4)
    mid = a.send_message(b"0123456789", success_report=True)
    b.receive_data(a.data_to_send())
    out = frames(b.data_to_send())
    assert [f.code for f in out[:3]] == [200, 200, 200]
    [report] = out[3:]
    assert report.method == "REPORT" and report.status == (200, "OK") and report.byte_range == (1, 10, 10)
    a.receive_data(b"".join(f.serialize() for f in out[:3]))
    assert a.next_events() == []  # 200s alone do not count when a success report was asked for
    a.receive_data(report.serialize())
    assert a.next_events() == [MessageDelivered(mid, 200, "OK")]


def test_negative_response_means_not_delivered_and_stops_the_chunks() -> None:
    a, b = endpoints(chunk_size=2, max_message_size=4)
    mid = a.send_message(b"0123456789")
    first = a.data_to_send(limit=1)  # one chunk only
    b.receive_data(first)
    [answer] = frames(b.data_to_send())
    assert answer.code == 413
    a.receive_data(answer.serialize())
    assert a.next_events() == [MessageNotDelivered(mid, 413, "Message too large")]
    assert not a.has_data_to_send()


def test_failure_report_rules_for_the_receiver() -> None:
    a, b = endpoints()
    a.send_message(b"x", failure_report="no")
    a.send_message(b"y", failure_report="partial")
    b.receive_data(a.data_to_send())
    assert [e.body for e in b.next_events()] == [b"x", b"y"]
    assert b.data_to_send() == b""  # no 200 for 'no' nor for 'partial'
    assert a.next_events() == []


def test_failure_report_partial_still_reports_errors() -> None:
    a = MSRPConnection([A], [MSRPURI.parse("msrp://127.0.0.1:7002/someone-else;tcp")])
    b = MSRPConnection([B], [A])
    mid = a.send_message(b"y", failure_report="partial")
    pump(a, b)
    assert a.next_events() == [MessageNotDelivered(mid, 481, "No Such Session")]


def test_failure_report_from_relay() -> None:
    a, _ = endpoints()
    mid = a.send_message(b"z")
    [send] = frames(a.data_to_send())
    a.receive_data(MSRPFrame(send.transaction_id, code=200, comment="OK").serialize())
    assert a.next_events() == [MessageDelivered(mid, 200, "OK")]
    b = MSRPConnection([A], [B])
    mid = b.send_message(b"z", success_report=True)
    b.data_to_send()
    report = MSRPFrame("rep1", "REPORT", headers={"To-Path": str(A), "From-Path": str(B), "Message-ID": mid,
                                                  "Byte-Range": "1-1/1", "Status": "000 408 Timeout"})
    b.receive_data(report.serialize())
    assert b.next_events() == [MessageNotDelivered(mid, 408, "Timeout")]


def test_wrong_to_path_gets_481_and_bad_requests_400_or_501() -> None:
    _, b = endpoints()
    base = {"To-Path": "msrp://127.0.0.1:7002/nobody;tcp", "From-Path": str(A), "Message-ID": "m1",
            "Byte-Range": "1-1/1", "Content-Type": "text/plain"}
    b.receive_data(MSRPFrame("t481", "SEND", headers=base, body=b"x").serialize())
    b.receive_data(MSRPFrame("t400", "SEND", headers={**base, "To-Path": str(B), "Byte-Range": "x"},
                             body=b"x").serialize())
    b.receive_data(MSRPFrame("t501", "NICKNAME", headers={**base, "To-Path": str(B)}).serialize())
    assert [(f.transaction_id, f.code) for f in frames(b.data_to_send())] == [("t481", 481), ("t400", 400),
                                                                             ("t501", 501)]
    assert b.next_events() == []


def test_empty_send_is_answered_without_an_event() -> None:
    a, b = endpoints()
    mid = a.send_message(b"")
    [frame] = frames(a.data_to_send())
    assert frame.body is None and frame.headers["Byte-Range"] == "1-0/0"
    b.receive_data(frame.serialize())
    assert b.next_events() == []
    a.receive_data(b.data_to_send())
    assert a.next_events() == [MessageDelivered(mid, 200, "OK")]


@given(st.binary(min_size=1, max_size=200), st.integers(1, 50), st.permutations(range(8)))
@settings(max_examples=100, deadline=None)
def test_reassembly_in_any_chunk_order(payload: bytes, chunk: int, order: list[int]) -> None:
    a, b = endpoints(chunk_size=chunk)
    mid = a.send_message(payload)
    chunks = frames(a.data_to_send())
    shuffled = [chunks[i] for i in order if i < len(chunks)] + chunks[8:]
    for frame in shuffled[:-1]:
        frame.continuation = "+"
    shuffled[-1].continuation = "$"  # whatever arrives last closes the message
    for frame in shuffled:
        b.receive_data(frame.serialize())
    received = [e for e in b.next_events() if isinstance(e, MessageReceived)]
    assert [(e.message_id, e.body) for e in received] == [(mid, payload)]


def test_aborted_message_is_dropped() -> None:
    a, b = endpoints(chunk_size=3)
    mid = a.send_message(b"abcdefghij")
    b.receive_data(a.data_to_send(limit=1))
    a.abort_message(mid)
    assert a.next_events() == [MessageNotDelivered(mid, 499, "Aborted locally")]
    b.receive_data(a.data_to_send())
    assert b.next_events() == [] and b._buffered == 0


def test_interleaved_messages_share_the_connection() -> None:
    a, b = endpoints(chunk_size=10)
    big = a.send_message(b"B" * 100)
    small = a.send_message(b"small")
    b.receive_data(a.data_to_send())
    assert [e.message_id for e in b.next_events()] == [small, big]  # the small one is not stuck behind


def test_oversized_declared_total_gets_413() -> None:
    a, b = endpoints(max_message_size=100)
    a.send_message(b"x" * 101)
    b.receive_data(a.data_to_send())
    assert [f.code for f in frames(b.data_to_send())] == [413]


def test_response_timeout_and_missing_report() -> None:
    clock = Clock()
    a = MSRPConnection([A], [B], clock=clock)
    lost = a.send_message(b"1")
    reported = a.send_message(b"2", success_report=True)
    sent = frames(a.data_to_send())
    a.receive_data(MSRPFrame(sent[1].transaction_id, code=200, comment="OK").serialize())
    clock.now = 29.0
    a.expire()
    assert a.next_events() == []
    assert a.next_timeout() == 30.0
    clock.now = 31.0
    a.expire()
    assert a.next_events() == [MessageNotDelivered(lost, 408, "Request Timeout"),
                               MessageNotDelivered(reported, 408, "No success report")]


def test_protocol_error_closes_and_fails_pending_messages() -> None:
    a, _ = endpoints()
    mid = a.send_message(b"pending")
    a.data_to_send()
    a.receive_data(b"garbage that is not msrp\r\n")
    events = a.next_events()
    assert isinstance(events[0], ProtocolError) and events[0].code == 400
    assert events[1:] == [MessageNotDelivered(mid, 408, "Connection closed"),
                          ConnectionClosed("Protocol error: bad first line 'garbage that is not msrp'")]
    assert a.closed
    with pytest.raises(ConnectionError):
        a.send_message(b"more")


def test_relay_paths_shape_the_to_path() -> None:
    relay = MSRPURI.parse("msrp://relay.example:2855/s1;tcp")
    remote = [MSRPURI.parse("msrp://relay2.example:2855/s2;tcp"), B]
    a = MSRPConnection([relay, A], remote)
    a.send_message(b"x")
    [frame] = frames(a.data_to_send())
    assert frame.to_path == [relay, *remote] and frame.from_path == [A]
    # What a relay forwards to us: To-Path is our URI alone, From-Path the relays then the sender.
    b = MSRPConnection([MSRPURI.parse("msrp://relay2.example:2855/s2;tcp"), B], [relay, A])
    forwarded = MSRPFrame("fwd1", "SEND", headers={"To-Path": str(B), "From-Path": f"{remote[0]} {relay} {A}",
                                                   "Message-ID": "m", "Byte-Range": "1-1/1",
                                                   "Success-Report": "yes", "Content-Type": "text/plain"},
                          body=b"x")
    b.receive_data(forwarded.serialize())
    response, report = frames(b.data_to_send())
    assert response.headers["To-Path"] == str(remote[0])  # hop by hop: back to the previous hop
    assert report.headers["To-Path"] == f"{remote[0]} {relay} {A}"  # end to end: back along the whole path


def test_reading_into_the_connection_buffer_reassembles_once_and_leaks_no_views() -> None:
    a, b = endpoints(chunk_size=70_000)
    payload = bytes(range(251)) * 1000
    mid = a.send_message(payload)
    small = a.send_message(b"one chunk")
    stream = a.data_to_send()
    pos = 0
    while pos < len(stream):
        view = b.get_buffer(-1)
        n = min(len(view), len(stream) - pos, 50_000)
        view[:n] = stream[pos:pos + n]
        pos += n
        b.buffer_updated(n)
    events = [e for e in b.next_events() if isinstance(e, MessageReceived)]
    assert [(e.message_id, e.body) for e in events] == [(small, b"one chunk"), (mid, payload)]
    assert type(events[0].body) is bytes and type(events[1].body) is bytearray  # no copy of the whole
    assert events[0].frame.body == b"one chunk" and events[1].frame.body is None
    assert b._parser.get_buffer(10 ** 7)  # nothing still borrows the parser buffer: it can grow in place
    a.receive_data(b.data_to_send())
    assert MessageDelivered(mid, 200, "OK") in a.next_events()


def send_chunk(tid: str, message_id: str, byte_range: str, body: bytes, flag: str = "+") -> bytes:
    return (f"MSRP {tid} SEND\r\nTo-Path: {A}\r\nFrom-Path: {B}\r\nMessage-ID: {message_id}\r\n"
            f"Byte-Range: {byte_range}\r\nContent-Type: text/plain\r\n\r\n").encode() + body + \
        f"\r\n-------{tid}{flag}\r\n".encode()


def test_a_far_byte_range_start_counts_against_the_reassembly_cap() -> None:
    a = MSRPConnection([A], [B], max_message_size=1000)
    a.receive_data(send_chunk("far1", "m1", "601-610/*", b"0123456789"))  # holds 610 bytes: the gap is zeroed
    a.receive_data(send_chunk("far2", "m2", "601-610/*", b"0123456789"))  # 1,220 in all: refused
    a.receive_data(send_chunk("near", "m3", "1-300/*", b"n" * 300))  # 910: fits
    assert [f.code for f in frames(a.data_to_send())] == [200, 413, 200]
    a.receive_data(send_chunk("more", "m1", "611-700/*", b"m" * 90))  # m1 grows by its own 90 bytes only
    a.receive_data(send_chunk("over", "m3", "301-400/*", b"o" * 100))  # 1,010: m3 is dropped with its 300
    assert [f.code for f in frames(a.data_to_send())] == [200, 413]
    a.receive_data(send_chunk("last", "m1", "1-600/700", b"s" * 600, "$"))
    (received,) = a.next_events()
    assert received.body == b"s" * 600 + b"0123456789" + b"m" * 90


def test_messages_in_progress_are_counted() -> None:
    a = MSRPConnection([A], [B], max_partial_messages=3)
    for n in range(4):
        a.receive_data(send_chunk(f"part{n}", f"m{n}", "1-1/2", b"x"))
    assert [(f.code, f.comment) for f in frames(a.data_to_send())] == \
        [(200, "OK")] * 3 + [(413, "Too many messages in progress")]
    a.receive_data(send_chunk("end0", "m0", "2-2/2", b"y", "$"))  # m0 completes: a place frees up
    a.receive_data(send_chunk("part9", "m9", "1-1/2", b"x"))
    assert [f.code for f in frames(a.data_to_send())] == [200, 200]
    assert [bytes(e.body) for e in a.next_events()] == [b"xy"]


def test_a_sender_interleaves_at_most_max_interleaved_messages() -> None:
    """Many large messages at once never exceed what a receiver takes in progress (MAX_PARTIAL_MESSAGES)."""
    a, b = endpoints(chunk_size=10)
    contents = [bytes([n]) * 100 for n in range(MAX_INTERLEAVED * 3)]
    ids = [a.send_message(content) for content in contents]
    in_progress: set[str | None] = set()
    most = 0
    while a.has_data_to_send():
        data = a.data_to_send(limit=1)
        for frame in frames(data):
            (in_progress.discard if frame.continuation == "$" else in_progress.add)(frame.message_id)
            most = max(most, len(in_progress))
        b.receive_data(data)
        a.receive_data(b.data_to_send())
    assert most == MAX_INTERLEAVED <= MAX_PARTIAL_MESSAGES
    assert sorted(e.message_id for e in a.next_events() if isinstance(e, MessageDelivered)) == sorted(ids)
    assert sorted(bytes(e.body) for e in b.next_events()) == contents
