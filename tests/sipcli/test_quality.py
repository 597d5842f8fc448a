"""The E-model (sipcli.quality) and how an audio stream sums pjsua's figures across recreated streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipcli.pjsua.events import StreamFigures
from sipcli.quality import (
    CODECS,
    codec_impairment,
    delay_impairment,
    effective_equipment_impairment,
    estimate,
    mos_from_r,
    one_way_delay,
)
from sipcli.streams.audio import AudioStream


def test_mos_from_r_matches_g107_annex_b():
    assert mos_from_r(0) == 1.0 and mos_from_r(-5) == 1.0
    assert mos_from_r(100) == 4.5
    assert mos_from_r(93.2) == pytest.approx(4.409, abs=0.001)  # G.107's default connection
    assert mos_from_r(50) == pytest.approx(2.575, abs=0.001)  # 1 + 1.75 + 50 * -10 * 50 * 7e-6
    assert mos_from_r(0.5) == 1.0  # the cubic alone gives 0.997 here


def test_delay_impairment_has_its_knee_at_177_ms():
    assert delay_impairment(100) == pytest.approx(2.4)
    assert delay_impairment(177.3) == pytest.approx(0.024 * 177.3)
    assert delay_impairment(300) == pytest.approx(0.024 * 300 + 0.11 * (300 - 177.3))


def test_effective_equipment_impairment_uses_the_g113_values():
    g711 = codec_impairment("PCMU")
    assert (g711.ie, g711.bpl) == (0.0, 25.1)
    assert effective_equipment_impairment(g711, 0) == 0
    assert effective_equipment_impairment(g711, 10) == pytest.approx(95 * 10 / 35.1)
    gsm = codec_impairment("gsm")
    assert gsm.ie == 20 and effective_equipment_impairment(gsm, 0) == 20
    assert effective_equipment_impairment(g711, 100) < 95


def test_every_codec_of_the_engine_has_a_stated_source():
    for name in ("pcmu", "pcma", "g722", "gsm", "ilbc", "speex", "l16"):
        assert CODECS[name].source
    assert "unknown" in codec_impairment("opus").source


def test_estimate_clean_g711_call_is_toll_quality_and_loss_lowers_it():
    clean = estimate("PCMU", 0, 0.2, 0.2)
    assert clean.mos == pytest.approx(4.4, abs=0.02) and clean.r_factor > 92
    lossy = estimate("PCMU", 10, 0.2, 0.2)
    assert 3.0 < lossy.mos < 3.7  # R about 65: "many users dissatisfied"
    assert "G.107" in lossy.method
    assert estimate("GSM", 0, 0, None).mos < clean.mos
    assert one_way_delay(None, 10) == 40
    assert estimate("PCMU", 0, 0, 600).mos < clean.mos


@given(st.sampled_from(sorted(CODECS)), st.floats(0, 100), st.floats(0, 1000), st.none() | st.floats(0, 5000))
def test_estimate_is_bounded_and_monotonic_in_loss(codec, loss, jitter, rtt):
    result = estimate(codec, loss, jitter, rtt)
    assert 1.0 <= result.mos <= 4.5 and 0 <= result.r_factor <= 100
    assert estimate(codec, min(loss + 1, 100), jitter, rtt).mos <= result.mos


def _figures(sent: int, received: int, lost: int, jitter_max: float | None = 1.0) -> StreamFigures:
    return StreamFigures("PCMU", 8000, sent, sent * 160, received, received * 160, lost, 0, 0, 0, 0.5, jitter_max,
                         0.3, 0)


def test_audio_stream_sums_the_streams_pjsua_recreated():
    stream = AudioStream(8000)
    assert stream.quality() is None
    stream.add_figures(_figures(40, 40, 0))
    stream.add_figures(_figures(50, 45, 5, jitter_max=4.0), stream_ended=True)  # hold: the stream is replaced
    stream.add_figures(_figures(20, 18, 2))
    figures = stream.figures
    assert figures is not None
    assert (figures.packets_sent, figures.packets_received, figures.packets_lost) == (70, 63, 7)
    assert figures.jitter_max_ms == 4.0
    quality = stream.quality()
    assert quality is not None and quality["loss_percent"] == 10.0 and quality["codec"] == "PCMU"
    stream.add_figures(_figures(30, 27, 3), stream_ended=True)  # hang-up: the last figures
    assert stream.quality()["packets_sent"] == 80
