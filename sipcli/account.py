"""SIP accounts: ``Account`` (one per SIP id), ``BonjourAccount`` (P2P) and the ``AccountManager``.

Accounts are settings objects (see ``sipcli.configuration``) stored in the configuration under
``accounts/<id>``. Ad hoc accounts, built from command line options, live in memory only::

    account = Account.create_adhoc("alice@example.test", password="s3cret", outbound_proxy="sip:127.0.0.1:5070")

The engine tells the accounts where it listens with ``AccountManager().update_contacts(ip, {"udp": port, ...})``
and activates them with ``activate()``; registration and subscriptions are added to ``activate``/``deactivate``
by the engine layer.
"""

from __future__ import annotations

import random
import socket
import string
import threading
from asyncio import Future
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sipcli.configuration import (
    ConfigurationError,
    ConfigurationManager,
    MemoryStorage,
    Setting,
    SettingsGroup,
    SettingsObject,
    SettingsStore,
)
from sipcli.configuration.datatypes import (
    MSRPTransport,
    Password,
    PositiveInteger,
    SIPAddress,
    SIPProxyAddress,
    SIPTransportList,
    SRTPEncryption,
)
from sipcli.configuration.settings import SIPSimpleSettings
from sipcli.notification import NotificationCenter, NotificationData
from sipcli.singleton import Singleton
from sipcli.uri import SIPURI

__all__ = ["Account", "AccountManager", "BonjourAccount", "ContactURI", "Credentials", "reset_singletons"]

BONJOUR_ID = "bonjour@local"


@dataclass(frozen=True)
class Credentials:
    """What digest authentication needs; the password never appears in repr or JSON."""

    username: str
    password: str
    display_name: str | None = None
    realm: str | None = None  # the only realm these credentials answer (sipcli.digest); None: no password to give

    def __repr__(self) -> str:
        return (f"Credentials(username={self.username!r}, password='***', display_name={self.display_name!r}, "
                f"realm={self.realm!r})")

    def __json__(self) -> dict:
        masked = "***" if self.password else ""
        return {"username": self.username, "password": masked, "display_name": self.display_name,
                "realm": self.realm}


class ContactURI(SIPAddress):
    """``user@ip``; ``contact["udp"]`` gives the SIPURI for that transport once the engine listens on it."""

    def __new__(cls, value: str, transports: Mapping[str, int] | None = None) -> ContactURI:
        instance = super().__new__(cls, value)
        instance._transports = dict(transports or {})
        return instance

    @property
    def transports(self) -> dict[str, int]:
        """{transport: port} the engine listens on; empty until it has started."""
        return dict(self._transports)

    def __getitem__(self, key: object) -> SIPURI:  # type: ignore[override]
        if not isinstance(key, str):
            return super().__getitem__(key)
        transport = key.lower()
        if transport not in self._transports:
            raise KeyError(f"no {transport} transport is listening (available: {sorted(self._transports) or 'none'})")
        host = f"[{self.domain}]" if ":" in self.domain else self.domain
        parameters = {} if transport == "udp" else {"transport": transport}
        return SIPURI(host=host, user=self.username, port=self._transports[transport], parameters=parameters)


def _random_username() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=8))


def _default_local_ip() -> str:
    """SIPSimpleSettings.local_ip, else the source address of the default route, else 127.0.0.1."""
    if ConfigurationManager().started:
        configured = SIPSimpleSettings().local_ip
        if configured:
            return configured
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: connecting a UDP socket sends nothing
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class _ActivationMixin:
    """Contact, activation state and the notification id shared by Account and BonjourAccount."""

    id: SIPAddress

    def _init_runtime(self) -> None:
        self._contact_username = _random_username()
        self._contact: ContactURI | None = None
        self.active = False
        self._activation_posted = False
        self.pj_account = None  # the engine's pj.Account while active (pjsua thread only)

    @property
    def notification_id(self) -> str:
        return f"account/{self.id}"

    @property
    def contact(self) -> ContactURI:
        if self._contact is None:
            self._contact = ContactURI(f"{self._contact_username}@{_default_local_ip()}")
        return self._contact

    def update_contact(self, local_ip: str, transports: Mapping[str, int]) -> None:
        """Engine hook: the engine listens on local_ip with {transport: port}; contact[...] uses them."""
        self._contact = ContactURI(f"{self._contact_username}@{local_ip}", transports)

    def activate(self) -> None:
        """Activate the account on the running engine (its pj.Account, registration, Bonjour services).

        SIPAccountDidActivate follows once the account can place calls (its pj.Account exists), not before: a
        connect() from its observer works.
        """
        if self.active:
            return
        self.active = True
        from sipcli import activation  # the engine layer: imported only by processes that run the engine

        ready = activation.activate(self)
        ready.add_done_callback(lambda _: self._activated(ready))

    def _activated(self, ready: Future) -> None:
        from sipcli import activation

        if self.active and not self._activation_posted and activation.is_current(self, ready):
            self._activation_posted = True
            NotificationCenter().post_notification("SIPAccountDidActivate", sender=self)

    def deactivate(self) -> None:
        """Mark the account inactive and post SIPAccountDidDeactivate; the engine layer extends this too."""
        if not self.active:
            return
        self.active = False
        from sipcli import activation

        activation.deactivate(self)  # unregisters in the background; SIPApplication.stop awaits it first
        if self._activation_posted:
            self._activation_posted = False
            NotificationCenter().post_notification("SIPAccountDidDeactivate", sender=self)


