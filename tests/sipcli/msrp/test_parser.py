"""MSRP framing: parse(serialize(x)) == x, any split of the stream gives the same frames, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipcli.msrp.message import FrameError, MSRPFrame, parse_byte_range
from sipcli.msrp.parser import MAX_BODY_SIZE, MAX_HEADER_COUNT, MAX_HEADER_SIZE, READ_SIZE, MSRPParser, ParseError

TID = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=32).filter(lambda t: t[0].isalnum())
VALUE = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters=":"), min_size=1,
                max_size=40)
HEADER_NAMES = st.sampled_from(["Message-ID", "Byte-Range", "Success-Report", "Failure-Report", "Status",
                                "Use-Path", "Expires", "WWW-Authenticate", "Authorization", "X-Extra"])


@st.composite
def frames(draw) -> MSRPFrame:
    tid = draw(TID)
    headers = {"To-Path": "msrp://b.example:2855/" + draw(TID) + ";tcp", "From-Path": "msrp://a.example/s;tcp"}
    for name in draw(st.lists(HEADER_NAMES, max_size=5, unique=True)):
        headers[name] = draw(VALUE)
    if draw(st.booleans()):
        frame = MSRPFrame(tid, code=draw(st.integers(100, 699)), comment=draw(st.none() | VALUE), headers=headers)
    else:
        frame = MSRPFrame(tid, draw(st.sampled_from(["SEND", "REPORT", "AUTH"])), headers=headers,
                          continuation=draw(st.sampled_from("+$#")))
        body = draw(st.none() | st.binary(max_size=300))
        if body is not None:
            frame.headers["Content-Type"] = "text/plain"
            frame.body = body.replace(b"-------" + tid.encode(), b"")
    return frame


def parse_all(data: bytes, cuts: list[int]) -> list:
    parser = MSRPParser()
    out, last = [], 0
    for cut in [*sorted(cuts), len(data)]:
        out += parser.feed(data[last:cut])
        last = cut
    return out


@given(st.lists(frames(), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_parse_of_serialize_is_identity(items: list[MSRPFrame]) -> None:
    data = b"".join(frame.serialize() for frame in items)
    assert MSRPParser().feed(data) == items


@given(st.lists(frames(), min_size=1, max_size=3), st.data())
@settings(max_examples=300, deadline=None)
def test_any_split_of_the_stream_gives_the_same_frames(items: list[MSRPFrame], data: st.DataObject) -> None:
    stream = b"".join(frame.serialize() for frame in items)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert parse_all(stream, cuts) == items


def test_byte_at_a_time() -> None:
    frame = MSRPFrame("abc123", "SEND", headers={"To-Path": "msrp://h/s;tcp", "From-Path": "msrp://g/t;tcp",
                                                 "Message-ID": "m", "Byte-Range": "1-5/5",
                                                 "Content-Type": "text/plain"}, body=b"hello")
    stream = frame.serialize() * 3
    assert parse_all(stream, list(range(len(stream)))) == [frame] * 3


def test_body_containing_an_end_line_of_another_transaction_and_a_longer_tid() -> None:
    body = b"x\r\n-------other$\r\n\r\n-------abc123z$\r\ny"
    frame = MSRPFrame("abc123", "SEND", headers={"Content-Type": "text/plain"}, body=body)
    assert MSRPParser().feed(frame.serialize()) == [frame]


def test_typed_headers() -> None:
    frame = MSRPFrame("t1x", "REPORT", headers={"To-Path": "msrp://a:1/x;tcp msrps://b:2/y;tcp",
                                                "Byte-Range": "1-*/*", "Status": "000 413 Too big",
                                                "Failure-Report": "partial", "Expires": "60"})
    assert [u.port for u in frame.to_path] == [1, 2] and frame.to_path[1].use_tls
    assert frame.byte_range == (1, None, None)
    assert frame.status == (413, "Too big")
    assert frame.failure_report == "partial" and not frame.success_report and frame.expires == 60
    with pytest.raises(FrameError):
        parse_byte_range("5-1/10")


@pytest.mark.parametrize(("data", "code"), [
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"MSRP x SEND\r\n-------x$\r\n", 400),  # transaction id too short
    (b"MSRP abcd send\r\n-------abcd$\r\n", 400),
    (b"MSRP abcd SEND\r\nTo-Path msrp://a/b;tcp\r\n-------abcd$\r\n", 400),
    (b"MSRP abcd SEND\r\nTo-Path: msrp://a/b;tcp\r\n-------dcba$\r\n", 400),
    (b"MSRP abcd SEND\r\nX: " + b"y" * 20000, 413),
    (b"MSRP abcd SEND\r\nContent-Type: a/b\r\n\r\n" + b"z" * 2000, 413),
])
def test_malformed_input_is_one_error_and_then_silence(data: bytes, code: int) -> None:
    parser = MSRPParser(max_body_size=1024)
    events = []
    for start in range(0, len(data), 7):
        events += parser.feed(data[start:start + 7])
    assert len(events) == 1 and isinstance(events[0], ParseError) and events[0].code == code
    assert parser.failed
    assert parser.feed(b"MSRP abcd 200 OK\r\n-------abcd$\r\n") == []


def read_all(parser: MSRPParser, data: bytes, sizes: list[int]) -> list:
    """Feed `data` the way asyncio.BufferedProtocol does: recv_into a get_buffer() view, then buffer_updated()."""
    out, pos, turn = [], 0, 0
    while pos < len(data):
        view = parser.get_buffer()
        n = min(len(view), len(data) - pos, sizes[turn % len(sizes)] if sizes else len(data))
        view[:n] = data[pos:pos + n]
        pos += n
        turn += 1
        for item in parser.buffer_updated(n):
            if isinstance(item, MSRPFrame) and isinstance(item.body, memoryview):
                item.body = item.body.tobytes()  # borrowed: valid only until the next call
            out.append(item)
    return out


@given(st.lists(frames(), min_size=1, max_size=4), st.lists(st.integers(1, 400), max_size=8), st.booleans())
@settings(max_examples=300, deadline=None)
def test_reading_into_the_parser_buffer_gives_the_same_frames(items: list[MSRPFrame], sizes: list[int],
                                                              copy_bodies: bool) -> None:
    stream = b"".join(frame.serialize() for frame in items)
    assert read_all(MSRPParser(copy_bodies=copy_bodies), stream, sizes) == items


def test_reads_of_a_large_body_stop_at_its_end_line() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    tid = "big1"
    frames_ = [MSRPFrame(tid, "SEND", headers={"Byte-Range": f"{1 + i * len(body)}-{(i + 1) * len(body)}/*",
                                               "Content-Type": "a/b"}, body=body, continuation="+")
               for i in range(3)]
    stream = b"".join(frame.serialize() for frame in frames_)
    parser = MSRPParser(copy_bodies=False)
    views = []
    pos = 0
    while pos < len(stream):
        view = parser.get_buffer()
        views.append(len(view))
        n = min(len(view), len(stream) - pos)
        view[:n] = stream[pos:pos + n]
        pos += n
        for frame in parser.buffer_updated(n):
            assert frame.body == body
    # Once a header block is parsed, reads stop exactly at the end of its frame, so the next frame starts at
    # the front of an empty buffer, which therefore never outgrows one frame.
    longest = max(len(frame.serialize()) for frame in frames_)
    assert max(views) <= longest and len(parser._buf) <= longest


def test_a_borrowed_body_kept_by_the_caller_survives_the_buffer_growing() -> None:
    parser = MSRPParser(copy_bodies=False)
    first = MSRPFrame("keep1", "SEND", headers={"Content-Type": "a/b"}, body=b"kept")
    [frame] = parser.feed(first.serialize())
    held = frame.body
    big = MSRPFrame("next1", "SEND", headers={"Content-Type": "a/b"}, body=b"y" * 600_000)
    assert [f.body.tobytes() for f in parser.feed(big.serialize())] == [big.body]
    assert held.tobytes() == b"kept"  # the parser moved to a new buffer instead of resizing under the view


def test_a_claimed_chunk_size_alone_does_not_grow_the_buffer() -> None:
    parser = MSRPParser(copy_bodies=False)
    head = b"MSRP huge1 SEND\r\nByte-Range: 1-16000000/16000000\r\nContent-Type: a/b\r\n\r\nxyz"
    view = parser.get_buffer()
    view[:len(head)] = head
    assert parser.buffer_updated(len(head)) == []
    assert len(parser.get_buffer()) <= 4 * READ_SIZE and len(parser._buf) <= 5 * READ_SIZE


def test_header_lines_are_counted() -> None:
    def frame(count: int) -> bytes:
        lines = "".join(f"X-{n}: {n}\r\n" for n in range(count))
        return f"MSRP abcd SEND\r\n{lines}-------abcd$\r\n".encode()

    assert len(MSRPParser(max_header_count=8).feed(frame(8))[0].headers) == 8
    (error,) = MSRPParser(max_header_count=8).feed(frame(9))
    assert isinstance(error, ParseError) and error.code == 400 and "8 header lines" in error.reason
    assert (MAX_HEADER_SIZE, MAX_HEADER_COUNT, MAX_BODY_SIZE) == (16 * 1024, 64, 16 * 1024 * 1024)  # as documented
