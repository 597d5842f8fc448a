"""Media setup of the engine: codec priorities and the RTP settings of every pj.Account (pjsua thread), and how
large an SDP pjsua2 can hand to Python (``fit_codecs``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sipcli.pjsua.engine import Engine, EngineError

__all__ = ["CHAT_SRTP_SUITES", "SDP_BUFFER_SIZE", "CodecError", "MediaSettings", "SDPTooLarge", "apply_media_settings",
           "call_codecs", "call_srtp_suites", "fit_codecs", "set_codecs", "srtp_crypto_vector",
           "srtp_suites"]

# pjsua2 prints every SDP it makes into a buffer of this size for onCallSdpCreated; a larger SDP reads as empty
# and cannot be rewritten (the chat line cannot be added).
SDP_BUFFER_SIZE = 1024
# The SDES suites (RFC 4568) an account's calls offer: every one pjmedia has (4 in this build), the two that SDES
# peers implement first (the reference client answers AES_CM_128_HMAC_SHA1_80), as tags 1 and 2. pjmedia takes an
# answer's tag only up to the number of suites (sipcli.sdes.offer_key_under_tags says why that matters), and its
# AES-256 keys make re-offers larger. A session with a chat line offers only those two (call_srtp_suites): two
# audio lines with four crypto lines each leave no room for codecs in pjsua2's SDP buffer.
CHAT_SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

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


def srtp_suites() -> list[str]:
    """pjsua thread: the suites an account offers, in order (see CHAT_SRTP_SUITES)."""
    available = [str(name) for name in Engine().endpoint.srtpCryptoEnum()]
    return [*(name for name in CHAT_SRTP_SUITES if name in available),
            *(name for name in available if name not in CHAT_SRTP_SUITES)]


def srtp_crypto_vector(names: Sequence[str]) -> Any:
    import pjsua2 as pj

    suites = pj.SrtpCryptoVector()
    for name in names:
        suite = pj.SrtpCrypto()
        suite.name = name
        suites.append(suite)
    return suites


@contextlib.contextmanager
def call_srtp_suites(pj_account: Any, suites: Sequence[str] | None) -> Iterator[None]:
    """pjsua thread: the SRTP transports pjsua creates inside the block (a new call's lines, a line a re-offer adds)
    offer these suites instead of the account's (None: the account's). pjsua copies the account's suites into each
    transport it creates, and pjsua2 2.15.1 has no per-call setting (it never registers pjsua's
    on_create_media_transport_srtp), so the account is modified for the block and restored after it, without
    touching its registration. pj_account.config: the pj.AccountConfig it was created with."""
    config = getattr(pj_account, "config", None)
    if not suites or config is None or not config.mediaConfig.srtpUse:
        yield
        return
    default = config.mediaConfig.srtpOpt.cryptos
    config.regConfig.disableRegOnModify = True
    try:
        config.mediaConfig.srtpOpt.cryptos = srtp_crypto_vector(suites)
        pj_account.modify(config)
        try:
            yield
        finally:
            config.mediaConfig.srtpOpt.cryptos = default
            pj_account.modify(config)
    finally:
        config.regConfig.disableRegOnModify = False


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