class AuthSettings(SettingsGroup):
    username = Setting(str, default=None, nillable=True)  # None: the user part of the account id
    password = Setting(Password, default=None, nillable=True)
    # The digest realm the password is given to; None: the domain of the account id. Challenges for any other
    # realm are not answered (a hostile proxy or callee would get a response computed from the password).
    realm = Setting(str, default=None, nillable=True)


class AccountSIPSettings(SettingsGroup):
    outbound_proxy = Setting(SIPProxyAddress, default=None, nillable=True)
    register_interval = Setting(PositiveInteger, default=600)
    transport_list = Setting(SIPTransportList, default=("udp", "tcp", "tls"))


class RegistrationSettings(SettingsGroup):
    enabled = Setting(bool, default=True)  # REGISTER while the account is active (the reference's name)


class RTPSettings(SettingsGroup):
    srtp_encryption = Setting(SRTPEncryption, default="optional")


class MSRPSettings(SettingsGroup):
    # TCP by default: MSRP over TLS needs a certificate (tls.certificate) on the listening side.
    transport = Setting(MSRPTransport, default="tcp")
    relay = Setting(SIPProxyAddress, default=None, nillable=True)  # host[:port][;transport=tls]


class PresenceSettings(SettingsGroup):
    enabled = Setting(bool, default=False)


class DialogEventSettings(SettingsGroup):
    enabled = Setting(bool, default=False)


class MessageSummarySettings(SettingsGroup):
    enabled = Setting(bool, default=False)


class DiscoverySettings(SettingsGroup):
    """mDNS/DNS-SD for the BonjourAccount (sipcli.bonjour); off by default: a P2P run sends no multicast."""

    publish = Setting(bool, default=False)  # advertise the contact (_sipuri._udp/_tcp, _sipuris._tcp)
    browse = Setting(bool, default=False)  # report neighbours (BonjourAccountDidAddNeighbour ...)


