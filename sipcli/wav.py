"""WAV files for headless audio: convert what users give to what pjsua's player takes, and read recordings.

pjsua's AudioMediaPlayer wants mono 16-bit PCM at the conference bridge clock rate; users have WAVs at any
common rate, mono or stereo, 8 or 16 bit. Conversion is done with the standard library only.
"""

from __future__ import annotations

import array
import math
import os
import sys
import tempfile
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # audioop is deprecated from 3.12 and gone in 3.13; sipcli is bound to <3.13 by the pjsua2 wheels.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["AudioFormatError", "PCMAudio", "PlaybackFile", "convert_wav", "read_wav", "sine", "write_wav"]


class AudioFormatError(ValueError):
    """The file is not a WAV sipcli can read (not RIFF/WAVE PCM, or an unsupported sample width)."""


@dataclass
class PCMAudio:
    """Mono signed 16-bit samples at a sample rate."""

    samples: array.array
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0


def sine(frequency: float, seconds: float, rate: int = 16000, amplitude: float = 0.5) -> PCMAudio:
    """A sine tone."""
    step = 2 * math.pi * frequency / rate
    scale = 32767 * amplitude
    return PCMAudio(array.array("h", (int(scale * math.sin(step * n)) for n in range(int(seconds * rate)))), rate)


def _read_frames(path: str | os.PathLike) -> tuple[bytes, int, int, int]:
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width not in (1, 2, 3, 4) or channels not in (1, 2) or rate <= 0:
        raise AudioFormatError(f"{path}: unsupported WAV ({channels} channels, {8 * width}-bit, {rate} Hz)")
    return frames, channels, width, rate


def _to_mono16(frames: bytes, channels: int, width: int, rate: int, target_rate: int) -> bytes:
    if width == 1:
        frames = audioop.bias(frames, 1, -128)  # WAV stores 8-bit samples unsigned
    if width != 2:
        frames = audioop.lin2lin(frames, width, 2)
    if channels == 2:
        frames = audioop.tomono(frames, 2, 0.5, 0.5)
    if rate != target_rate:
        frames, _ = audioop.ratecv(frames, 2, 1, rate, target_rate, None)
    return frames


def read_wav(path: str | os.PathLike, rate: int | None = None) -> PCMAudio:
    """Read a WAV as mono 16-bit samples, resampled to rate when given."""
    frames, channels, width, source_rate = _read_frames(path)
    target = rate or source_rate
    samples = array.array("h")
    samples.frombytes(_to_mono16(frames, channels, width, source_rate, target))
    if sys.byteorder == "big":
        samples.byteswap()
    return PCMAudio(samples, target)


def _write_mono16(path: str | os.PathLike, rate: int, frames: bytes) -> None:
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)


def write_wav(path: str | os.PathLike, audio: PCMAudio) -> None:
    """Write mono 16-bit PCM."""
    samples = audio.samples
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    _write_mono16(path, audio.rate, samples.tobytes())


def convert_wav(source: str | os.PathLike, destination: str | os.PathLike, rate: int) -> None:
    """Write source as mono 16-bit PCM at rate to destination."""
    frames, channels, width, source_rate = _read_frames(source)
    _write_mono16(destination, rate, _to_mono16(frames, channels, width, source_rate, rate))


class PlaybackFile:
    """A WAV prepared for pjsua's player: the original when it already fits, else a converted temp copy.

    Use as a context manager or call close(); the temporary copy is removed on close.
    """

    def __init__(self, source: str | os.PathLike, rate: int) -> None:
        self.source = Path(source)
        frames, channels, width, source_rate = _read_frames(self.source)
        self._temporary = not (channels == 1 and width == 2 and source_rate == rate)
        if self._temporary:
            fd, name = tempfile.mkstemp(prefix="sipcli-play-", suffix=".wav")
            os.close(fd)
            try:
                _write_mono16(name, rate, _to_mono16(frames, channels, width, source_rate, rate))
            except BaseException:
                os.unlink(name)
                raise
            self.path = Path(name)
        else:
            self.path = self.source

    def close(self) -> None:
        if self._temporary:
            self.path.unlink(missing_ok=True)
            self._temporary = False

    def __enter__(self) -> PlaybackFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
