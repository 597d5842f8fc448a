"""Account, BonjourAccount, ContactURI, Credentials and the AccountManager."""

import json

import pytest

from sipcli.account import Account, AccountManager, BonjourAccount, ContactURI, Credentials, reset_singletons
from sipcli.configuration import ConfigurationError, ConfigurationManager, FileStorage, MemoryStorage, set_dotted
from sipcli.configuration.settings import SIPSimpleSettings
from sipcli.notification import NotificationCenter
from sipcli.uri import SIPURI


class Collector:
    def __init__(self):
        self.notifications = []

    def handle_notification(self, notification):
        self.notifications.append(notification)

    def names(self):
        return [n.name for n in self.notifications]


@pytest.fixture(autouse=True)
def fresh_singletons():
    reset_singletons()
    yield
    reset_singletons()


@pytest.fixture
def events():
    collector = Collector()
    NotificationCenter().add_observer(collector)
    yield collector
    NotificationCenter().purge_observer(collector)


@pytest.fixture
def manager(tmp_path):
    ConfigurationManager().start(FileStorage(tmp_path))
    am = AccountManager()
    am.start()
    return am


def test_account_is_a_singleton_per_id_with_typed_id(manager):
    account = Account("alice@Example.test")
    assert Account("alice@example.test") is account
    assert account.id == "alice@example.test" and account.id.username == "alice" and account.id.domain == "example.test"
    assert account.notification_id == "account/alice@example.test"
    assert Account("bob@example.test") is not account
    for bad in ("alice", "a@", "bonjour@local"):
        with pytest.raises(ValueError):
            Account(bad)


def test_account_settings_defaults(manager):
    account = Account("alice@example.test")
    assert account.enabled is True and account.display_name is None
    assert account.auth.username is None and account.auth.password is None
    assert account.sip.outbound_proxy is None and account.registration.enabled is True
    assert account.sip.register_interval == 600 and account.sip.transport_list == ("udp", "tcp", "tls")
    assert account.rtp.srtp_encryption == "optional"
    assert account.msrp.transport == "tcp" and account.msrp.relay is None
    assert not (account.presence.enabled or account.dialog_event.enabled or account.message_summary.enabled)
    with pytest.raises(ValueError):
        account.rtp.srtp_encryption = "sometimes"
    with pytest.raises(ValueError):
        account.msrp.transport = "udp"


def test_credentials_hide_the_password(manager):
    account = Account("alice@example.test")
    account.auth.password = "hunter2"
    account.display_name = "Alice"
    credentials = account.credentials
    assert credentials == Credentials("alice", "hunter2", "Alice", "example.test")  # realm: the domain
    assert "hunter2" not in repr(credentials) and "hunter2" not in json.dumps(credentials.__json__())
    account.auth.username = "alice-auth"
    account.auth.realm = "corp.realm"
    assert account.credentials.username == "alice-auth" and account.credentials.realm == "corp.realm"
    assert "hunter2" not in repr(account.auth)


def test_contact_uri():
    contact = ContactURI("abcdefgh@10.0.0.1")
    assert (contact.username, contact.domain) == ("abcdefgh", "10.0.0.1")
    with pytest.raises(KeyError, match="udp"):
        contact["udp"]
    contact = ContactURI("abcdefgh@10.0.0.1", {"udp": 5062, "tls": 5063})
    assert isinstance(contact["udp"], SIPURI)
    assert str(contact["udp"]) == "sip:abcdefgh@10.0.0.1:5062"
    assert str(contact["TLS"]) == "sip:abcdefgh@10.0.0.1:5063;transport=tls"
    assert contact[0] == "a"  # still a string
    assert str(ContactURI("abcdefgh@::1", {"tcp": 5070})["tcp"]) == "sip:abcdefgh@[::1]:5070;transport=tcp"


def test_account_contact_before_and_after_the_engine(manager):
    settings = SIPSimpleSettings()
    settings.local_ip = "127.0.0.1"
    account = Account("alice@example.test")
    contact = account.contact
    assert len(contact.username) == 8 and contact.username.isalpha() and contact.username.islower()
    assert contact.domain == "127.0.0.1" and contact.transports == {}
    account.save()
    manager.update_contacts("127.0.0.1", {"udp": 5080, "tcp": 5081})
    assert account.contact.username == contact.username
    assert str(account.contact["tcp"]) == f"sip:{contact.username}@127.0.0.1:5081;transport=tcp"
    later = Account("later@example.test")
    later.save()  # added after the engine reported its transports: gets them too
    assert later.contact.transports == {"udp": 5080, "tcp": 5081}


def test_manager_start_loads_accounts_and_posts_added(tmp_path, events):
    storage = FileStorage(tmp_path)
    ConfigurationManager().start(storage)
    for name in ("alice", "bob"):
        Account(f"{name}@example.test").save()
    reset_singletons()
    ConfigurationManager().start(FileStorage(tmp_path))
    events.notifications.clear()
    manager = AccountManager()
    assert manager is AccountManager()
    manager.start()
    added = [n.data.account.id for n in events.notifications if n.name == "SIPAccountManagerDidAddAccount"]
    assert added == ["bonjour@local", "alice@example.test", "bob@example.test"]
    assert manager.has_account("alice@example.test") and not manager.has_account("carol@example.test")
    assert manager.get_account("bonjour@local") is BonjourAccount()
    with pytest.raises(KeyError):
        manager.get_account("carol@example.test")
    assert manager.get_accounts() == list(manager.iter_accounts())
    # saved before any manager ran: start() makes the first enabled one the default, as the reference says
    assert manager.default_account is AccountManager().get_account("alice@example.test")
    changed = [n.data for n in events.notifications if n.name == "SIPAccountManagerDidChangeDefaultAccount"]
    assert [(data.old_account, data.account.id) for data in changed] == [(None, "alice@example.test")]
    assert SIPSimpleSettings().default_account == "alice@example.test"  # saved: the next start agrees


