"""pjsua2 side of pager mode (RFC 3428 MESSAGE): sending through pj.Buddy, receiving through pj.Account callbacks.

Everything here runs on the pjsua thread (see ``sipcli.pjsua.engine``). pjsua2 hands no per-request token back from
``Buddy.sendInstantMessage`` to ``Account.onInstantMessageStatus`` that Python can set, so outcomes are matched to
requests by (target URI, body), oldest first: two identical requests to one target may swap outcomes, which
nobody can tell apart. Each outcome goes to the sender's callback on the loop thread as a ``MessageStatus``.
Incoming requests are copied as bytes (pjsua2 hands them over as surrogate-escaped text) and reported as
``PagerRequest`` events: an account's to its ``AccountDriver.on_event``, one inside a call's dialog to its
``CallDriver``.
"""

from __future__ import annotations

import collections
import functools
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sipcli.pjsua.engine import Engine
from sipcli.pjsua.events import MessageStatus, PagerRequest

if TYPE_CHECKING:
    from sipcli.pjsua.account import AccountDriver, AccountParams

__all__ = ["PagerAccountMixin", "PagerCallMixin", "PagerError", "hold_account", "pj_send"]

log = logging.getLogger(__name__)

MAX_BUDDIES = 64  # pjsua's PJSUA_MAX_BUDDIES is 256; the least recently used target is dropped beyond this
PJSIP_EMSGTOOLONG = 171023

StatusCallback = Callable[[MessageStatus], None]  # called on the loop thread


class PagerError(Exception):
    """pjsua refused to send a MESSAGE (too large, bad URI, no transport, no active account)."""


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class PagerAccountMixin:
    """Mixed into the engine's pj.Account subclasses: ``driver`` is the AccountDriver whose ``on_event`` gets
    what the account receives."""

    driver: AccountDriver

    def onInstantMessage(self, prm: Any) -> None:
        Engine().post(self.driver.on_event, PagerRequest(_raw(prm.rdata.wholeMsg), False))

    def onTypingIndication(self, prm: Any) -> None:
        Engine().post(self.driver.on_event, PagerRequest(_raw(prm.rdata.wholeMsg), True))

    def onInstantMessageStatus(self, prm: Any) -> None:
        whole = _raw(prm.rdata.wholeMsg) if prm.rdata is not None else b""
        _pager.settle(str(prm.toUri), str(prm.msgBody), int(prm.code), str(prm.reason), whole)


class PagerCallMixin:
    """Mixed into the engine's pj.Call subclass: a MESSAGE inside a call's dialog (pjsua answers it 200 too) is
    reported to the call's driver like any other."""

    driver: Any  # CallDriver

    def onInstantMessage(self, prm: Any) -> None:
        self.driver.post(PagerRequest(_raw(prm.rdata.wholeMsg), False))

    def onTypingIndication(self, prm: Any) -> None:
        self.driver.post(PagerRequest(_raw(prm.rdata.wholeMsg), True))


