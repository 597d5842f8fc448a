"""The configuration API: typed settings in nested groups, saved to a storage through the ConfigurationManager.

A ``SettingsObject`` (the general settings, an account) declares ``Setting`` descriptors and ``SettingsGroup``
subclasses as class attributes::

    class SIPSettings(SettingsGroup):
        outbound_proxy = Setting(SIPProxyAddress, default=None, nillable=True)

    class Account(SettingsObject):
        enabled = Setting(bool, default=True)
        sip = SIPSettings

Assigning validates (ValueError on a bad value). Only values set explicitly are stored; the rest follow the
declared defaults. ``save()`` writes the object's section and posts ``CFGSettingsObjectWasCreated`` (first save)
or ``CFGSettingsObjectDidChange`` with ``data.modified = {"dotted.name": (old, new)}`` (secrets as ``***``);
``delete()`` removes it and posts ``CFGSettingsObjectWasDeleted``.

Objects read and write their section through a store: the started ``ConfigurationManager`` by default, or a
private ``SettingsStore(MemoryStorage())`` for objects that must never reach the configuration file.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import Any as _AnyType

from sipcli.configuration.datatypes import Password, TypedList, from_text
from sipcli.configuration.storage import (
    ConfigurationError,
    FileStorage,
    MemoryStorage,
    Storage,
    default_config_dir,
)
from sipcli.notification import NotificationCenter, NotificationData
from sipcli.singleton import Singleton

__all__ = [
    "DEFAULT", "ConfigurationError", "ConfigurationManager", "FileStorage", "MemoryStorage", "Setting",
    "SettingsGroup", "SettingsObject", "SettingsObjectExists", "SettingsStore", "Storage", "UnknownSettingError",
    "declared_default", "default_config_dir", "get_dotted", "iter_settings", "read_section", "reset_dotted",
    "set_dotted", "settings_dict",
]

log = logging.getLogger(__name__)

DEFAULT = "DEFAULT"  # the text that resets a setting to its default in set_dotted
MASK = "***"


class UnknownSettingError(KeyError):
    """A dotted setting name that the object does not have."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "unknown setting"


