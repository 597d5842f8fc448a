"""SIPApplication: starts and stops the middleware's sub-systems in order, on the running asyncio loop.

Start: configuration, engine (from SIPSimpleSettings plus per-run overrides), AccountManager, account activation,
SessionManager (when the session layer is installed), ChatSupport (MSRP). Stop runs the same in reverse; it is
idempotent and may be called from a signal handler or another thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua import Engine, EngineSettings
from sipcli.singleton import Singleton

__all__ = ["SIPApplication"]

log = logging.getLogger(__name__)


def engine_settings_from(settings: Any, **overrides: Any) -> EngineSettings:
    """EngineSettings from SIPSimpleSettings (transports, TLS, user agent, local IP), then the overrides."""
    enabled = set(settings.sip.transport_list)
    values: dict[str, Any] = {
        "local_ip": settings.local_ip or None,
        "udp_port": int(settings.sip.udp_port) if "udp" in enabled else None,
        "tcp_port": int(settings.sip.tcp_port) if "tcp" in enabled else None,
        "tls_port": int(settings.sip.tls_port) if "tls" in enabled else None,
        "tls_ca_list": settings.tls.ca_list or None,
        "tls_verify_server": bool(settings.tls.verify_server),
        "tls_certificate": settings.tls.certificate or None,
        "user_agent": str(settings.user_agent),
        "clock_rate": int(settings.audio.sample_rate),
        "incoming_connection_timeout": float(settings.sip.incoming_connection_timeout),
    }
    values.update(overrides)
    return EngineSettings(**values)


# The account settings its pj.Account and registration are made from: a saved change re-registers.
_REGISTRATION_SETTINGS = frozenset({"registration.enabled", "sip.outbound_proxy", "sip.register_interval",
                                    "sip.transport_list", "auth.username", "auth.password", "display_name",
                                    "rtp.srtp_encryption"})


class SIPApplication(metaclass=Singleton):
    """The process-wide application (a singleton). States: None, 'starting', 'started', 'stopping', 'stopped'."""

    notification_id = "application"

    def __init__(self) -> None:
        self.state: str | None = None
        self.storage: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_task: asyncio.Task | None = None
        self._start_settled: asyncio.Event | None = None
        self._stop_task: asyncio.Task | None = None
        self._activate: Iterable[str] | None = None
        self._sessions = True
        self._chat = True

    # -- public API --------------------------------------------------------------------------------------------

    def start(self, storage: Any, *, engine_options: dict[str, Any] | None = None,
              accounts: Iterable[str] | None = None, sessions: bool = True, chat: bool = True) -> asyncio.Task:
        """Start everything on the running loop; the task raises what made the start fail (after cleaning up).

        engine_options override EngineSettings fields for this run (e.g. trace_sip, log_level, tls_ca_list);
        accounts limits activation to these account ids (None: every enabled account, as the reference says).
        sessions=False is for a process that places and takes no calls (e.g. registration only): no SessionManager
        (the session and chat layers are not even imported; incoming calls get 480) and no audio device.
        chat=False leaves ChatSupport (MSRP listeners, sipcli.chat) out: sessions have audio only and chat offers
        are refused.
        """
        if self.state is not None:
            raise RuntimeError(f"SIPApplication cannot start: it is {self.state}")
        self._loop = asyncio.get_running_loop()
        self.storage = storage
        self._activate = None if accounts is None else {str(account_id) for account_id in accounts}
        self._sessions = sessions
        self._chat = sessions and chat
        self.state = "starting"
        self._start_settled = asyncio.Event()
        self._post("SIPApplicationWillStart")
        self._start_task = self._loop.create_task(self._start(storage, engine_options or {}))
        return self._start_task

    def stop(self) -> asyncio.Future | concurrent.futures.Future:
        """Stop everything; resolves after SIPApplicationDidEnd. Idempotent; from a signal handler or another
        thread too (then the result is a concurrent.futures.Future)."""
        loop = self._loop
        if loop is None or self.state is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_result(None)
            return future
        if asyncio._get_running_loop() is not loop:
            return asyncio.run_coroutine_threadsafe(self._stop_from_elsewhere(), loop)
        return self._stop_here(loop)

    def _stop_here(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task:
        if self._stop_task is None:
            self._stop_task = loop.create_task(self._stop())
        return self._stop_task

    async def _stop_from_elsewhere(self) -> None:
        await self._stop_here(asyncio.get_running_loop())

    @property
    def engine(self) -> Engine:
        return Engine()

    # -- internals ---------------------------------------------------------------------------------------------

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))

    async def _start(self, storage: Any, engine_options: dict[str, Any]) -> None:
        from sipcli.account import AccountManager
        from sipcli.configuration import ConfigurationManager
        from sipcli.configuration.settings import SIPSimpleSettings

        settled = self._start_settled
        assert settled is not None  # set by start()

        try:
            if not ConfigurationManager().started:  # the CLI starts it early to resolve its accounts
                ConfigurationManager().start(storage)
            settings = engine_settings_from(SIPSimpleSettings(), **{"audio": self._sessions, **engine_options})
            await Engine().start(settings)
            if self._stop_task is not None:
                settled.set()
                return
            manager = AccountManager()
            NotificationCenter().add_observer(self, name="SIPAccountManagerDidAddAccount")
            NotificationCenter().add_observer(self, name="CFGSettingsObjectDidChange")
            NotificationCenter().add_observer(self, name="CFGSettingsObjectWasCreated")
            NotificationCenter().add_observer(self, name="SIPEngineDidFail", sender=Engine())
            manager.start()
            engine = Engine()
            local_ip = next(iter(engine.transports.values()))[0] if engine.transports else "127.0.0.1"
            manager.update_contacts(local_ip, {name: port for name, (_, port) in engine.transports.items()})
            for account in manager.get_accounts():
                self._maybe_activate(account)
            session_manager = self._session_manager()
            if session_manager is not None:
                session_manager.start()
            if self._chat:
                from sipcli.chat import ChatSupport  # MSRP: loaded by processes that take chats only

                await ChatSupport().start()
        except BaseException as error:
            log.debug("SIPApplication start failed", exc_info=True)
            settled.set()
            self._post("SIPApplicationDidFail", reason=str(error) or type(error).__name__)
            with contextlib.suppress(Exception):
                await self._stop_here(asyncio.get_running_loop())
            raise
        settled.set()
        if self.state == "starting":
            self.state = "started"
            self._post("SIPApplicationDidStart")

    async def _stop(self) -> None:
        from sipcli.account import AccountManager
        from sipcli.activation import deactivate
        from sipcli.configuration import ConfigurationManager

        if self.state in ("stopping", "stopped"):
            return
        self.state = "stopping"
        self._post("SIPApplicationWillEnd")
        if self._start_settled is not None:
            # Let a start in progress reach a point where there is something coherent to stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._start_settled.wait(), 10)
        NotificationCenter().discard_observer(self, name="SIPAccountManagerDidAddAccount")
        NotificationCenter().discard_observer(self, name="CFGSettingsObjectDidChange")
        NotificationCenter().discard_observer(self, name="CFGSettingsObjectWasCreated")
        NotificationCenter().discard_observer(self, name="SIPEngineDidFail", sender=Engine())
        session_manager = self._session_manager()
        if session_manager is not None and hasattr(session_manager, "stop"):
            try:
                result = session_manager.stop()
                if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("SessionManager.stop failed")
        if self._chat:
            from sipcli.chat import ChatSupport

            with contextlib.suppress(Exception):
                await ChatSupport().stop()
        manager = AccountManager()
        pending = [future for account in manager.get_accounts() if (future := deactivate(account)) is not None]
        if pending:
            await asyncio.wait(pending, timeout=Engine().settings.unregister_timeout + 1)
        manager.stop()
        await Engine().stop()
        with contextlib.suppress(Exception):
            ConfigurationManager().stop()
        self.state = "stopped"
        self._post("SIPApplicationDidEnd")

    def _maybe_activate(self, account: Any) -> None:
        if not account.enabled or (self._activate is not None and str(account.id) not in self._activate):
            return
        account.activate()

    def _session_manager(self) -> Any:
        if not self._sessions:
            return None
        try:
            from sipcli.session import SessionManager
        except ImportError:
            return None
        return SessionManager()

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "SIPEngineDidFail":  # the pjsua thread died: nothing works any more
            if self.state in ("starting", "started"):
                self._post("SIPApplicationDidFail", reason=notification.data.reason)
                self.stop()
            return
        if not Engine().is_running or self.state not in ("starting", "started"):
            return
        if notification.name == "SIPAccountManagerDidAddAccount":
            self._maybe_activate(notification.data.account)
        elif notification.name == "CFGSettingsObjectDidChange":
            self._account_changed(notification.sender, set(notification.data.modified))
        elif notification.name == "CFGSettingsObjectWasCreated":  # e.g. the BonjourAccount's first save()
            self._account_changed(notification.sender, {"enabled"})

    def _account_changed(self, account: Any, modified: set[str]) -> None:
        """A saved change to a managed account: (de)activate it for ``enabled``; re-register an active one whose
        registration settings changed (``registration.enabled``, proxy, credentials, interval...)."""
        from sipcli.account import AccountManager
        from sipcli.activation import restart_registration

        manager = AccountManager()
        account_id = str(getattr(account, "id", ""))
        if not manager.has_account(account_id) or manager.get_account(account_id) is not account:
            return
        if "enabled" in modified:
            if account.enabled:
                self._maybe_activate(account)
            else:
                account.deactivate()
        elif account.active and modified & _REGISTRATION_SETTINGS:
            restart_registration(account)
