"""When a registration is refreshed (plain arithmetic, no engine).

Refreshes have one owner, ``Registration`` (sipcli.registration): it re-registers at ``refresh_delay(expires)``
after each success. pjsip arms its own refresh timer on every 2xx too (pjsua always registers with auto-refresh;
that timer fires at max(5 s, expires - delayBeforeRefreshSec)). It is set to fire 1 s before expiry
(``PJSIP_REFRESH_MARGIN``), always after ours; sending our REGISTER cancels it (pjsip_regc_register does) and
only a 2xx re-arms it, so it never fires: one REGISTER per interval. (Before, both fell due at 5 s for
``--expires 10`` and a second REGISTER followed the first within 2 ms.)
"""

from __future__ import annotations

__all__ = ["MAX_REFRESH_LEAD", "PJSIP_REFRESH_MARGIN", "refresh_delay"]

MAX_REFRESH_LEAD = 60.0  # refresh this long before expiry at most: a REGISTER may take 32 s (Timer F)
PJSIP_REFRESH_MARGIN = 1  # pjsip's own refresh: this many seconds before expiry (AccountConfig delayBeforeRefreshSec)


def refresh_delay(granted: float, requested: float | None = None) -> float:
    """Seconds after a successful REGISTER before refreshing it: half way through the lifetime (the granted one,
    or the requested one if shorter, as pjsip counts), and at most MAX_REFRESH_LEAD ahead of expiry; always
    before pjsip's own timer."""
    lifetime = min(granted, requested) if requested else granted
    return max(lifetime / 2, lifetime - MAX_REFRESH_LEAD)
