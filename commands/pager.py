"""What `listen` adds for pager mode (RFC 3428 MESSAGE): --messages N and --timeout (which also bounds a listen
for sessions), and counting what came.

Every incoming MESSAGE is printed whatever the options (the engine posts SIPEngineGotMessage and every
notification is a line); this only decides when a listener has received enough of them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import click

from sipcli.notification import NotificationCenter

__all__ = ["MessageCounter", "message_options"]


def message_options(command: Callable) -> Callable:
    """--messages N and --timeout SECONDS; the command gets ``messages`` and ``timeout``."""

    @click.option("--messages", type=click.IntRange(1), default=None, metavar="N",
                  help="Exit 0 after N incoming MESSAGEs (pager mode).")
    @click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
                  help="Stop listening after this many seconds: exit 3 when no session arrived (with --messages: "
                       "when fewer MESSAGEs came), else as after --count (sessions still going are ended first) "
                       "[default: listen until --count, --messages or interrupted].")
    @functools.wraps(command)
    def wrapper(*args: Any, messages: int | None, timeout: float | None, **kwargs: Any) -> Any:
        return command(*args, messages=messages, timeout=timeout, **kwargs)

    return wrapper


class MessageCounter:
    """Counts SIPEngineGotMessage (composing indications are not messages) and wakes up after N of them."""

    def __init__(self, wanted: int | None) -> None:
        self.wanted = wanted
        self.received = 0
        self.enough = asyncio.Event()
        NotificationCenter().add_observer(self, name="SIPEngineGotMessage")

    def handle_notification(self, notification: Any) -> None:
        self.received += 1
        if self.wanted is not None and self.received >= self.wanted:
            self.enough.set()

    async def wait(self, sessions_done: asyncio.Event | None, timeout: float | None) -> bool:
        """Until the sessions asked for are done (sessions_done) and N messages came; False on timeout."""
        waits = [event.wait() for event in (sessions_done, self.enough if self.wanted else None) if event is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        NotificationCenter().discard_observer(self, name="SIPEngineGotMessage")
