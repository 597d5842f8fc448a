"""Media setup of the engine: codec priorities and the RTP settings of every pj.Account (pjsua thread), and how
large an SDP pjsua2 can hand to Python (``fit_codecs``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sipcli.pjsua.engine import Engine, EngineError

__all__ = ["SDP_BUFFER_SIZE", "SRTP_SUITES", "CodecError", "MediaSettings", "SDPTooLarge", "apply_media_settings",
           "call_codecs", "fit_codecs", "set_codecs"]

# pjsua2 prints every SDP it makes into a buffer of this size for onCallSdpCreated; a larger SDP reads as empty
# and cannot be rewritten (the chat line cannot be added).
SDP_BUFFER_SIZE = 1024
# The SDES suites every call offers, as tags 1 and 2: the two of RFC 4568 that SDES peers implement (the reference
# client answers tag 1 and keeps it on re-answers). pjsua's default adds the two AES-256 suites, about 84 bytes each
# per audio line: they pushed sipcli's INVITE towards the 1,300 bytes past which pjsip sends it over TCP, and left no
# room for a chat session's second media line in pjsua2's SDP buffer. pjmedia takes an answer's tag only up to the
# number of suites, so re-offers carry our key under tags 1 and 2 (sipcli.sdes.offer_key_under_tags).
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

# Bytes of an SDP as pjsua 2.15.1 prints it into that buffer (before any rewrite: b=AS, b=TIAS and a=ssrc are
# dropped from what is sent only afterwards, sipcli.streams.audio), measured on loopback with a 9-character
# address, 5-digit ports and natTypeInSdp 0 (no a=X-nat). Each figure is the largest the digits allow:
# the session lines (10-digit o= ids, b=AS up to 4 digits); an audio line without codecs (m=, c=, b=TIAS up to
# 7 digits, a=rtcp, a=sendrecv, the telephone-event rtpmap/fmtp at up to 5-digit rates, a=ssrc with a 10-digit
# SSRC); one a=crypto line; each codec family's rtpmap/fmtp lines and format numbers, with the telephone-event
# format of each clock rate it adds (speex two, L16 one), per audio line.
_SDP_SESSION = 78
_SDP_AUDIO_LINE = 201
_SDP_CRYPTO = 84
_SDP_CODEC = {"g722": 24, "pcmu": 24, "pcma": 24, "gsm": 22, "ilbc": 45, "l16": 111, "speex": 196}
_SDP_UNKNOWN_CODEC = 200
_MEASURED_ADDRESS = 9


class CodecError(EngineError):
    """None of the wanted codecs is available in this engine."""


class SDPTooLarge(EngineError):
    """Not even one codec makes an SDP that pjsua2 can print into its buffer."""


def sdp_size(codecs: Sequence[str], media_lines: int, crypto_lines: int, address_length: int = 15) -> int:
    """An upper estimate of the SDP pjsua makes with these codec families on media_lines audio lines, each with
    crypto_lines a=crypto lines (IPv4 addresses up to address_length characters, 5-digit ports)."""
    per_line = _SDP_AUDIO_LINE + crypto_lines * _SDP_CRYPTO + \
        sum(_SDP_CODEC.get(codec.lower(), _SDP_UNKNOWN_CODEC) for codec in codecs)
    address = max(0, address_length - _MEASURED_ADDRESS)
    # the address is in o= once and in c= and a=rtcp of each line
    return _SDP_SESSION + address + media_lines * (per_line + 2 * address)


def fit_codecs(codecs: Sequence[str], media_lines: int, crypto_lines: int, limit: int = SDP_BUFFER_SIZE,
               address_length: int = 15) -> list[str]:
    """The codecs to offer, in order of preference, so that the SDP fits into limit bytes: each one is kept when
    it still fits next to those before it (a large one, like speex with its three clock rates, is left out for
    the smaller ones after it). SDPTooLarge when not even one codec fits."""
    fitting: list[str] = []
    for codec in codecs:
        if sdp_size([*fitting, codec], media_lines, crypto_lines, address_length) <= limit:
            fitting.append(codec)
    if not fitting:
        raise SDPTooLarge(f"an SDP with {media_lines} media lines{' and SRTP' if crypto_lines else ''} exceeds "
                          f"the {limit}-byte buffer of pjsua2 even with one codec")
    return fitting


@dataclass(frozen=True)
class MediaSettings:
    """What a process that carries calls sets on each account's media: the RTP port range (None: any port)."""

    rtp_port_range: tuple[int, int] | None = None


def apply_media_settings(config: Any, settings: MediaSettings, local_ip: str | None) -> None:
    """RTP on the engine's address (IPv6 too), in the port range; no re-INVITE to lock a codec when the answer
    lists several (peers such as SIPp do not expect one). config: a pj.AccountConfig."""
    media = config.mediaConfig
    media.lockCodecEnabled = False
    if local_ip:
        media.transportConfig.boundAddress = local_ip
        media.transportConfig.publicAddress = local_ip
        if ":" in local_ip:  # IPv6 RTP (the engine started its IPv6 transports only with the IPv6 capability)
            import pjsua2 as pj

            media.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
            config.sipConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
    if settings.rtp_port_range is not None:
        start, end = settings.rtp_port_range
        media.transportConfig.port = start
        media.transportConfig.portRange = end - start
        media.transportConfig.randomizePort = True


_configured: list[str] = []  # pjsua thread: what set_codecs last applied, restored after call_codecs


def set_codecs(names: list[str]) -> list[str]:
    """pjsua thread: codecs in names get descending priorities, every other codec is disabled."""
    enabled = _prioritize(names)
    _configured[:] = names
    return enabled


@contextlib.contextmanager
def call_codecs(names: list[str] | None) -> Iterator[None]:
    """pjsua thread: the SDP that pjsua makes inside the block offers only these codecs (None: the configured
    ones). Codec priorities are the endpoint's, so they are set for the block and restored after it."""
    if not names or not _configured or names == _configured:
        yield
        return
    _prioritize(names)
    try:
        yield
    finally:
        _prioritize(list(_configured))


def _prioritize(names: list[str]) -> list[str]:
    endpoint = Engine().endpoint
    available = [info.codecId for info in endpoint.codecEnum2()]
    wanted = [name.lower() for name in names]
    enabled = []
    for codec_id in available:
        name = codec_id.split("/", 1)[0].lower()
        priority = 0
        if name in wanted:
            priority = 255 - wanted.index(name) * 10 - (0 if codec_id.endswith("/16000/1") else 1)
            enabled.append(codec_id)
        endpoint.codecSetPriority(codec_id, max(priority, 0))
    if not enabled:
        raise CodecError(f"none of the codecs {', '.join(names)} is available "
                         f"(available: {', '.join(sorted({c.split('/')[0] for c in available}))})")
    return enabled