class Account(_ActivationMixin, SettingsObject):
    """A SIP account; ``Account(id)`` returns the one instance for that id (loaded from the configuration)."""

    enabled = Setting(bool, default=True)
    display_name = Setting(str, default=None, nillable=True)
    auth = AuthSettings
    sip = AccountSIPSettings
    registration = RegistrationSettings
    rtp = RTPSettings
    msrp = MSRPSettings
    presence = PresenceSettings
    dialog_event = DialogEventSettings
    message_summary = MessageSummarySettings

    _instances: dict[str, Account] = {}
    _instances_lock = threading.RLock()

    def __new__(cls, id: str, store: SettingsStore | ConfigurationManager | None = None) -> Account:
        """The account with this id; ValueError for a malformed id. A new one is saved only by save()."""
        account_id = SIPAddress(id)
        if account_id == BONJOUR_ID:
            raise ValueError(f"{BONJOUR_ID} is the Bonjour account; use BonjourAccount()")
        with cls._instances_lock:
            existing = cls._instances.get(account_id)
            if existing is not None:
                return existing
            instance = super().__new__(cls)
            instance.id = account_id
            SettingsObject.__init__(instance, ("accounts", str(account_id)), store)
            instance._init_runtime()
            instance.transient = store is not None and not isinstance(store, ConfigurationManager)
            cls._instances[account_id] = instance
            return instance

    def __init__(self, id: str, store: SettingsStore | ConfigurationManager | None = None) -> None:
        """Already initialized by __new__."""

    @classmethod
    def upgrade(cls, data: dict | None) -> dict | None:
        """sip.register, as saved before it took the reference's name registration.enabled."""
        sip = data.get("sip") if data else None
        if not isinstance(sip, dict) or "register" not in sip:
            return data
        assert data is not None
        upgraded = {**data, "sip": {name: value for name, value in sip.items() if name != "register"}}
        registration = data.get("registration")
        registration = dict(registration) if isinstance(registration, dict) else {}
        registration.setdefault("enabled", sip["register"])
        upgraded["registration"] = registration
        return upgraded

    @classmethod
    def create_adhoc(cls, id: str, *, password: str | None = None, display_name: str | None = None,
                     outbound_proxy: str | None = None, username: str | None = None) -> Account:
        """A new account kept in memory only (never written to the configuration), e.g. from ``--from``.

        Raises ValueError for a malformed id, proxy or password, or when an account with that id already exists.
        """
        account_id = SIPAddress(id)
        manager = ConfigurationManager()
        with cls._instances_lock:
            if account_id in cls._instances or (manager.started and manager.get(("accounts", str(account_id)))):
                raise ValueError(f"account {account_id} already exists in the configuration")
            account = cls(account_id, store=SettingsStore(MemoryStorage()))
        try:
            account.display_name = display_name
            account.auth.username = username
            account.auth.password = password
            account.sip.outbound_proxy = outbound_proxy
        except ValueError:
            account._forget()
            raise
        account.save()
        return account

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.auth.username or self.id.username, self.auth.password or "", self.display_name,
                           self.auth.realm or self.id.domain)

    def delete(self) -> None:
        """Remove the account from the configuration (posts CFGSettingsObjectWasDeleted)."""
        self.deactivate()
        super().delete()
        self._forget()

    def _forget(self) -> None:
        with self._instances_lock:
            if self._instances.get(self.id) is self:
                del self._instances[self.id]

    @classmethod
    def reset_instances(cls) -> None:
        """Test hook: forget every Account instance."""
        with cls._instances_lock:
            cls._instances.clear()

    def __repr__(self) -> str:
        return f"Account({str(self.id)!r})"


class BonjourAccount(_ActivationMixin, SettingsObject, metaclass=Singleton):
    """The P2P account ``bonjour@local`` (a singleton): no registrar, direct ``sip:user@host:port`` targets."""

    enabled = Setting(bool, default=True)
    display_name = Setting(str, default=None, nillable=True)
    rtp = RTPSettings
    msrp = MSRPSettings
    discovery = DiscoverySettings

    id = SIPAddress(BONJOUR_ID)
    transient = False

    def __init__(self, store: SettingsStore | ConfigurationManager | None = None) -> None:
        SettingsObject.__init__(self, ("bonjour",), store)
        self._init_runtime()

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.contact.username, "", self.display_name)

    def __repr__(self) -> str:
        return "BonjourAccount()"


def _uri_user_host(uri: object) -> tuple[str | None, str | None]:
    """(user, host) of a SIP URI given as text (``sip:user@host:port;params``) or an object with user/host."""
    if not isinstance(uri, str):
        return getattr(uri, "user", None), getattr(uri, "host", None)
    text = uri.strip().strip("<>")
    if ":" in text.split("@")[0]:
        text = text.split(":", 1)[1]  # drop the scheme
    text = text.split(";")[0]
    user, sep, hostport = text.rpartition("@")
    if not sep:
        return None, None
    host = hostport[1:].split("]")[0] if hostport.startswith("[") else hostport.split(":")[0]
    return user, host.lower()


