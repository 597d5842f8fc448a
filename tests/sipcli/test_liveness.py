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
    monitor = PeerMonitor(10, now=0)
    monitor.rtp_expected(True, now=0)
    monitor.rtp_expected(False, now=5)  # held
    assert run(monitor, 6, 14) == []
    assert monitor.tick(15) == Probe()
    assert monitor.tick(16) is None  # one probe at a time
    monitor.probe_result(200, False, "OK", now=16)
    assert run(monitor, 17, 25) == []
    assert monitor.tick(26) == Probe()
    monitor.probe_result(405, False, "Method Not Allowed", now=26)  # any answer proves the peer is there
    monitor.rtp_expected(True, now=30)  # unheld: the peer has the whole timeout again
    assert run(monitor, 31, 39) == []
    assert isinstance(monitor.tick(40), PeerLost)


def test_failed_keepalives_lose_the_peer():
    for code, local, reason in [(408, True, "Request Timeout"), (481, False, "Call/Transaction Does Not Exist"),
                                (503, True, "Connection refused")]:
        monitor = PeerMonitor(10, now=0)
        assert monitor.tick(10) == Probe()
        monitor.probe_result(code, local, reason, now=11)
        lost = monitor.tick(12)
        assert isinstance(lost, PeerLost) and lost.code == code and lost.reason.startswith("peer lost: keep-alive")


def test_a_remote_503_is_an_answer():
    monitor = PeerMonitor(10, now=0)
    assert monitor.tick(10) == Probe()
    monitor.probe_result(503, False, "Service Unavailable", now=11)
    assert monitor.tick(12) is None


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
