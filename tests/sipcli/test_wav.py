"""sipcli.wav: every common WAV becomes mono 16-bit at the bridge rate, tone preserved."""

import wave

import pytest

from sipcli.wav import AudioFormatError, PlaybackFile, convert_wav, read_wav
from tests.support.audio import dominant_frequency, sine_wav


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, 44100, 48000])
@pytest.mark.parametrize(("channels", "width"), [(1, 2), (2, 2), (1, 1), (2, 1)])
def test_convert_keeps_tone(tmp_path, rate, channels, width):
    source = sine_wav(tmp_path / "in.wav", 440, seconds=0.5, rate=rate, channels=channels, width=width)
    convert_wav(source, tmp_path / "out.wav", 16000)
    with wave.open(str(tmp_path / "out.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert abs(wav.getnframes() - 8000) < 20
    assert dominant_frequency(tmp_path / "out.wav") == pytest.approx(440, abs=10)


def test_playback_file_uses_original_when_it_fits(tmp_path):
    source = sine_wav(tmp_path / "in.wav", 600, seconds=0.2, rate=16000)
    with PlaybackFile(source, 16000) as playback:
        assert playback.path == source
    assert source.exists()


def test_playback_file_temp_copy_removed(tmp_path):
    source = sine_wav(tmp_path / "in.wav", 600, seconds=0.2, rate=44100, channels=2)
    with PlaybackFile(source, 16000) as playback:
        converted = playback.path
        assert converted != source and converted.exists()
        assert read_wav(converted).rate == 16000
    assert not converted.exists()


def test_not_a_wav(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        PlaybackFile(bad, 16000)
