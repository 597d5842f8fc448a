"""The pjsua side of an active account: its pj.Account, REGISTER sending, incoming INVITEs and MESSAGEs.

``AccountDriver`` is made on the loop thread by ``sipcli.registration`` and used through ``Engine.run``: its
methods run on the pjsua thread. It reports ``RegistrationStateChanged`` and ``PagerRequest`` (an incoming
MESSAGE, ``sipcli.pjsua.pager``) events to ``on_event`` on the loop thread. ``owner`` is the middleware's account,
opaque here but for one slot this layer fills: ``owner.pj_account`` holds the pj.Account while it exists (pjsua
thread), which is what ``MakeCall`` and pager-mode sending call from.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipcli.pjsua.call import CallDriver
from sipcli.pjsua.engine import Engine, EngineError
from sipcli.pjsua.events import AccountEvent, RegistrationStateChanged
from sipcli.pjsua.media import SRTP_SUITES, apply_media_settings
from sipcli.pjsua.pager import PagerAccountMixin, hold_account
from sipcli.registration_timers import PJSIP_REFRESH_MARGIN

__all__ = ["AccountDriver", "AccountParams"]

log = logging.getLogger(__name__)

_PJ_SRTP = {"disabled": 0, "optional": 1, "mandatory": 2}  # PJMEDIA_SRTP_DISABLED / OPTIONAL / MANDATORY


@dataclass(frozen=True)
class AccountParams:
    """Everything a pj.Account is created with, as plain data.

    route_uri/transport/contact/registrar_uri are None for an account that does not register (P2P); a pj.Account
    that sends along a route without registering (pager mode) has no registrar_uri. realm is the only digest realm
    the password answers (never "*": sipcli.digest says why)."""

    id_uri: str
    username: str
    password: str | None
    expires: int
    realm: str | None = None
    srtp: str = "disabled"
    registrar_uri: str | None = None
    route_uri: str | None = None
    transport: str | None = None
    contact: str | None = None


@functools.cache
def _pj_account_class() -> type:
    import pjsua2 as pj

    class PJAccount(PagerAccountMixin, pj.Account):
        """Reports registration state, hands incoming calls over, and pager-mode MESSAGEs (PagerAccountMixin)
        (pjsua thread)."""

        def __init__(self, driver: AccountDriver) -> None:
            super().__init__()
            self.driver = driver

        def onRegState(self, prm: Any) -> None:
            engine = Engine()
            code, reason, expiration, status = int(prm.code), str(prm.reason), int(prm.expiration), int(prm.status)
            message = prm.rdata.wholeMsg if prm.rdata is not None else ""
            error = engine.endpoint.utilStrError(status) if status != 0 else ""
            engine.post(self.driver.on_event, RegistrationStateChanged(code, reason, expiration, error, message))

        def onIncomingCall(self, prm: Any) -> None:
            engine = Engine()
            call_id, message = int(prm.callId), str(prm.rdata.wholeMsg)
            hook = engine.incoming_call_hook
            if hook is not None:
                driver = CallDriver.incoming(self, call_id)
                answer = hook(self.driver.owner, driver, message)
                code, reason = answer if isinstance(answer, tuple) else (answer, "")
                driver.answer_now(code, reason)
                return
            # Nobody takes calls in this process: refuse at once, and let the Call go (nothing keeps it). A hang-up
            # (not answer()) is what sets the code: the Call's destructor would otherwise hang up with 603.
            call = pj.Call(self, call_id)
            refusal = pj.CallOpParam()
            refusal.statusCode = 480
            call.hangup(refusal)

    return PJAccount


class AccountDriver:
    """One pj.Account at a time for owner (recreated when the route changes); methods run on the pjsua thread."""

    def __init__(self, owner: Any, on_event: Callable[[AccountEvent], None]) -> None:
        self.owner = owner
        self.on_event = on_event
        self.pj_account: Any = None
        self._params: AccountParams | None = None

    def create(self, params: AccountParams) -> None:
        engine = Engine()
        pj_account = _pj_account_class()(self)
        pj_account.create(self.config(params), False)
        self.pj_account = pj_account
        self._params = params
        self.owner.pj_account = pj_account
        engine.add_account(pj_account)

    def route_account(self, route_uri: str, transport: str) -> Any:
        """A pj.Account like the owner's that sends every request along route_uri, for one outgoing call: pjsip
        routes by an account's proxies only (a Route header added to the INVITE is not used for sending). It
        does not register; calls that reach it go where the owner's go. The caller shuts it down (``drop``)."""
        if self._params is None:
            raise EngineError(f"account {getattr(self.owner, 'id', '')} is not active")
        if transport not in Engine().transport_ids:
            raise EngineError(f"no {transport} transport is enabled")
        return self._sending_account(dataclasses.replace(self._params, registrar_uri=None, route_uri=route_uri,
                                                         transport=transport, contact=None))

    def sips_account(self) -> Any:
        """For one outgoing sips: call, a pj.Account like the owner's registered one whose Contact is sips: (RFC
        5630; pjsip ends a sips: dialog whose other side's Contact is not sips: with 480 "SIPS Required"), or None
        when the owner's pj.Account needs none: it registers on no TLS route, or it makes its Contacts itself
        (P2P: with a sips: identity, pjsua writes sips: Contacts on TLS). The registered Contact is forced on every
        request of the owner's pj.Account, REGISTER included, and stays sip:...;transport=tls there: the registrar
        reaches it for sip: calls too. The caller shuts the account down (``drop``), as a route_account."""
        params = self._params
        if params is None or params.contact is None or params.transport != "tls":
            return None
        contact = "sips:" + params.contact.removeprefix("sip:").replace(";transport=tls", "")
        return self._sending_account(dataclasses.replace(params, registrar_uri=None, contact=contact))

    def _sending_account(self, params: AccountParams) -> Any:
        """A non-registering pj.Account of the owner, made with params."""
        pj_account = _pj_account_class()(self)
        pj_account.create(self.config(params), False)
        Engine().add_account(pj_account)
        return pj_account

    @staticmethod
    def drop(pj_account: Any) -> None:
        """Shut down a pj.Account made by route_account or sips_account (its call is over)."""
        Engine().remove_account(pj_account)
        pj_account.shutdown()

    def register(self, params: AccountParams) -> None:
        """REGISTER along params' route (the pj.Account is remade for another route)."""
        if self.pj_account is None or self._params is None or self._params.route_uri != params.route_uri or \
                self._params.transport != params.transport:
            self.destroy()
            self.create(params)
        self.pj_account.setRegistration(True)

    def refresh(self) -> None:
        if self.pj_account is not None:
            self.pj_account.setRegistration(True)

    def unregister(self) -> bool:
        """Send the un-REGISTER; whether it was sent."""
        if self.pj_account is None:
            return False
        try:
            self.pj_account.setRegistration(False)
        except Exception as error:
            log.debug("unregister failed: %r", error)
            return False
        return True

    def destroy(self) -> None:
        pj_account = self.pj_account
        if pj_account is None:
            return
        self.pj_account = None
        self._params = None
        if getattr(self.owner, "pj_account", None) is pj_account:
            self.owner.pj_account = None
        Engine().remove_account(pj_account)
        if not hold_account(pj_account):
            pj_account.shutdown()

    @staticmethod
    def config(params: AccountParams) -> Any:
        """The pj.AccountConfig for params (pjsua thread)."""
        import pjsua2 as pj

        engine = Engine()
        config = pj.AccountConfig()
        config.idUri = params.id_uri
        config.regConfig.registerOnAdd = False
        config.regConfig.retryIntervalSec = 0
        config.regConfig.firstRetryIntervalSec = 0
        config.regConfig.dropCallsOnFail = False
        config.regConfig.timeoutSec = params.expires
        config.regConfig.delayBeforeRefreshSec = PJSIP_REFRESH_MARGIN  # never fires: sipcli refreshes first
        config.regConfig.unregWaitMsec = 1000
        if params.route_uri is not None and params.transport is not None:
            config.sipConfig.proxies.append(params.route_uri)
            config.sipConfig.transportId = engine.transport_ids[params.transport]
            if params.registrar_uri is not None:
                config.regConfig.registrarUri = params.registrar_uri
            if params.contact is not None:
                config.sipConfig.contactForced = f"<{params.contact}>"
        if params.password and params.realm:
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", params.realm, params.username, 0,
                                                              params.password))
        # Contacts and Via are what we computed for the route: no rewriting from what a server echoes back.
        config.natConfig.contactRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.sipOutboundUse = 0
        config.mediaConfig.srtpUse = _PJ_SRTP.get(params.srtp, 0)
        config.mediaConfig.srtpSecureSignaling = 0
        suites = pj.SrtpCryptoVector()
        for name in SRTP_SUITES:
            suite = pj.SrtpCrypto()
            suite.name = name
            suites.append(suite)
        config.mediaConfig.srtpOpt.cryptos = suites
        if engine.media_settings is not None:
            apply_media_settings(config, engine.media_settings, engine.settings.local_ip)
        return config
