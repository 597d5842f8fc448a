"""PeerMonitor: when an established session's peer counts as lost (sipcli.liveness), with a clock the test drives."""

from __future__ import annotations

from sipcli.liveness import PeerLost, PeerMonitor, Probe


def run(monitor: PeerMonitor, start: float, end: float) -> list[tuple[float, object]]:
    """tick once a second from start to end; the (time, action) pairs that were not None."""
    actions = []
    now = start
    while now <= end:
        action = monitor.tick(now)
        if action is not None:
            actions.append((now, action))
        now += 1
    return actions


def test_rtp_silence_beyond_the_timeout_loses_the_peer():
    monitor = PeerMonitor(30, now=0)
    monitor.rtp_expected(True, now=0)
    monitor.packets(50, now=10)
    assert run(monitor, 1, 39) == []
    assert monitor.tick(40) == PeerLost(408, "peer lost: no RTP for 30 s")
    assert monitor.tick(41) == PeerLost(408, "peer lost: no RTP for 30 s")  # it stays lost


def test_any_change_of_the_counters_is_activity_even_a_restart():
    monitor = PeerMonitor(5, now=0)
    monitor.rtp_expected(True, now=0)
    for now in range(1, 20):
        monitor.packets(1000 + now if now < 10 else now - 10, now)  # the stream was recreated at 10 s
        assert monitor.tick(now) is None


def test_hold_stops_the_rtp_timeout_and_sends_keepalives():
    monitor = PeerMonitor(10, now=0)  # a keep-alive waits 5 s for its answer; the next goes out 5 s after one
    monitor.rtp_expected(True, now=0)
    monitor.rtp_expected(False, now=5)  # held
    assert run(monitor, 6, 9) == []
    assert monitor.tick(10) == Probe()
    assert monitor.tick(11) is None  # one probe at a time
    monitor.probe_result(200, False, "OK", now=11)
    assert run(monitor, 12, 15) == []
    assert monitor.tick(16) == Probe()
    monitor.probe_result(405, False, "Method Not Allowed", now=16)  # any answer proves the peer is there
    monitor.rtp_expected(True, now=20)  # unheld: the peer has the whole timeout again
    assert run(monitor, 21, 29) == []
    assert isinstance(monitor.tick(30), PeerLost)


def test_the_probe_wait_and_interval_share_the_timeout():
    for timeout, wait in [(1, 0.5), (3, 1.5), (20, 10), (30, 10), (120, 10)]:
        monitor = PeerMonitor(timeout, now=0)
        assert (monitor.probe_wait, monitor.probe_interval) == (wait, timeout - wait)


def test_a_held_peer_that_dies_is_lost_within_the_timeout():
    """Whenever in the keep-alive cycle the peer dies, it is declared lost at most two ticks (one to send the
    keep-alive, one to see it unanswered) after the timeout; pjsip's Timer F would take 32 s more over UDP."""
    for timeout in (1, 3, 10, 30, 60):
        for quarter in range(4 * 2 * timeout):
            died = quarter / 4
            monitor = PeerMonitor(timeout, now=0)  # chat only, or held from the start
            for now in range(1, 200):
                action = monitor.tick(now)
                if isinstance(action, PeerLost):
                    break
                if isinstance(action, Probe) and now < died:
                    monitor.probe_result(200, False, "OK", now + 0.01)  # alive: it answers at once
            assert died < now <= died + timeout + 2, (timeout, died, now)
            wait = min(timeout / 2, 10)
            assert action == PeerLost(408, f"peer lost: no answer to the keep-alive within {wait:g} s")


def test_an_answer_within_the_probe_wait_keeps_the_peer():
    monitor = PeerMonitor(30, now=0)
    assert run(monitor, 1, 19) == []
    assert monitor.tick(20) == Probe()
    assert run(monitor, 21, 29) == []
    monitor.probe_result(200, False, "OK", now=29.5)  # pjsip's fifth transmission got through
    assert run(monitor, 30, 49) == []
    assert monitor.tick(50) == Probe()


def test_a_late_answer_does_not_bring_the_peer_back():
    monitor = PeerMonitor(30, now=0)
    assert monitor.tick(20) == Probe()
    lost = PeerLost(408, "peer lost: no answer to the keep-alive within 10 s")
    assert monitor.tick(30) == lost
    monitor.probe_result(200, False, "OK", now=31)
    assert monitor.tick(32) == lost
    monitor.probe_result(408, True, "Request Timeout", now=52)  # pjsip's own Timer F, 32 s after sending
    assert monitor.tick(53) == lost


def test_a_probe_for_a_lost_connection_waits_no_longer_while_rtp_flows():
    monitor = PeerMonitor(30, now=0)
    monitor.rtp_expected(True, now=0)
    monitor.connection_lost()
    assert monitor.tick(1) == Probe()
    for now in range(2, 11):
        monitor.packets(now, now)  # RTP still arrives (from a peer that no longer answers SIP)
        assert monitor.tick(now) is None
    assert monitor.tick(11) == PeerLost(408, "peer lost: no answer to the keep-alive within 10 s")


def test_failed_keepalives_lose_the_peer():
    for code, local, reason in [(408, True, "Request Timeout"), (481, False, "Call/Transaction Does Not Exist"),
                                (503, True, "Connection refused")]:
        monitor = PeerMonitor(10, now=0)
        assert monitor.tick(5) == Probe()
        monitor.probe_result(code, local, reason, now=6)
        lost = monitor.tick(7)
        assert isinstance(lost, PeerLost) and lost.code == code and lost.reason.startswith("peer lost: keep-alive")


def test_a_remote_503_is_an_answer():
    monitor = PeerMonitor(10, now=0)
    assert monitor.tick(5) == Probe()
    monitor.probe_result(503, False, "Service Unavailable", now=6)
    assert monitor.tick(7) is None


def test_a_lost_connection_probes_at_once_even_while_rtp_flows():
    monitor = PeerMonitor(30, now=0)
    monitor.rtp_expected(True, now=0)
    monitor.connection_lost()
    assert monitor.tick(1) == Probe()
    assert monitor.tick(2) is None


def test_timeout_zero_disables_everything():
    monitor = PeerMonitor(0, now=0)
    monitor.rtp_expected(True, now=0)
    monitor.connection_lost()
    assert run(monitor, 1, 1000) == []
