"""The pjsua side of an active account: its pj.Account, REGISTER sending, incoming INVITEs.

``AccountDriver`` is made on the loop thread by ``sipcli.registration`` and used through ``Engine.run``: its
methods run on the pjsua thread. It reports ``RegistrationStateChanged`` events to ``on_event`` on the loop
thread. ``owner`` is the middleware's account, opaque here but for one slot this layer fills: ``owner.pj_account``
holds the pj.Account while it exists (pjsua thread), which is what ``MakeCall`` calls from.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipcli.pjsua.call import CallDriver
from sipcli.pjsua.engine import Engine
from sipcli.pjsua.events import RegistrationStateChanged
from sipcli.pjsua.media import apply_media_settings

__all__ = ["AccountDriver", "AccountParams"]

log = logging.getLogger(__name__)

_PJ_SRTP = {"disabled": 0, "optional": 1, "mandatory": 2}  # PJMEDIA_SRTP_DISABLED / OPTIONAL / MANDATORY
# What an SDES offer lists: the suite every SDES peer has (RFC 4568's mandatory one). pjsua would offer four, ~270
# more bytes that helped push sipcli's INVITE over the 1,300 bytes past which pjsip sends it over TCP.
_SRTP_CRYPTOS = ("AES_CM_128_HMAC_SHA1_80",)


@dataclass(frozen=True)
class AccountParams:
    """Everything a pj.Account is created with, as plain data.

    route_uri/transport/contact/registrar_uri are None for an account that does not register (P2P)."""

    id_uri: str
    username: str
    password: str | None
    expires: int
    srtp: str = "disabled"
    registrar_uri: str | None = None
    route_uri: str | None = None
    transport: str | None = None
    contact: str | None = None


@functools.cache
def _pj_account_class() -> type:
    import pjsua2 as pj

    class PJAccount(pj.Account):
        """Reports registration state and hands incoming calls over (pjsua thread)."""

        def __init__(self, driver: AccountDriver) -> None:
            super().__init__()
            self._driver = driver

        def onRegState(self, prm: Any) -> None:
            engine = Engine()
            code, reason, expiration, status = int(prm.code), str(prm.reason), int(prm.expiration), int(prm.status)
            message = prm.rdata.wholeMsg if prm.rdata is not None else ""
            error = engine.endpoint.utilStrError(status) if status != 0 else ""
            engine.post(self._driver.on_event, RegistrationStateChanged(code, reason, expiration, error, message))

        def onIncomingCall(self, prm: Any) -> None:
            engine = Engine()
            call_id, message = int(prm.callId), str(prm.rdata.wholeMsg)
            hook = engine.incoming_call_hook
            if hook is not None:
                driver = CallDriver.incoming(self, call_id)
                driver.answer_now(hook(self._driver.owner, driver, message))
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

    def __init__(self, owner: Any, on_event: Callable[[RegistrationStateChanged], None]) -> None:
        self.owner = owner
        self.on_event = on_event
        self.pj_account: Any = None
        self._params: AccountParams | None = None

    def create(self, params: AccountParams) -> None:
        engine = Engine()
        pj_account = _pj_account_class()(self)
        pj_account.create(self._config(params), False)
        self.pj_account = pj_account
        self._params = params
        self.owner.pj_account = pj_account
        engine.add_account(pj_account)

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
        pj_account.shutdown()

    @staticmethod
    def _config(params: AccountParams) -> Any:
        import pjsua2 as pj

        engine = Engine()
        config = pj.AccountConfig()
        config.idUri = params.id_uri
        config.regConfig.registerOnAdd = False
        config.regConfig.retryIntervalSec = 0
        config.regConfig.firstRetryIntervalSec = 0
        config.regConfig.dropCallsOnFail = False
        config.regConfig.timeoutSec = params.expires
        config.regConfig.delayBeforeRefreshSec = max(1, min(5, params.expires // 2))
        config.regConfig.unregWaitMsec = 1000
        if params.registrar_uri is not None and params.route_uri is not None and params.transport is not None:
            config.regConfig.registrarUri = params.registrar_uri
            config.sipConfig.proxies.append(params.route_uri)
            config.sipConfig.transportId = engine.transport_ids[params.transport]
            config.sipConfig.contactForced = f"<{params.contact}>"
        if params.password:
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", params.username, 0, params.password))
        # Contacts and Via are what we computed for the route: no rewriting from what a server echoes back.
        config.natConfig.contactRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.sipOutboundUse = 0
        config.mediaConfig.srtpUse = _PJ_SRTP.get(params.srtp, 0)
        config.mediaConfig.srtpSecureSignaling = 0
        for name in _SRTP_CRYPTOS:
            crypto = pj.SrtpCrypto()
            crypto.name = name
            config.mediaConfig.srtpOpt.cryptos.append(crypto)
        if engine.media_settings is not None:
            apply_media_settings(config, engine.media_settings, engine.settings.local_ip)
        return config
