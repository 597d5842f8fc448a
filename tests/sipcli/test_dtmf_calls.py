"""DTMF between two long-lived library-driven processes (tests/support/peer.py): several calls in a row, and a
digit sent just before a hold."""

from __future__ import annotations

import time

import pytest

from tests.support.peer import LibraryPeer, caller_and_callee

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

# pjsua closes a sound device idle this long (1 s) and with it the bridge clock; the calls below are spaced wider.
IDLE_BETWEEN_CALLS = 1.5


@pytest.fixture
def peers(tmp_path):
    yield from caller_and_callee(tmp_path, "SIPApplicationDidStart")


def _call(caller: LibraryPeer, callee: LibraryPeer, uri: str) -> tuple[int, int]:
    marks = caller.mark(), callee.mark()
    caller.run(f"session = Session(account); result = session.connect({uri!r}, audio=True)")
    caller.wait_for("SIPSessionDidStart", start=marks[0])
    callee.wait_for("SIPSessionDidStart", start=marks[1])
    return marks


def _digits(peer: LibraryPeer, start: int) -> list[str]:
    return [event["data"]["digit"] for event in peer.find("SIPSessionGotDTMF", start=start)]


def _end(caller: LibraryPeer, callee: LibraryPeer, marks: tuple[int, int]) -> None:
    caller.run("result = session.end()")
    caller.wait_for("SIPSessionDidEnd", start=marks[0])
    callee.wait_for("SIPSessionDidEnd", start=marks[1])


@pytest.mark.parametrize("srtp", ["disabled", "optional"])
def test_dtmf_both_ways_on_every_call_of_long_lived_processes(peers, srtp):
    caller, callee, uri = peers
    for peer in (caller, callee):
        peer.run(f"account.rtp.srtp_encryption = {srtp!r}")
    for number, (sent, answered) in enumerate((("1", "7"), ("2", "8"), ("3", "9"))):
        if number:
            time.sleep(IDLE_BETWEEN_CALLS)
        marks = _call(caller, callee, uri)
        caller.run(f"result = session.send_dtmf({sent!r})")
        callee.run(f"result = sessions[-1].send_dtmf({answered!r})")
        callee.wait_for("SIPSessionGotDTMF", start=marks[1])
        caller.wait_for("SIPSessionGotDTMF", start=marks[0])
        assert _digits(callee, marks[1]) == [sent], f"call {number + 1}"
        assert _digits(caller, marks[0]) == [answered], f"call {number + 1}"
        _end(caller, callee, marks)


def test_digit_sent_just_before_hold_is_reported_once(peers):
    caller, callee, uri = peers
    marks = _call(caller, callee, uri)
    caller.run("async def hold_after_digit():\n"
               "    session.send_dtmf('9')\n"
               "    await asyncio.sleep(0.05)\n"
               "    await session.hold()\n"
               "result = hold_after_digit()")
    callee.wait_for("SIPSessionGotHoldRequest", start=marks[1])
    # A held caller still sends (sendonly): a later digit marks the end of whatever the hold could repeat.
    caller.run("result = session.send_dtmf('4')")
    callee.wait_until(lambda: "4" in _digits(callee, marks[1]))
    assert _digits(callee, marks[1]) == ["9", "4"]
    _end(caller, callee, marks)
