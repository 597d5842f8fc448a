"""Test audio: sine WAVs in any common format, and the dominant frequency of a recording (Goertzel scan)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

from sipcli.wav import read_wav


def sine_wav(path: Path, frequency: float, seconds: float = 2.0, rate: int = 16000, channels: int = 1,
             width: int = 2, amplitude: float = 0.5) -> Path:
    """Write a sine tone WAV (8- or 16-bit, mono or stereo) and return its path."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        value = amplitude * math.sin(2 * math.pi * frequency * n / rate)
        sample = struct.pack("B", int(128 + 127 * value)) if width == 1 else struct.pack("<h", int(32767 * value))
        frames += sample * channels
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames))
    return path


def goertzel_power(samples: list[float], rate: int, frequency: float) -> float:
    """Signal power at one frequency."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coefficient * s1 * s2


def dominant_frequency(path: Path, low: int = 100, high: int = 3400, step: int = 10,
                       max_seconds: float = 1.0) -> float:
    """The frequency (to `step` Hz) with the most power in the loudest `max_seconds` window of a WAV."""
    audio = read_wav(path, rate=8000)
    window = int(audio.rate * max_seconds)
    samples = audio.samples
    if len(samples) > window:
        # Use the loudest window: recordings start and end with silence (setup, teardown, hold).
        energies = [sum(abs(v) for v in samples[i:i + window:8]) for i in range(0, len(samples) - window, window // 4)]
        start = max(range(len(energies)), key=energies.__getitem__) * (window // 4)
        samples = samples[start:start + window]
    data = [float(v) for v in samples]
    coarse = max(range(low, high, step), key=lambda f: goertzel_power(data, audio.rate, f))
    return float(max(range(coarse - step, coarse + step + 1), key=lambda f: goertzel_power(data, audio.rate, f)))


def rms(path: Path) -> float:
    """Root mean square amplitude of a WAV (0 = silence)."""
    samples = read_wav(path).samples
    return math.sqrt(sum(v * v for v in samples) / len(samples)) if samples else 0.0
