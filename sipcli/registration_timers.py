"""When a registration is refreshed and when a failed one is tried again (plain arithmetic, no engine).

Refreshes have one owner, ``Registration`` (sipcli.registration): it re-registers at ``refresh_delay(expires)``
after each success. pjsip arms its own refresh timer on every 2xx too (pjsua always registers with auto-refresh;
that timer fires at max(5 s, expires - delayBeforeRefreshSec)). It is set to fire 1 s before expiry
(``PJSIP_REFRESH_MARGIN``), always after ours; sending our REGISTER cancels it (pjsip_regc_register does) and
only a 2xx re-arms it, so it never fires: one REGISTER per interval. (Before, both fell due at 5 s for
``--expires 10`` and a second REGISTER followed the first within 2 ms.)

Retries after a failure (no other route left to try) back off 5, 10, 20 s and then stay at ``MAX_RETRY_DELAY``
(30 s): a registrar that comes back after an outage is registered with again within 30 s. A ``Retry-After`` in
the failure response is honoured instead, within 1 s and ``MAX_RETRY_AFTER`` (300 s).
"""

from __future__ import annotations

import re

__all__ = ["FIRST_RETRY_DELAY", "MAX_REFRESH_LEAD", "MAX_RETRY_AFTER", "MAX_RETRY_DELAY", "PJSIP_REFRESH_MARGIN",
           "refresh_delay", "retry_after", "retry_delay"]

FIRST_RETRY_DELAY = 5.0
MAX_RETRY_DELAY = 30.0
MAX_RETRY_AFTER = 300.0
MAX_REFRESH_LEAD = 60.0  # refresh this long before expiry at most: a REGISTER may take 32 s (Timer F)
PJSIP_REFRESH_MARGIN = 1  # pjsip's own refresh: this many seconds before expiry (AccountConfig delayBeforeRefreshSec)
_RETRY_AFTER = re.compile(r"^retry-after[ \t]*:[ \t]*(\d{1,10})", re.IGNORECASE | re.MULTILINE)


def refresh_delay(granted: float, requested: float | None = None) -> float:
    """Seconds after a successful REGISTER before refreshing it: half way through the lifetime (the granted one,
    or the requested one if shorter, as pjsip counts), and at most MAX_REFRESH_LEAD ahead of expiry; always
    before pjsip's own timer."""
    lifetime = min(granted, requested) if requested else granted
    return max(lifetime / 2, lifetime - MAX_REFRESH_LEAD)


def retry_delay(failures: int, retry_after_seconds: int | None = None) -> float:
    """Seconds before the next attempt after `failures` failures in a row (1 for the first): the response's
    Retry-After when it has one, else FIRST_RETRY_DELAY doubling up to MAX_RETRY_DELAY."""
    if retry_after_seconds is not None:
        return float(min(MAX_RETRY_AFTER, max(1, retry_after_seconds)))
    return min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * 2 ** min(max(failures, 1) - 1, 16))


def retry_after(message: str) -> int | None:
    """The Retry-After seconds of a SIP response (None when it has none)."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    match = _RETRY_AFTER.search(head)
    return int(match.group(1)) if match is not None else None
