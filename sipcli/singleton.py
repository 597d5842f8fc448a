"""Process-wide objects: the ``Singleton`` metaclass (python-application's idea, without its extras)."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Singleton"]


class Singleton(type):
    """Metaclass: the first call of a class creates and initialises its one instance; every later call returns
    that instance and ignores its arguments. Each class (subclasses too) has its own instance.

    ``reset_instance()`` on the class is a test hook; a class that must undo something when it is forgotten
    defines its own ``reset_instance`` classmethod and ends it with ``Singleton.reset_instance(cls)``.
    """

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        cls._instance: Any = None
        cls._instance_lock = threading.Lock()

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = cls._instance  # created already: no lock (NotificationCenter() runs for every notification)
        if instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = super().__call__(*args, **kwargs)
                instance = cls._instance
        return instance

    def reset_instance(cls) -> None:
        """Test hook: forget the instance; the next call creates and initialises a new one."""
        with cls._instance_lock:
            cls._instance = None
