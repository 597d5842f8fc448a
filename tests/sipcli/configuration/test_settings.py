"""SettingsObject, SettingsGroup, Setting, the dotted helpers, ConfigurationManager and the general settings."""

import pytest

from sipcli.account import reset_singletons
from sipcli.configuration import (
    ConfigurationError,
    ConfigurationManager,
    FileStorage,
    MemoryStorage,
    Setting,
    SettingsGroup,
    SettingsObject,
    SettingsStore,
    UnknownSettingError,
    get_dotted,
    reset_dotted,
    set_dotted,
    settings_dict,
)
from sipcli.configuration.datatypes import Password, Port, SIPProxyAddress, SIPTransportList
from sipcli.configuration.settings import SIPSimpleSettings
from sipcli.notification import NotificationCenter


class Inner(SettingsGroup):
    depth = Setting(int, default=1)


class Network(SettingsGroup):
    port = Setting(Port, default=0)
    proxy = Setting(SIPProxyAddress, default=None, nillable=True)
    transports = Setting(SIPTransportList, default=("udp",))
    inner = Inner


class Thing(SettingsObject):
    notification_id = "thing"
    enabled = Setting(bool, default=True)
    name = Setting(str, default=None, nillable=True)
    secret = Setting(Password, default=None, nillable=True)
    net = Network


class Collector:
    def __init__(self):
        self.notifications = []

    def handle_notification(self, notification):
        self.notifications.append(notification)


@pytest.fixture(autouse=True)
def fresh_singletons():
    reset_singletons()
    yield
    reset_singletons()


@pytest.fixture
def events():
    collector = Collector()
    NotificationCenter().add_observer(collector)
    yield collector.notifications
    NotificationCenter().purge_observer(collector)


def test_defaults_and_validation():
    thing = Thing(("things", "a"), SettingsStore(MemoryStorage()))
    assert thing.enabled is True and thing.net.port == 0 and thing.net.inner.depth == 1
    thing.net.port = 5070
    assert thing.net.port == 5070
    with pytest.raises(ValueError):
        thing.net.port = 70000
    with pytest.raises(ValueError):
        thing.enabled = "yes"  # typed values are not parsed; only set_dotted parses text
    with pytest.raises(ValueError):
        thing.enabled = None
    with pytest.raises(AttributeError):
        thing.net.prot = 1
    assert Thing.enabled.default is True


def test_declaring_a_bad_default_fails():
    with pytest.raises(ValueError):
        Setting(Port, default=-1)
    with pytest.raises(ValueError):
        Setting(bool)  # None default but not nillable


def test_groups_are_per_instance():
    store = SettingsStore(MemoryStorage())
    a, b = Thing(("things", "a"), store), Thing(("things", "b"), store)
    a.net.inner.depth = 5
    assert b.net.inner.depth == 1


def test_dotted_helpers():
    thing = Thing(("things", "a"), SettingsStore(MemoryStorage()))
    set_dotted(thing, "net.proxy", "127.0.0.1:5070;transport=tcp")
    assert thing.net.proxy.transport == "tcp"
    set_dotted(thing, "net.transports", "tcp,tls")
    assert get_dotted(thing, "net.transports") == ("tcp", "tls")
    set_dotted(thing, "enabled", "no")
    assert thing.enabled is False
    set_dotted(thing, "net.proxy", "")
    assert thing.net.proxy is None
    set_dotted(thing, "net.inner.depth", "7")
    assert thing.net.inner.depth == 7
    set_dotted(thing, "net.inner.depth", "DEFAULT")
    assert thing.net.inner.depth == 1
    set_dotted(thing, "net.port", 5080, text=False)
    reset_dotted(thing, "net.port")
    assert thing.net.port == 0
    for name in ("nope", "net.nope", "net.inner.depth.x", "nope.port", ""):
        with pytest.raises(UnknownSettingError, match="unknown setting"):
            set_dotted(thing, name, "1")
    with pytest.raises(ValueError, match=r"invalid value for net\.port: .*0-65535"):
        set_dotted(thing, "net.port", "99999")
    with pytest.raises(ValueError, match="invalid value for enabled"):
        set_dotted(thing, "enabled", "")


def test_save_posts_created_then_changed_with_dotted_modified(events):
    store = SettingsStore(MemoryStorage())
    thing = Thing(("things", "a"), store)
    assert not thing.persisted
    thing.save()
    assert [n.name for n in events] == ["CFGSettingsObjectWasCreated"]
    assert thing.persisted
    thing.save()  # nothing changed: nothing written, nothing posted
    assert len(events) == 1
    thing.net.port = 5070
    thing.name = "x"
    thing.secret = "hunter2"
    thing.save()
    assert events[-1].name == "CFGSettingsObjectDidChange" and events[-1].sender is thing
    assert events[-1].data.modified == {"net.port": (0, 5070), "name": (None, "x"), "secret": (None, "***")}
    set_dotted(thing, "net.port", "DEFAULT")
    thing.save()
    assert events[-1].data.modified == {"net.port": (5070, 0)}


