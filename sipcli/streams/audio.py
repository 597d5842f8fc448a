"""The audio stream of a session: what pjsua negotiated, and what to play, echo and record into the call."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sipcli.sessiondescription import audio_active
from sipcli.streams import StreamEvent
from sipcli.wav import PlaybackFile

__all__ = ["AudioStream"]

_NEEDLESS = ("b=AS:", "b=TIAS:", "a=ssrc:")


class AudioStream:
    """The audio stream of a session: negotiated parameters (loop thread) and its WAV player/recorder.

    ``play``, ``echo`` and recording take effect whenever the stream (re)starts: pjsua recreates it on hold and
    unhold and may move it to another conference slot, so connections are remade on every media update.
    """

    kind = "audio"

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate  # the bridge's: what a played WAV is converted to
        self.on_event: Callable[[StreamEvent], None] | None = None
        self.codec: str | None = None
        self.sample_rate: int | None = None
        self.srtp_active = False
        self.local_rtp_address: str | None = None
        self.local_rtp_port: int | None = None
        self.remote_rtp_address_sdp: str | None = None
        self.remote_rtp_port_sdp: int | None = None
        self.remote_rtp_address_received: str | None = None
        self.remote_rtp_port_received: int | None = None
        self.packets_received = 0
        self.started = False
        self.recording_file_name: str | None = None
        self.play_file: str | None = None  # what the player plays (a converted copy when needed)
        self.echo = False
        self._playback: PlaybackFile | None = None

    @property
    def was_received(self) -> bool:
        return self.packets_received > 0

    def set_play(self, source: str | os.PathLike | None) -> None:
        """Play this WAV (any common format; converted to the bridge rate) into the call, in a loop."""
        if self._playback is not None:
            self._playback.close()
            self._playback = None
        if source is not None:
            self._playback = PlaybackFile(source, self.clock_rate)
        self.play_file = str(self._playback.path) if self._playback is not None else None

    # MediaStream: pjsua negotiates and runs the audio itself; media updates come through the session.

    def rewrite_sdp(self, local: str, remote: str | None) -> str:
        """pjsua writes the audio lines itself; dropped are the lines no peer needs (bandwidth hints, a=ssrc), so that
        an INVITE stays under the 1,300 bytes past which pjsip sends it over TCP instead of UDP."""
        lines = local.split("\r\n")
        kept = [line for line in lines if not line.startswith(_NEEDLESS)]
        return "\r\n".join(kept) if len(kept) != len(lines) else local

    def answer_received(self, sdp: str) -> bool:
        return audio_active(sdp)

    def start(self) -> None:
        """pjsua starts the audio with the call."""

    def removed(self) -> None:
        self.started = False

    def close(self) -> None:
        """Loop thread, after the pjsua side is gone: remove a converted playback copy."""
        if self._playback is not None:
            self._playback.close()
            self._playback = None

    def update(self, info: dict[str, Any]) -> None:
        for name, value in info.items():
            setattr(self, name, value)
