"""Where settings live: ``FileStorage`` (one JSON file, written atomically) and ``MemoryStorage``.

A storage holds one tree of plain JSON data. ``load()`` returns it; ``save(data)`` replaces it. ``lock()`` is a
context manager that serializes read-modify-write cycles, also across processes for ``FileStorage``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

__all__ = ["CONFIG_FILENAME", "ConfigurationError", "FileStorage", "MemoryStorage", "Storage", "default_config_dir"]

CONFIG_FILENAME = "config.json"
FORMAT_VERSION = 1


MAX_DEPTH = 16  # settings nest a few levels; anything deeper is not a configuration


def shape_problem(data: object) -> str | None:
    """What makes data not a settings tree (None when it is one): the top level and every section under it
    must be JSON objects (``accounts`` holds one object per account), nested at most MAX_DEPTH levels."""
    if not isinstance(data, dict):
        return f"the top level is {_kind(data)}, not an object"
    for name, section in data.items():
        if name == "version":
            continue
        if not isinstance(section, dict):
            return f"{name!r} is {_kind(section)}, not an object"
        if name == "accounts":
            for account_id, account in section.items():
                if not isinstance(account, dict):
                    return f"account {account_id!r} is {_kind(account)}, not an object"
    stack: list[tuple[dict | list, int]] = [(data, 1)]
    while stack:  # iterative: a deep file must not exhaust the recursion that copying it would use
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class ConfigurationError(Exception):
    """The configuration cannot be read, is invalid, or cannot be written; the message says which and why."""


def default_config_dir() -> Path:
    """$SIPCLI_CONFIG_DIR, else $XDG_CONFIG_HOME/sipcli, else ~/.config/sipcli."""
    env = os.environ.get("SIPCLI_CONFIG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sipcli"


class Storage(Protocol):
    def load(self) -> dict: ...

    def save(self, data: dict) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager: ...


class MemoryStorage:
    """Settings kept in this process only: ad hoc accounts and tests."""

    def __init__(self, data: dict | None = None) -> None:
        self._data = copy.deepcopy(data) if data else {}
        self._lock = threading.RLock()

    def load(self) -> dict:
        with self._lock:
            return copy.deepcopy(self._data)

    def save(self, data: dict) -> None:
        # A JSON round trip keeps MemoryStorage exactly as strict as FileStorage about what can be stored.
        with self._lock:
            self._data = json.loads(json.dumps(data))

    def lock(self) -> contextlib.AbstractContextManager:
        return self._lock


class FileStorage:
    """``<directory>/config.json``: human-readable JSON, mode 0600 in a 0700 directory, replaced atomically.

    A file that exists but cannot be read or parsed raises ConfigurationError and is never written over:
    ``save()`` refuses to run until a ``load()`` of that file has succeeded.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CONFIG_FILENAME
        self._lock_path = self.directory / ".config.lock"
        self._verified = False
        self._thread_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"FileStorage({str(self.directory)!r})"

    def load(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._verified = True
            return {}
        except OSError as e:
            raise ConfigurationError(f"cannot read {self.path}: {e.strerror or e}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigurationError(f"{self.path} is corrupt ({e}); fix or remove it") from None
        except RecursionError:
            data = None
            problem: str | None = f"nested deeper than {MAX_DEPTH} levels"
        else:
            problem = shape_problem(data)
        if problem is not None:
            raise ConfigurationError(f"{self.path} is invalid ({problem}); fix or remove it")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ConfigurationError(f"{self.path} has format version {version!r}; this sipcli reads version "
                                     f"{FORMAT_VERSION}")
        self._verified = True
        return data

    def save(self, data: dict) -> None:
        import tempfile  # only writers need it (with shutil and random): not on every command's startup path

        if not self._verified:
            self.load()  # raises, and so protects a file we could not read
        text = json.dumps({**data, "version": FORMAT_VERSION}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self._ensure_directory()
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{CONFIG_FILENAME}.", suffix=".tmp", dir=self.directory)
        except OSError as e:
            raise ConfigurationError(f"cannot write {self.path}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as tmp:  # mkstemp creates it 0600
                tmp.write(text)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(e, OSError):
                raise ConfigurationError(f"cannot write {self.path}: {e.strerror or e}") from None
            raise
        self._fsync_directory()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the configuration directory (flock: released even on kill -9)."""
        with self._thread_lock:
            self._ensure_directory()
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as e:
                raise ConfigurationError(f"cannot lock {self.directory}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigurationError(f"cannot create {self.directory}: {e.strerror or e}") from None

    def _fsync_directory(self) -> None:
        # Makes the rename itself durable; without it a power loss can bring back the old file.
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
