"""The media streams of a session and the contract they share with it.

A session holds its streams by kind ({"audio": AudioStream, "chat": ChatStream}) and drives them only through
``MediaStream``: the SDP each writes into every offer and answer, what the answer to our offer said, start
(the session announced the stream), removal by a re-INVITE, close (the session ended). A stream tells its
session what happened through the ``on_event`` callback the session sets: a session notification to post
(``SessionNotification``, e.g. a received chat message), a change of the active streams (``StreamsChanged``)
or a failure that a session being set up cannot go on without (``StreamFailed``).
The streams post their own notifications (MediaStreamDidStart...) with themselves as sender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["MediaStream", "SessionNotification", "StreamEvent", "StreamFailed", "StreamsChanged"]


@dataclass(frozen=True)
class SessionNotification:
    """Post this notification with the session as sender (the reference names it a session notification)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamsChanged:
    """The stream left (or joined) the session outside a session transition: announce the active streams."""


@dataclass(frozen=True)
class StreamFailed:
    """The stream cannot be set up as the session was negotiated: a session still being set up fails with it."""

    reason: str


StreamEvent = SessionNotification | StreamsChanged | StreamFailed


class MediaStream(Protocol):
    kind: str  # 'audio' or 'chat': the key in Session.streams and in the notifications' stream lists
    on_event: Callable[[StreamEvent], None] | None

    @property
    def started(self) -> bool:
        """Negotiated in the session's current SDP."""

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        """pjsua thread (plain data only): this stream's part of an SDP the engine made, remote: the offer it
        answers (None: local is our offer)."""

    def answer_received(self, sdp: str) -> bool:
        """The answer to our offer arrived (a 2xx body): whether it kept this stream."""

    def start(self) -> None:
        """The session announced the stream (SIPSessionDidStart, or an accepted proposal): begin."""

    def removed(self) -> None:
        """A re-INVITE removed the stream from the SDP."""

    def close(self) -> None:
        """The session is over, or the stream left it: release what it holds."""