class Setting:
    """A typed setting: ``Setting(type, default=None, nillable=False)``; ``type(value)`` validates."""

    def __init__(self, type: type, default: _AnyType = None, nillable: bool = False) -> None:
        self.type = type
        self.nillable = nillable
        self.name = ""
        self.default = self.coerce(default)
        self.secret = issubclass(type, Password)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def coerce(self, value: _AnyType) -> _AnyType:
        """value converted to this setting's type; ValueError when it does not fit."""
        if value is None:
            if self.nillable:
                return None
            raise ValueError("a value is required (the setting is not nillable)")
        if self.type is bool or self.type is int:
            if type(value) is not self.type:
                raise ValueError(f"expected {'a boolean' if self.type is bool else 'an integer'}, got {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            return str(value)
        if isinstance(value, self.type) and not isinstance(value, list):
            return value
        try:
            return self.type(value)
        except (TypeError, ValueError) as e:
            if isinstance(e, ValueError):
                raise
            raise ValueError(f"invalid value {value!r}") from None

    def parse(self, text: str) -> _AnyType:
        """The value a user typed; an empty text means None for a nillable setting."""
        if text == "" and self.nillable:
            return None
        return self.coerce(from_text(self.type, text))

    def __get__(self, obj: _SettingsContainer | None, owner: type) -> _AnyType:
        if obj is None:
            return self
        return obj._values.get(self.name, self.default)

    def __set__(self, obj: _SettingsContainer, value: _AnyType) -> None:
        obj._values[self.name] = self.coerce(value)


class _SettingsContainer:
    """Common part of SettingsGroup and SettingsObject: declared settings, nested groups, explicit values."""

    _settings: dict[str, Setting] = {}
    _groups: dict[str, type[SettingsGroup]] = {}

    def __init_subclass__(cls, **kwargs: _AnyType) -> None:
        super().__init_subclass__(**kwargs)
        settings: dict[str, Setting] = {}
        groups: dict[str, type[SettingsGroup]] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if isinstance(attr, Setting):
                    settings[name] = attr
                    groups.pop(name, None)
                elif isinstance(attr, type) and issubclass(attr, SettingsGroup) and not name.startswith("_"):
                    groups[name] = attr
                    settings.pop(name, None)
        cls._settings, cls._groups = settings, groups

    def __init__(self) -> None:
        self._values: dict[str, _AnyType] = {}
        for name, group in self._groups.items():
            object.__setattr__(self, name, group())

    def __json__(self) -> dict:
        return settings_dict(self, masked=True)


class SettingsGroup(_SettingsContainer):
    """A named group of settings inside a SettingsObject (e.g. ``account.sip``)."""

    def __setattr__(self, name: str, value: _AnyType) -> None:
        if not name.startswith("_") and name not in self._settings:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({settings_dict(self, masked=True)!r})"


def iter_settings(container: _SettingsContainer, prefix: str = "") -> Iterator[tuple[str, Setting, _AnyType]]:
    """(dotted name, Setting, container holding it) for every setting, in declaration order, groups after."""
    for name, setting in container._settings.items():
        yield prefix + name, setting, container
    for name in container._groups:
        yield from iter_settings(getattr(container, name), f"{prefix}{name}.")


def settings_dict(container: _SettingsContainer, masked: bool = False) -> dict[str, _AnyType]:
    """{dotted name: current value}; with masked, secrets that are set read ``***``."""
    result = {}
    for dotted, setting, owner in iter_settings(container):
        value = getattr(owner, setting.name)
        result[dotted] = MASK if masked and setting.secret and value else value
    return result


def _resolve(container: _SettingsContainer, dotted: str) -> tuple[_SettingsContainer, Setting]:
    *path, name = dotted.split(".")
    owner = container
    for part in path:
        if part not in owner._groups:
            raise UnknownSettingError(f"unknown setting {dotted!r}")
        owner = getattr(owner, part)
    if name not in owner._settings:
        raise UnknownSettingError(f"unknown setting {dotted!r}")
    return owner, owner._settings[name]


def get_dotted(container: _SettingsContainer, dotted: str) -> _AnyType:
    """The value of ``"group.name"``; UnknownSettingError when there is no such setting."""
    owner, setting = _resolve(container, dotted)
    return getattr(owner, setting.name)


def reset_dotted(container: _SettingsContainer, dotted: str) -> None:
    """Return ``"group.name"`` to its declared default."""
    owner, setting = _resolve(container, dotted)
    owner._values.pop(setting.name, None)


def set_dotted(container: _SettingsContainer, dotted: str, value: _AnyType, *, text: bool = True) -> None:
    """Set ``"group.name"`` from user text (or, with text=False, a typed value); ``DEFAULT`` resets it.

    Raises UnknownSettingError for an unknown name and ValueError("invalid value for NAME: reason") for a bad value.
    """
    owner, setting = _resolve(container, dotted)
    if text and value == DEFAULT:
        owner._values.pop(setting.name, None)
        return
    try:
        owner._values[setting.name] = setting.parse(value) if text else setting.coerce(value)
    except ValueError as e:
        raise ValueError(f"invalid value for {dotted}: {e}") from None


def _to_json(value: _AnyType) -> _AnyType:
    if isinstance(value, TypedList):
        return [_to_json(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    return str(value)


def _dump(container: _SettingsContainer) -> dict:
    data: dict[str, _AnyType] = {name: _to_json(value) for name, value in container._values.items()}
    for name in container._groups:
        group_data = _dump(getattr(container, name))
        if group_data:
            data[name] = group_data
    return data


def _load(container: _SettingsContainer, data: dict, where: str, prefix: str = "") -> None:
    for name, value in _stored_values(type(container), data, where, prefix):
        if name in container._groups:
            _load(getattr(container, name), value, where, f"{prefix}{name}.")
        else:
            container._values[name] = value


def _stored_values(cls: type[_SettingsContainer], data: dict, where: str,
                   prefix: str) -> Iterator[tuple[str, _AnyType]]:
    """(name, value) for each setting (coerced) and group (its dict) stored in data; ConfigurationError for a
    value that does not fit, unknown names skipped with a warning."""
    for name, value in data.items():
        if name in cls._groups:
            if not isinstance(value, dict):
                raise ConfigurationError(f"invalid value for {prefix}{name} in {where}: expected an object, got "
                                         f"{value!r:.40}")
            yield name, value
        elif name in cls._settings:
            try:
                yield name, cls._settings[name].coerce(value)
            except ValueError as e:
                raise ConfigurationError(f"invalid value for {prefix}{name} in {where}: {e}") from None
        else:
            log.warning("ignoring unknown setting %s%s in %s", prefix, name, where)


def read_section(cls: type[_SettingsContainer], data: dict, where: str, prefix: str = "") -> dict[str, _AnyType]:
    """{dotted name: value} of what data stores for a settings class, validated as loading an object of that class
    would (ConfigurationError), without making one: cheap enough to read thousands of sections."""
    values: dict[str, _AnyType] = {}
    for name, value in _stored_values(cls, data, where, prefix):
        if name in cls._groups:
            values.update(read_section(cls._groups[name], value, where, f"{prefix}{name}."))
        else:
            values[prefix + name] = value
    return values


def declared_default(cls: type[_SettingsContainer], dotted: str) -> _AnyType:
    """The declared default of ``"group.name"`` in a settings class; UnknownSettingError when there is none."""
    *path, name = dotted.split(".")
    owner = cls
    for part in path:
        if part not in owner._groups:
            raise UnknownSettingError(f"unknown setting {dotted!r}")
        owner = owner._groups[part]
    if name not in owner._settings:
        raise UnknownSettingError(f"unknown setting {dotted!r}")
    return owner._settings[name].default


class SettingsObjectExists(ConfigurationError):
    """A create-only save found the section already written (by another process, since this one loaded)."""


class SettingsStore:
    """One tree of settings data over a Storage, written one section at a time under the storage's lock."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._data = storage.load()

    def get(self, key: tuple[str, ...]) -> dict | None:
        """A copy of the section at key, or None."""
        node: _AnyType = self._data
        for part in key:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return copy.deepcopy(node) if isinstance(node, dict) else None

    def children(self, key: tuple[str, ...]) -> list[str]:
        """The names of the sections under key (e.g. the account ids under ("accounts",))."""
        return sorted(self.sections(key))

    def sections(self, key: tuple[str, ...]) -> dict[str, dict]:
        """The sections under key by name, not copied: read them, never change them."""
        node: _AnyType = self._data
        for part in key:
            node = node.get(part) if isinstance(node, dict) else None
        return {name: value for name, value in node.items() if isinstance(value, dict)} if isinstance(node, dict) \
            else {}

    def commit(self, key: tuple[str, ...], data: dict | None, *, create: bool = False) -> None:
        """Replace (or with None remove) the section at key, re-reading the storage first so that concurrent
        writers of other sections are not undone. With create, SettingsObjectExists when the section is there."""
        with self.storage.lock():
            fresh = self.storage.load()
            node = fresh
            for part in key[:-1]:
                node = node.setdefault(part, {})
            if create and key[-1] in node:
                raise SettingsObjectExists(f"{'/'.join(key)} already exists")
            if data is None:
                node.pop(key[-1], None)
            else:
                node[key[-1]] = data
            self.storage.save(fresh)
            self._data = fresh


class ConfigurationManager(metaclass=Singleton):
    """The process-wide store of settings; ``start(storage)`` before creating settings objects."""

    def __init__(self) -> None:
        self._store: SettingsStore | None = None

    def start(self, storage: Storage | None = None) -> None:
        """Load the configuration from storage (default: FileStorage(default_config_dir())).

        Raises ConfigurationError when it cannot be read; the manager then stays stopped.
        """
        if self._store is not None:
            raise RuntimeError("ConfigurationManager is already started")
        self._store = SettingsStore(storage if storage is not None else FileStorage(default_config_dir()))

    def stop(self) -> None:
        self._store = None

    @property
    def started(self) -> bool:
        return self._store is not None

    @property
    def storage(self) -> Storage:
        return self._started_store().storage

    def get(self, key: tuple[str, ...]) -> dict | None:
        return self._started_store().get(key)

    def children(self, key: tuple[str, ...]) -> list[str]:
        return self._started_store().children(key)

    def sections(self, key: tuple[str, ...]) -> dict[str, dict]:
        return self._started_store().sections(key)

    def commit(self, key: tuple[str, ...], data: dict | None, *, create: bool = False) -> None:
        self._started_store().commit(key, data, create=create)

    def _started_store(self) -> SettingsStore:
        if self._store is None:
            raise ConfigurationError("the ConfigurationManager is not started")
        return self._store


class SettingsObject(_SettingsContainer):
    """A top-level settings container stored under ``key`` (a tuple path in the configuration tree)."""

    def __init__(self, key: tuple[str, ...], store: SettingsStore | ConfigurationManager | None = None) -> None:
        super().__init__()
        self._key = key
        self._store = store if store is not None else ConfigurationManager()
        data = self.upgrade(self._store.get(key))
        self._persisted = data is not None
        if data:
            path = getattr(self._store.storage, "path", None)  # FileStorage: name the file in error messages
            _load(self, data, where="/".join(key) + (f" of {path}" if path else ""))
        self._snapshot = settings_dict(self)

    @classmethod
    def upgrade(cls, data: dict | None) -> dict | None:
        """What is stored for such an object, with settings saved under an older name moved to their current
        one (a copy; the storage is rewritten by the next save()). Overridden where a setting was renamed."""
        return data

    @property
    def persisted(self) -> bool:
        """True once the object exists in its store (it was loaded from it or saved to it)."""
        return self._persisted

    def save(self, *, create: bool = False) -> None:
        """Write this object's settings; posts CFGSettingsObjectWasCreated or CFGSettingsObjectDidChange.

        create: only if the object is not in the store yet (checked under the store's lock): SettingsObjectExists
        when it is, e.g. written by another process since this one loaded the configuration.
        """
        current = settings_dict(self)
        modified = {name: (old, current[name]) for name, old in self._snapshot.items() if current[name] != old}
        if self._persisted and not modified and not create:
            return
        if create and self._persisted:
            raise SettingsObjectExists(f"{'/'.join(self._key)} already exists")
        self._store.commit(self._key, _dump(self), create=create)
        self._snapshot = current
        notification_center = NotificationCenter()
        if not self._persisted:
            self._persisted = True
            notification_center.post_notification("CFGSettingsObjectWasCreated", sender=self)
            return
        secrets = {name for name, setting, _ in iter_settings(self) if setting.secret}
        reported = {name: tuple(MASK if name in secrets and v else v for v in pair) for name, pair in modified.items()}
        notification_center.post_notification("CFGSettingsObjectDidChange", sender=self,
                                              data=NotificationData(modified=reported))

    def delete(self) -> None:
        """Remove this object from its store; posts CFGSettingsObjectWasDeleted."""
        if self._persisted:
            self._store.commit(self._key, None)
            self._persisted = False
        NotificationCenter().post_notification("CFGSettingsObjectWasDeleted", sender=self)
