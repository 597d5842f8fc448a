"""The notification bus: python-application's NotificationCenter API, for Python 3.

Observers provide ``handle_notification(notification)``. Delivery follows registration order; a post
made while a notification is being delivered is queued and delivered after it (FIFO), whichever thread
makes it. An observer that raises is logged and the remaining observers still get the notification.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any as _AnyType

from sipcli.singleton import Singleton

__all__ = ["Any", "Notification", "NotificationCenter", "NotificationData", "UnknownSender"]

log = logging.getLogger(__name__)


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


Any = _Marker("Any")
UnknownSender = _Marker("UnknownSender")


class NotificationData:
    """A bag of attributes carried by a notification."""

    def __init__(self, **kwargs: _AnyType) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotificationData) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable


class Notification:
    """One posted event: name, sender, data and the UTC time it was posted."""

    __slots__ = ("data", "name", "sender", "timestamp")

    def __init__(self, name: str, sender: object = UnknownSender, data: NotificationData | None = None,
                 timestamp: datetime | None = None) -> None:
        self.name = name
        self.sender = sender
        self.data = data if data is not None else NotificationData()
        self.timestamp = timestamp if timestamp is not None else datetime.now(UTC)

    def __repr__(self) -> str:
        return f"Notification({self.name!r}, {self.sender!r}, {self.data!r})"


class NotificationCenter(metaclass=Singleton):
    """The process-wide dispatcher; every instantiation returns the same object."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._observers: list[tuple[object, object, object]] = []  # (observer, name, sender) in registration order
        self._queue: deque = deque()
        self._delivering = False

    def add_observer(self, observer: object, name: object = Any, sender: object = Any) -> None:
        """Register observer for notifications matching name and sender (Any matches everything)."""
        if not callable(getattr(observer, "handle_notification", None)):
            raise TypeError(f"{observer!r} does not provide handle_notification")
        with self._lock:
            entry = (observer, name, sender)
            if not any(self._same(entry, existing) for existing in self._observers):
                self._observers.append(entry)

    def remove_observer(self, observer: object, name: object = Any, sender: object = Any) -> None:
        """Unregister one registration; KeyError when it does not exist."""
        with self._lock:
            entry = (observer, name, sender)
            for index, existing in enumerate(self._observers):
                if self._same(entry, existing):
                    del self._observers[index]
                    return
        raise KeyError(f"{observer!r} is not registered for name={name!r} sender={sender!r}")

    def discard_observer(self, observer: object, name: object = Any, sender: object = Any) -> None:
        """Unregister one registration if it exists."""
        with contextlib.suppress(KeyError):
            self.remove_observer(observer, name, sender)

    def purge_observer(self, observer: object) -> None:
        """Unregister every registration of observer."""
        with self._lock:
            self._observers = [entry for entry in self._observers if entry[0] is not observer]

    def post_notification(self, name: str, sender: object = UnknownSender,
                          data: NotificationData | None = None) -> None:
        """Deliver a notification now, or after the one being delivered when called from a handler."""
        notification = Notification(name, sender, data if data is not None else NotificationData())
        with self._lock:
            self._queue.append(notification)
            if self._delivering:
                return
            self._delivering = True
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._delivering = False
                        return
                    current = self._queue.popleft()
                    observers = [entry[0] for entry in self._observers if self._matches(entry, current)]
                self._deliver(current, observers)
        except BaseException:
            with self._lock:
                self._delivering = False
            raise

    @staticmethod
    def _same(a: tuple, b: tuple) -> bool:
        return a[0] is b[0] and a[1] == b[1] and a[2] is b[2]

    @staticmethod
    def _matches(entry: tuple, notification: Notification) -> bool:
        _, name, sender = entry
        return (name is Any or name == notification.name) and (sender is Any or sender is notification.sender)

    @staticmethod
    def _deliver(notification: Notification, observers: list) -> None:
        for observer in observers:
            try:
                observer.handle_notification(notification)
            except Exception:
                log.exception("observer %r failed handling %s", observer, notification.name)
