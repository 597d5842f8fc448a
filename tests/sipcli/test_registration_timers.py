"""Refresh and retry timing of registrations (sipcli.registration_timers), as plain arithmetic."""

from __future__ import annotations

from sipcli.registration_timers import (
    MAX_REFRESH_LEAD,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    PJSIP_REFRESH_MARGIN,
    refresh_delay,
    retry_after,
    retry_delay,
)

PJSIP_MIN_REFRESH = 5  # PJSIP_REGISTER_CLIENT_DELAY_BEFORE_REFRESH: pjsip's refresh timer never fires sooner


def pjsip_refresh_at(granted: int, requested: int) -> int:
    """When pjsip's own refresh timer fires after a 2xx (sip_reg.c schedule_registration)."""
    return max(PJSIP_MIN_REFRESH, min(granted - PJSIP_REFRESH_MARGIN, requested))


def test_our_refresh_always_comes_before_pjsips():
    for requested in (1, 2, 3, 5, 9, 10, 11, 19, 20, 30, 60, 120, 600, 3600, 86400):
        for granted in {1, 2, 5, 10, requested // 2 or 1, requested}:
            delay = refresh_delay(granted, requested)
            assert 0 < delay < granted, (granted, delay)
            assert delay < pjsip_refresh_at(granted, requested), (requested, granted, delay)


def test_refresh_leaves_time_for_a_slow_register_on_long_registrations():
    assert refresh_delay(10) == 5 and refresh_delay(60) == 30
    assert refresh_delay(3600) == 3600 - MAX_REFRESH_LEAD
    assert all(granted - refresh_delay(granted) >= 32 for granted in range(64, 5000))  # Timer F: 32 s


def test_retries_back_off_to_a_cap():
    assert [retry_delay(n) for n in range(1, 8)] == [5, 10, 20, 30, 30, 30, 30]
    assert retry_delay(10**6) == MAX_RETRY_DELAY  # no overflow however long the outage


def test_retry_after_is_honoured_within_bounds():
    assert retry_delay(1, 2) == 2 and retry_delay(5, 120) == 120
    assert retry_delay(1, 0) == 1 and retry_delay(1, 10**9) == MAX_RETRY_AFTER
    response = "SIP/2.0 503 Service Unavailable\r\nVia: x\r\nretry-after: 17 (maintenance);duration=5\r\n\r\n"
    assert retry_after(response) == 17
    assert retry_after("SIP/2.0 503 Service Unavailable\r\n\r\nRetry-After: 9") is None  # a body is no header
    assert retry_after("SIP/2.0 503 x\r\nRetry-After: soon\r\n\r\n") is None
