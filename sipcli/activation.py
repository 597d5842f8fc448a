"""What activating an account starts on the running engine, and deactivating stops.

Every account gets its ``Registration`` (a pj.Account, and REGISTER when the account registers); the
BonjourAccount also publishes and browses mDNS services when its discovery settings ask (``sipcli.bonjour``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sipcli import bonjour, registration
from sipcli.registration import Registration

__all__ = ["activate", "deactivate", "is_current", "restart_registration"]


def activate(account: Any) -> asyncio.Future:
    """Called by account.activate(): the account's Registration, and the BonjourAccount's mDNS services. The
    future resolves once the account can place calls (its pj.Account exists)."""
    active = registration.activate(account)
    if not hasattr(account, "sip"):  # the BonjourAccount
        bonjour.activate(account)
    return active.ready


def is_current(account: Any, ready: asyncio.Future) -> bool:
    """Whether ready belongs to the account's current activation (not one deactivated since)."""
    active = registration.registration_of(account)
    return active is not None and active.ready is ready


def restart_registration(account: Any) -> Registration:
    """An active account's registration settings changed: unregister (in the background) and start anew."""
    registration.deactivate(account)
    return registration.activate(account)


def deactivate(account: Any, timeout: float = 2.0) -> asyncio.Future | None:
    """Unregister and drop the account's pj.Account, and withdraw its Bonjour services; the future resolves
    when done (None if nothing was active)."""
    pending = [future for future in (registration.deactivate(account, timeout), bonjour.deactivate(account))
               if future is not None]
    return asyncio.gather(*pending) if len(pending) > 1 else pending[0] if pending else None