class _Pager:
    """pjsua-thread state: one pj.Buddy per target URI (LRU) and the requests waiting for their final status."""

    def __init__(self) -> None:
        self.buddies: collections.OrderedDict[tuple[int, str], Any] = collections.OrderedDict()
        self.pending: collections.OrderedDict[int, tuple[Any, str, str, StatusCallback]] = collections.OrderedDict()
        self.held: list[Any] = []  # pj.Accounts whose shutdown waits for their MESSAGEs (see hold_account)
        self.routed: dict[tuple[Any, AccountParams], Any] = {}  # (owner, route params) -> pj.Account along it
        self._ids = 0
        self._hooked = False

    def route_account(self, owner: Any, pj_account: Any, params: AccountParams) -> Any:
        """A pj.Account of owner (whose own is pj_account) made with params: one that never registers and sends
        along their route (made once per owner and params)."""
        from sipcli.pjsua.account import AccountDriver  # account.py imports this module

        key = (owner, params)
        routed = self.routed.get(key)
        if routed is None:
            routed = _route_account_class()(pj_account.driver)
            routed.create(AccountDriver.config(params), False)
            self.routed[key] = routed
            self.hook()
        return routed

    def buddy(self, pj_account: Any, uri: str) -> Any:
        import pjsua2 as pj

        key = (id(pj_account), uri)
        buddy = self.buddies.get(key)
        if buddy is not None:
            self.buddies.move_to_end(key)
            return buddy
        while len(self.buddies) >= MAX_BUDDIES:
            self.buddies.popitem(last=False)
        config = pj.BuddyConfig()
        config.uri = uri
        config.subscribe = False
        buddy = pj.Buddy()
        buddy.create(pj_account, config)
        self.buddies[key] = buddy
        self.hook()
        return buddy

    def hook(self) -> None:
        if not self._hooked:
            self._hooked = True
            Engine().add_shutdown_hook(self.shutdown)

    def settle(self, uri: str, body: str, code: int, reason: str, whole: bytes) -> None:
        match = next((key for key, (_, to, text, _) in self.pending.items() if to == uri and text == body), None)
        if match is None:
            match = next(iter(self.pending), None)
        if match is None:
            log.debug("MESSAGE status %d for %r matches no request", code, uri)
            return
        pj_account, _, _, on_status = self.pending.pop(match)
        Engine().post(on_status, MessageStatus(code, reason, whole))
        if pj_account in self.held and not self.busy(pj_account):
            self.held.remove(pj_account)
            pj_account.shutdown()

    def busy(self, pj_account: Any) -> bool:
        return any(entry[0] is pj_account for entry in self.pending.values())

    def hold_account(self, pj_account: Any) -> bool:
        """Whether the pager keeps pj_account alive (its owner must not shut it down) until its MESSAGEs end.

        pjsua2 asserts (and aborts the process) when a MESSAGE transaction ends after its account was deleted;
        libDestroy ends pending transactions (503) before it deletes the accounts, so held accounts are safe."""
        for key in [key for key in self.buddies if key[0] == id(pj_account)]:
            del self.buddies[key]
        if not self.busy(pj_account):
            return False
        self.held.append(pj_account)
        return True

    def shutdown(self) -> None:
        """Engine shutdown hook: outstanding requests fail; buddies go before libDestroy. Held accounts outlive
        libDestroy (which ends their transactions first): their wrappers are handed to the C++ side, never
        deleted from Python after the library is gone."""
        engine = Engine()
        for pj_account in self.routed.values():
            if not self.hold_account(pj_account):
                pj_account.shutdown()
        self.routed.clear()
        for _, _, _, on_status in self.pending.values():
            engine.post(on_status, MessageStatus(0, "the SIP engine stopped", b""))
        self.pending.clear()
        self.buddies.clear()
        for pj_account in self.held:
            pj_account.__disown__()
        self.held.clear()
        self._hooked = False
        gc.collect()


_pager = _Pager()


@functools.cache
def _route_account_class() -> type:
    import pjsua2 as pj

    class RouteAccount(PagerAccountMixin, pj.Account):
        """A pj.Account that only sends MESSAGEs along one route (see _Pager.route_account)."""

        def __init__(self, driver: AccountDriver) -> None:
            super().__init__()
            self.driver = driver

    return RouteAccount


def pj_send(owner: Any, uri: str, route: AccountParams | None, content_type: str, text: str,
            headers: list[tuple[str, str]], on_status: StatusCallback) -> None:
    """Send one MESSAGE from owner (the middleware's account, whose ``pj_account`` slot holds its pj.Account) to
    uri: along route (the params of a non-registering pj.Account of owner), else as owner's pj.Account would.
    on_status(MessageStatus) runs on the loop thread once the status is final.

    Raises PagerError when pjsua refuses to send it (on_status is then not called)."""
    import pjsua2 as pj

    pj_account = getattr(owner, "pj_account", None)
    if pj_account is None:
        raise PagerError(f"account {owner.id} is not active")
    try:
        if route is not None:
            pj_account = _pager.route_account(owner, pj_account, route)
        buddy = _pager.buddy(pj_account, uri)
    except pj.Error as error:
        raise PagerError(f"cannot send to {uri}: {error.reason}") from None
    param = pj.SendInstantMessageParam()
    param.contentType = content_type
    param.content = text
    for name, value in headers:
        header = pj.SipHeader()
        header.hName = name
        header.hValue = value
        param.txOption.headers.append(header)
    _pager._ids += 1
    key = _pager._ids
    _pager.pending[key] = (pj_account, uri, text, on_status)
    try:
        buddy.sendInstantMessage(param)
    except pj.Error as error:
        # pjsua reported the failure through onInstantMessageStatus already (it fired inside the call): whatever
        # it said, the request was not sent, and the exception says why.
        _pager.pending.pop(key, None)
        if int(error.status) == PJSIP_EMSGTOOLONG:
            size = len(text.encode("utf-8"))
            raise PagerError(f"the MESSAGE with a {size}-byte body is larger than the SIP engine's packet limit "
                             "(PJSIP_MAX_PKT_LEN): not sent") from None
        raise PagerError(f"cannot send to {uri}: {error.reason}") from None


def hold_account(pj_account: Any) -> bool:
    """Before an account's owner shuts pj_account down: True when the pager keeps it until its MESSAGEs end."""
    return _pager.hold_account(pj_account)