class AccountManager(metaclass=Singleton):
    """Loads and tracks the accounts (a singleton). ``start()`` after ``ConfigurationManager().start()``."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account | BonjourAccount] = {}
        self._started = False
        self._transient_default: Account | None = None
        self._contact_info: tuple | None = None

    @classmethod
    def reset_instance(cls) -> None:
        """Test hook: stop observing and forget the singleton."""
        if cls._instance is not None and cls._instance._started:
            NotificationCenter().purge_observer(cls._instance)
        Singleton.reset_instance(cls)

    def start(self) -> None:
        """Load every account from the configuration, posting SIPAccountManagerDidAddAccount for each.

        Raises ConfigurationError when the configuration holds an invalid account.
        """
        if self._started:
            return
        manager = ConfigurationManager()
        accounts: list[Account | BonjourAccount] = [BonjourAccount()]
        for account_id in manager.children(("accounts",)):
            try:
                accounts.append(Account(account_id))
            except ValueError as e:
                raise ConfigurationError(f"invalid account id {account_id!r} in the configuration: {e}") from None
        with Account._instances_lock:
            loaded = {account.id for account in accounts}
            accounts.extend(a for a in Account._instances.values() if a.id not in loaded and a.persisted)
        notification_center = NotificationCenter()
        notification_center.add_observer(self, name="CFGSettingsObjectWasCreated")
        notification_center.add_observer(self, name="CFGSettingsObjectWasDeleted")
        self._started = True
        for account in accounts:
            self._add(account)
        if self.default_account is None:
            # As the reference has it, a saved account becomes the default when there is none: one saved before
            # start() (when nobody observed its creation) as much as one saved after.
            saved = [account for account in accounts if isinstance(account, Account) and account.enabled
                     and not account.transient]
            if saved:
                self.default_account = saved[0]

    def stop(self) -> None:
        """Deactivate every account and stop tracking additions and deletions."""
        if not self._started:
            return
        self._started = False
        notification_center = NotificationCenter()
        notification_center.discard_observer(self, name="CFGSettingsObjectWasCreated")
        notification_center.discard_observer(self, name="CFGSettingsObjectWasDeleted")
        for account in list(self._accounts.values()):
            account.deactivate()

    def has_account(self, id: str) -> bool:
        return id in self._accounts

    def get_account(self, id: str) -> Account | BonjourAccount:
        """The account with this id; KeyError when there is none."""
        return self._accounts[id]

    def get_accounts(self) -> list[Account | BonjourAccount]:
        return list(self._accounts.values())

    def iter_accounts(self) -> Iterator[Account | BonjourAccount]:
        return iter(list(self._accounts.values()))

    def find_account(self, contact_uri: object) -> Account | BonjourAccount | None:
        """The enabled account whose contact user (or else whose id) matches contact_uri, or None."""
        user, host = _uri_user_host(contact_uri)
        if user is None:
            return None
        enabled = [account for account in self._accounts.values() if account.enabled]
        for account in enabled:
            if account.contact.username == user:
                return account
        for account in enabled:
            if account.id.username == user and account.id.domain == host:
                return account
        return None

    def update_contacts(self, local_ip: str, transports: Mapping[str, int]) -> None:
        """Engine hook: give every account (and those added later) the engine's address and {transport: port}."""
        self._contact_info = (local_ip, dict(transports))
        for account in self._accounts.values():
            account.update_contact(local_ip, transports)

    @property
    def default_account(self) -> Account | BonjourAccount | None:
        """The account used when none is named (stored as SIPSimpleSettings.default_account)."""
        if self._transient_default is not None:
            return self._transient_default
        default_id = SIPSimpleSettings().default_account
        return self._accounts.get(default_id) if default_id else None

    @default_account.setter
    def default_account(self, account: Account | BonjourAccount | None) -> None:
        """Posts SIPAccountManagerDidChangeDefaultAccount; an ad hoc account is the default for this run only."""
        if account is not None and self._accounts.get(account.id) is not account:
            raise KeyError(f"account {account.id} is not managed by the AccountManager")
        old_account = self.default_account
        if account is not None and account.transient:
            self._transient_default = account
        else:
            self._transient_default = None
            settings = SIPSimpleSettings()
            settings.default_account = account.id if account is not None else None
            settings.save()
        if account is not old_account:
            NotificationCenter().post_notification("SIPAccountManagerDidChangeDefaultAccount", sender=self,
                                                   data=NotificationData(old_account=old_account, account=account))

    notification_id = "account_manager"

    def handle_notification(self, notification: object) -> None:
        account = notification.sender
        if not isinstance(account, Account | BonjourAccount):
            return
        if notification.name == "CFGSettingsObjectWasCreated":
            if self._accounts.get(account.id) is not account:
                self._add(account)
                if self.default_account is None and not account.transient:
                    self.default_account = account
        elif notification.name == "CFGSettingsObjectWasDeleted" and self._accounts.get(account.id) is account:
            if self.default_account is account:
                others = [a for a in self._accounts.values()
                          if isinstance(a, Account) and not a.transient and a is not account]
                self.default_account = others[0] if others else None
            del self._accounts[account.id]
            NotificationCenter().post_notification("SIPAccountManagerDidRemoveAccount", sender=self,
                                                   data=NotificationData(account=account))

    def _add(self, account: Account | BonjourAccount) -> None:
        self._accounts[account.id] = account
        if self._contact_info is not None:
            account.update_contact(*self._contact_info)
        NotificationCenter().post_notification("SIPAccountManagerDidAddAccount", sender=self,
                                               data=NotificationData(account=account))


def reset_singletons() -> None:
    """Test hook: forget the AccountManager, accounts, general settings and ConfigurationManager singletons."""
    AccountManager.reset_instance()
    Account.reset_instances()
    BonjourAccount.reset_instance()
    SIPSimpleSettings.reset_instance()
    ConfigurationManager.reset_instance()
