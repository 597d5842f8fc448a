"""The audio stream of a session: what pjsua negotiated, and what to play, echo and record into the call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from sipcli.notification import NotificationCenter, NotificationData
from sipcli.pjsua.events import StreamFigures
from sipcli.quality import estimate
from sipcli.sessiondescription import audio_active
from sipcli.streams import StreamEvent
from sipcli.wav import PlaybackFile

__all__ = ["AudioStream"]


class AudioStream:
    """The audio stream of a session: negotiated parameters (loop thread) and its WAV player/recorder.

    ``play``, ``echo`` and recording take effect whenever the stream (re)starts: pjsua recreates it on hold and
    unhold and may move it to another conference slot, so connections are remade on every media update.
    """

    kind = "audio"

    def __init__(self, clock_rate: int, notification_id: str = "audio") -> None:
        self.clock_rate = clock_rate  # the bridge's: what a played WAV is converted to
        self.notification_id = notification_id
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
        self.failure: str | None = None
        self.recording_file_name: str | None = None
        self.play_file: str | None = None  # what the player plays (a converted copy when needed)
        self.echo = False
        self._playback: PlaybackFile | None = None
        self._figures: StreamFigures | None = None  # the current pjsua stream's
        self._earlier: StreamFigures | None = None  # the streams pjsua replaced (hold, unhold), summed

    @property
    def was_received(self) -> bool:
        return self.packets_received > 0

    _COUNTERS = ("packets_sent", "bytes_sent", "packets_received", "bytes_received", "packets_lost",
                 "packets_discarded", "packets_duplicated", "packets_reordered", "remote_packets_lost")

    def add_figures(self, figures: StreamFigures, stream_ended: bool = False) -> None:
        """The latest figures of pjsua's stream; stream_ended: its last ones (pjsua recreates the stream on hold
        and unhold, with new counters), kept to add to the next streams'."""
        if stream_ended:
            self._earlier = figures if self._earlier is None else _summed(self._earlier, figures)
            self._figures = None
        elif self._figures is not None or figures.packets_sent or figures.packets_received:
            self._figures = figures

    @property
    def figures(self) -> StreamFigures | None:
        """The whole call's figures so far (every stream pjsua made for it)."""
        if self._figures is None or self._earlier is None:
            return self._figures or self._earlier
        return _summed(self._earlier, self._figures)

    def quality(self) -> dict[str, Any] | None:
        """The call's figures and its estimated MOS (notification data), or None before any were read."""
        figures = self.figures
        if figures is None:
            return None
        expected = figures.packets_received + figures.packets_lost
        loss = 100.0 * figures.packets_lost / expected if expected else 0.0
        mos = estimate(figures.codec or self.codec, loss, figures.jitter_mean_ms or 0.0, figures.rtt_ms)
        data = dataclasses.asdict(figures)
        data["codec"] = figures.codec or self.codec
        data.update(loss_percent=round(loss, 2), mos=mos.mos, r_factor=mos.r_factor, mos_method=mos.method,
                    estimated_delay_ms=mos.delay_ms, codec_impairment_source=mos.codec_source)
        return data

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
        """pjsua writes the audio lines itself (the session drops the lines no stream needs)."""
        return local

    def answer_received(self, sdp: str) -> bool:
        return audio_active(sdp)

    def start(self) -> None:
        """pjsua starts the audio with the call."""

    def removed(self) -> None:
        self.started = False

    def fail(self, reason: str) -> None:
        """The engine gave the audio line up (it closed the line's media transport): MediaStreamDidFail."""
        self.started = False
        if self.failure is None:
            self.failure = reason
            NotificationCenter().post_notification("MediaStreamDidFail", sender=self,
                                                   data=NotificationData(reason=reason))

    def close(self) -> None:
        """Loop thread, after the pjsua side is gone: remove a converted playback copy."""
        if self._playback is not None:
            self._playback.close()
            self._playback = None

    def update(self, info: dict[str, Any]) -> None:
        for name, value in info.items():
            setattr(self, name, value)


def _summed(earlier: StreamFigures, later: StreamFigures) -> StreamFigures:
    """Two successive streams of one call as one: counters added, the later jitter mean and RTT, the larger max."""
    counters = {name: getattr(earlier, name) + getattr(later, name) for name in AudioStream._COUNTERS}
    maxima = [value for value in (earlier.jitter_max_ms, later.jitter_max_ms) if value is not None]
    return dataclasses.replace(later, **counters, jitter_max_ms=max(maxima) if maxima else None,
                               jitter_mean_ms=later.jitter_mean_ms if later.jitter_mean_ms is not None
                               else earlier.jitter_mean_ms,
                               rtt_ms=later.rtt_ms if later.rtt_ms is not None else earlier.rtt_ms)
