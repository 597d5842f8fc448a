"""Estimated call quality: the ITU-T G.107 E-model from codec, packet loss, jitter and delay (pure functions).

R = R0 - Is - Id - Ie,eff + A with G.107's default values for everything a call does not measure (R0 - Is =
93.2, A = 0). Id is the common closed form of G.107's delay impairment for the default echo parameters
(Cole & Rosenbluth, 2001): Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3). Ie,eff = Ie + (95 - Ie) Ppl /
(Ppl / BurstR + Bpl) with random loss (BurstR = 1). The one-way delay d is estimated as RTT/2 (0 without RTCP) +
the jitter buffer (2 x mean jitter) + one 20 ms frame. MOS from R is G.107 Annex B.

Codec values (Ie, Bpl) are narrowband ones from ITU-T G.113 Appendix I where it has them; ``CODECS`` says where
each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CODECS", "METHOD", "CodecImpairment", "QualityEstimate", "codec_impairment", "delay_impairment",
           "effective_equipment_impairment", "estimate", "mos_from_r", "one_way_delay"]

METHOD = "ITU-T G.107 E-model (G.113 App. I Ie/Bpl; d = RTT/2 + 2 x jitter + 20 ms)"
R_DEFAULT = 93.2  # R0 - Is with G.107's default parameters
FRAME_MS = 20.0


@dataclass(frozen=True)
class CodecImpairment:
    ie: float  # equipment impairment factor
    bpl: float  # packet-loss robustness factor
    source: str


_G711_PLC = CodecImpairment(0.0, 25.1, "G.113 App. I: G.711 with PLC (G.711 App. I)")
# Keys: pjsua's codec names, lower case. Where G.113 has no value, the entry says what is assumed instead.
CODECS: dict[str, CodecImpairment] = {
    "pcmu": _G711_PLC,
    "pcma": _G711_PLC,
    "gsm": CodecImpairment(20.0, 4.3, "G.113 App. I: GSM 06.10 Ie 20; no Bpl in G.113: G.107's default 4.3"),
    "g722": CodecImpairment(0.0, 25.1, "assumed: no narrowband G.113 value; as G.711 with PLC"),
    "l16": CodecImpairment(0.0, 25.1, "assumed: uncompressed; as G.711 with PLC"),
    "ilbc": CodecImpairment(11.0, 4.3, "assumed: no G.113 value; Ie 11 (13.3-15.2 kbit/s CELP), Bpl default 4.3"),
    "speex": CodecImpairment(11.0, 4.3, "assumed: no G.113 value; Ie 11 (8 kbit/s CELP), Bpl default 4.3"),
}
_UNKNOWN = CodecImpairment(0.0, 4.3, "assumed: unknown codec; Ie 0, Bpl default 4.3")


@dataclass(frozen=True)
class QualityEstimate:
    mos: float
    r_factor: float
    delay_ms: float
    method: str
    codec_source: str


def codec_impairment(codec: str | None) -> CodecImpairment:
    return CODECS.get((codec or "").lower(), _UNKNOWN)


def one_way_delay(rtt_ms: float | None, jitter_ms: float) -> float:
    """The estimated mouth-to-ear delay (ms) that Id uses."""
    return (rtt_ms or 0.0) / 2 + 2 * max(jitter_ms, 0.0) + FRAME_MS


def delay_impairment(delay_ms: float) -> float:
    """Id for a one-way delay in ms."""
    delay = max(delay_ms, 0.0)
    return 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)


def effective_equipment_impairment(codec: CodecImpairment, loss_percent: float, burst_ratio: float = 1.0) -> float:
    """Ie,eff for a packet loss of loss_percent (0-100)."""
    loss = min(max(loss_percent, 0.0), 100.0)
    return codec.ie + (95 - codec.ie) * loss / (loss / burst_ratio + codec.bpl)


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated MOS (1 to 4.5) for a rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)  # the cubic dips below 1 for R < 6.5


def estimate(codec: str | None, loss_percent: float, jitter_ms: float, rtt_ms: float | None) -> QualityEstimate:
    """The E-model's R and MOS for what one side of a call received."""
    impairment = codec_impairment(codec)
    delay = one_way_delay(rtt_ms, jitter_ms)
    r = R_DEFAULT - delay_impairment(delay) - effective_equipment_impairment(impairment, loss_percent)
    r = min(max(r, 0.0), 100.0)
    return QualityEstimate(round(mos_from_r(r), 2), round(r, 1), round(delay, 1), METHOD, impairment.source)