def test_manager_start_skips_disabled_accounts_for_the_default(tmp_path):
    ConfigurationManager().start(FileStorage(tmp_path))
    alice = Account("alice@example.test")
    alice.enabled = False
    alice.save()
    Account("bob@example.test").save()
    reset_singletons()
    ConfigurationManager().start(FileStorage(tmp_path))
    AccountManager().start()
    assert AccountManager().default_account is AccountManager().get_account("bob@example.test")


def test_invalid_account_in_config_is_a_configuration_error(tmp_path):
    (tmp_path / "config.json").write_text('{"accounts": {"not-an-id": {}}}')
    ConfigurationManager().start(FileStorage(tmp_path))
    with pytest.raises(ConfigurationError, match="not-an-id"):
        AccountManager().start()


def test_add_delete_and_default_notifications(manager, events):
    alice = Account("alice@example.test")
    alice.save()
    assert events.names() == ["CFGSettingsObjectWasCreated", "SIPAccountManagerDidAddAccount",
                              "CFGSettingsObjectWasCreated", "SIPAccountManagerDidChangeDefaultAccount"]
    change = events.notifications[-1].data
    assert change.old_account is None and change.account is alice
    bob = Account("bob@example.test")
    bob.save()
    assert manager.default_account is alice
    events.notifications.clear()
    manager.default_account = bob
    assert events.names()[-1] == "SIPAccountManagerDidChangeDefaultAccount"
    assert (events.notifications[-1].data.old_account, events.notifications[-1].data.account) == (alice, bob)
    assert SIPSimpleSettings().default_account == "bob@example.test"
    events.notifications.clear()
    bob.delete()
    names = events.names()
    assert "SIPAccountManagerDidRemoveAccount" in names
    removed = next(n for n in events.notifications if n.name == "SIPAccountManagerDidRemoveAccount")
    assert removed.data.account is bob
    default_change = next(n for n in events.notifications if n.name == "SIPAccountManagerDidChangeDefaultAccount")
    assert (default_change.data.old_account, default_change.data.account) == (bob, alice)
    assert not manager.has_account("bob@example.test")
    assert Account("bob@example.test") is not bob  # the id is free again
    alice.delete()
    assert manager.default_account is None
    with pytest.raises(KeyError):
        manager.default_account = Account("never-saved@example.test")


def test_bonjour_account(manager):
    bonjour = BonjourAccount()
    assert bonjour is BonjourAccount() and bonjour.id == "bonjour@local"
    assert (bonjour.id.username, bonjour.id.domain) == ("bonjour", "local")
    assert bonjour.notification_id == "account/bonjour@local"
    assert bonjour.enabled is True and bonjour.msrp.transport == "tcp"
    assert bonjour.credentials.username == bonjour.contact.username and bonjour.credentials.password == ""
    set_dotted(bonjour, "display_name", "Me")
    bonjour.save()
    manager.default_account = bonjour
    assert manager.default_account is bonjour


def test_find_account(manager):
    alice = Account("alice@example.test")
    alice.save()
    disabled = Account("off@example.test")
    disabled.enabled = False
    disabled.save()
    manager.update_contacts("127.0.0.1", {"udp": 5090})
    assert manager.find_account(alice.contact["udp"]) is alice
    assert manager.find_account(str(alice.contact["udp"])) is alice
    assert manager.find_account(f"<sip:{alice.contact.username}@127.0.0.1:5090;transport=udp>") is alice
    assert manager.find_account("sip:alice@example.test") is alice
    assert manager.find_account(disabled.contact["udp"]) is None
    assert manager.find_account("sip:nobody@127.0.0.1") is None
    assert manager.find_account("garbage") is None


def test_adhoc_account_never_touches_the_config_file(tmp_path, events):
    ConfigurationManager().start(FileStorage(tmp_path))
    manager = AccountManager()
    manager.start()
    account = Account.create_adhoc("carol@example.test", password="pw", display_name="Carol",
                                   outbound_proxy="127.0.0.1:5070;transport=tcp")
    assert account.transient and manager.get_account("carol@example.test") is account
    assert account.sip.outbound_proxy.port == 5070 and account.credentials.password == "pw"
    manager.default_account = account
    assert manager.default_account is account
    account.display_name = "Changed"
    account.save()
    assert not (tmp_path / "config.json").exists()
    with pytest.raises(ValueError, match="already exists"):
        Account.create_adhoc("carol@example.test")
    with pytest.raises(ValueError):
        Account.create_adhoc("dave@example.test", outbound_proxy="sip:x;transport=sctp")
    assert not manager.has_account("dave@example.test")
    Account.create_adhoc("dave@example.test")  # the failed attempt left nothing behind


def test_adhoc_account_before_manager_start_and_with_memory_configuration():
    ConfigurationManager().start(MemoryStorage())
    account = Account.create_adhoc("erin@example.test")
    manager = AccountManager()
    manager.start()
    assert manager.get_account("erin@example.test") is account


def test_sip_register_saved_by_an_older_version_becomes_registration_enabled(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"accounts": {"alice@example.test": {"sip": {"register": false, "register_interval": 90}}}}')
    ConfigurationManager().start(FileStorage(tmp_path))
    account = Account("alice@example.test")
    assert account.registration.enabled is False and account.sip.register_interval == 90
    account.display_name = "Alice"
    account.save()
    stored = json.loads((tmp_path / "config.json").read_text())["accounts"]["alice@example.test"]
    assert stored["registration"] == {"enabled": False} and "register" not in stored["sip"]