def test_values_round_trip_through_storage_and_only_explicit_values_are_stored():
    storage = MemoryStorage()
    thing = Thing(("things", "a"), SettingsStore(storage))
    thing.net.proxy = "sip:10.0.0.1:5070;transport=tls"
    thing.net.transports = ["tls"]
    thing.secret = "pw"
    thing.save()
    assert storage.load() == {"things": {"a": {"secret": "pw", "net": {"proxy": "sip:10.0.0.1:5070;transport=tls",
                                                                         "transports": ["tls"]}}}}
    again = Thing(("things", "a"), SettingsStore(storage))
    assert again.persisted
    assert settings_dict(again) == settings_dict(thing)
    assert again.net.proxy.port == 5070


def test_invalid_stored_value_is_a_configuration_error():
    storage = MemoryStorage({"things": {"a": {"net": {"port": 123456}}}})
    with pytest.raises(ConfigurationError, match=r"net\.port"):
        Thing(("things", "a"), SettingsStore(storage))


def test_unknown_stored_keys_are_ignored():
    storage = MemoryStorage({"things": {"a": {"future_setting": 1, "net": {"port": 5}}}})
    assert Thing(("things", "a"), SettingsStore(storage)).net.port == 5


def test_delete(events):
    storage = MemoryStorage()
    thing = Thing(("things", "a"), SettingsStore(storage))
    thing.save()
    thing.delete()
    assert events[-1].name == "CFGSettingsObjectWasDeleted"
    assert storage.load() == {"things": {}}


def test_commit_rereads_storage_so_other_sections_survive():
    storage = MemoryStorage()
    first, second = SettingsStore(storage), SettingsStore(storage)
    a, b = Thing(("things", "a"), first), Thing(("things", "b"), second)
    a.name, b.name = "a", "b"
    a.save()
    b.save()  # `second` was loaded before `a` was written; a must survive
    assert set(storage.load()["things"]) == {"a", "b"}


def test_settings_dict_masks_secrets():
    thing = Thing(("things", "a"), SettingsStore(MemoryStorage()))
    assert settings_dict(thing, masked=True)["secret"] is None
    thing.secret = "pw"
    assert settings_dict(thing, masked=True)["secret"] == "***"
    assert thing.__json__()["secret"] == "***"


def test_configuration_manager_lifecycle(tmp_path):
    manager = ConfigurationManager()
    assert manager is ConfigurationManager()
    with pytest.raises(ConfigurationError, match="not started"):
        Thing(("things", "a"))
    manager.start(FileStorage(tmp_path))
    with pytest.raises(RuntimeError):
        manager.start(MemoryStorage())
    assert manager.started and manager.storage.directory == tmp_path
    thing = Thing(("things", "a"))
    thing.save()
    assert manager.children(("things",)) == ["a"]
    manager.stop()
    assert not manager.started


def test_configuration_manager_default_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPCLI_CONFIG_DIR", str(tmp_path / "cfg"))
    ConfigurationManager().start()
    SIPSimpleSettings().save()
    assert (tmp_path / "cfg" / "config.json").exists()


def test_start_failure_leaves_manager_stopped(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2")
    with pytest.raises(ConfigurationError, match="corrupt"):
        ConfigurationManager().start(FileStorage(tmp_path))
    assert not ConfigurationManager().started


def test_general_settings(tmp_path):
    ConfigurationManager().start(FileStorage(tmp_path))
    settings = SIPSimpleSettings()
    assert settings is SIPSimpleSettings()
    assert settings.local_ip is None
    assert settings.sip.transport_list == ("udp", "tcp", "tls")
    assert (settings.sip.udp_port, settings.sip.tcp_port, settings.sip.tls_port) == (0, 0, 0)
    assert settings.tls.verify_server is True and settings.tls.ca_list is None and settings.tls.certificate is None
    assert settings.rtp.port_range.start < settings.rtp.port_range.end
    assert settings.audio.codec_list[0] == "G722" and settings.audio.sample_rate == 16000
    assert settings.audio.recordings_directory.normalized.startswith("/")
    assert settings.user_agent.startswith("sipcli ")
    set_dotted(settings, "local_ip", "127.0.0.1")
    set_dotted(settings, "sip.udp_port", "5090")
    set_dotted(settings, "tls.verify_server", "false")
    settings.save()
    reset_singletons()
    ConfigurationManager().start(FileStorage(tmp_path))
    reloaded = SIPSimpleSettings()
    assert reloaded is not settings
    assert (reloaded.local_ip, reloaded.sip.udp_port, reloaded.tls.verify_server) == ("127.0.0.1", 5090, False)
