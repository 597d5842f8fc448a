"""Whether the peer of an established session is still there: a sans-IO monitor fed with what the session sees.

A peer can vanish without a word (killed, unplugged, a NAT binding gone): no BYE ever comes and the session would
last forever, holding one of the engine's few call slots. ``PeerMonitor`` declares it lost within about
``timeout`` seconds of its last sign of life:

- RTP is expected (audio active, not on hold either way) and neither an RTP packet nor an RTCP report arrived for
  ``timeout`` seconds. In silence pjsua sends about one RTP packet in 10 s, but RTCP every ~5 s: 30 s of
  nothing is a dead peer;
- no RTP is expected (held, chat only): in-dialog OPTIONS keep-alives ask instead. A 408 or 481 answer, a
  transport failure sending one, or no final answer within ``probe_wait`` seconds is a lost peer; any other
  answer proves it is there, and the next keep-alive goes out ``probe_interval`` seconds after it;
- the engine lost a SIP connection: every session probes at once (a peer whose process died has closed its TCP
  connection, and a new one to its contact is refused at once). Whoever opens and closes connections to us can
  trigger this, so a session still has at most one keep-alive in flight and sends at most one per tick.

The keep-alive's own wait is bounded here, not by pjsip: over UDP pjsip gives up on an unanswered request only
after 64*T1 = 32 s (Timer F), so a held call whose peer died would be reported ``timeout`` + 32 s later. Instead
``probe_wait`` is half the timeout, at most ``PROBE_WAIT_MAX``, and ``probe_interval`` the other part, so that the
last answer, the next keep-alive and its missed answer fit in ``timeout`` (plus the tick's granularity). By then
pjsip has retransmitted the OPTIONS at 0.5, 1.5, 3.5, 7.5 s (within 10 s): a live peer on a path that is not
losing most packets has answered. An answer that comes after the peer was declared lost changes nothing.

The session feeds it (``rtp_expected``, ``packets``, ``probe_result``, ``connection_lost``) and calls ``tick``
once a second; ``tick`` says what to do: nothing, ``Probe()`` (send a keep-alive) or ``PeerLost``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMEOUT", "PROBE_WAIT_MAX", "PeerLost", "PeerMonitor", "Probe"]

DEFAULT_TIMEOUT = 30.0  # setting rtp.timeout
PROBE_WAIT_MAX = 10.0  # longer only delays the verdict on a dead peer; pjsip's retransmissions are done by then
# Codes that say the dialog is gone: the request timed out (no answer at all), or the peer no longer knows it.
_DEAD_CODES = frozenset({408, 481})


@dataclass(frozen=True)
class Probe:
    """Send an in-dialog keep-alive (OPTIONS) now."""


@dataclass(frozen=True)
class PeerLost:
    """The peer is gone: end the session with this SIP-style code and reason."""

    code: int
    reason: str


class PeerMonitor:
    """One established session's view of its peer. Times are the caller's monotonic seconds; timeout 0 disables."""

    def __init__(self, timeout: float, now: float) -> None:
        self.timeout = timeout
        self.probe_wait = min(timeout / 2, PROBE_WAIT_MAX)
        self.probe_interval = timeout - self.probe_wait
        self._rtp_expected = False
        self._last_packets = 0
        self._last_rtp = now  # when RTP last arrived, or was last expected to start
        self._last_answer = now  # when a keep-alive was last answered, or keep-alives became due
        self._probe_sent: float | None = None  # when the keep-alive in flight went out
        self._probe_wanted = False
        self._lost: PeerLost | None = None

    def rtp_expected(self, expected: bool, now: float) -> None:
        """Audio is active and not held (True), or there is no RTP to wait for (held, removed, chat only)."""
        if expected and not self._rtp_expected:
            self._last_rtp = now  # the peer gets the whole timeout from the moment it should send
        if not expected and self._rtp_expected:
            self._last_answer = now
        self._rtp_expected = expected

    def packets(self, count: int, now: float) -> None:
        """RTP packets plus RTCP reports received so far (counts that only grow while the stream lives)."""
        if count != self._last_packets:
            self._last_packets = count
            self._last_rtp = now

    def connection_lost(self) -> None:
        """A SIP connection of the engine closed: check the peer at the next tick."""
        self._probe_wanted = True

    def probe_result(self, code: int, local: bool, reason: str, now: float) -> None:
        """The final answer to our keep-alive; local: pjsip made it up (a timeout or a transport error)."""
        if self._lost is not None:  # too late: the session is ending
            return
        self._probe_sent = None
        self._last_answer = now
        if code in _DEAD_CODES or (local and code >= 300):
            what = "no answer" if code == 408 else reason or str(code)
            self._lost = PeerLost(code, f"peer lost: keep-alive failed ({code} {what})")

    def tick(self, now: float) -> Probe | PeerLost | None:
        if self._lost is not None:
            return self._lost
        if self.timeout <= 0:
            return None
        if self._rtp_expected and now - self._last_rtp >= self.timeout:
            self._lost = PeerLost(408, f"peer lost: no RTP for {self.timeout:g} s")
            return self._lost
        if self._probe_sent is not None:
            if now - self._probe_sent >= self.probe_wait:
                self._lost = PeerLost(408, f"peer lost: no answer to the keep-alive within {self.probe_wait:g} s")
                return self._lost
            return None
        due = not self._rtp_expected and now - self._last_answer >= self.probe_interval
        if due or self._probe_wanted:
            self._probe_wanted = False
            self._probe_sent = now
            return Probe()
        return None
