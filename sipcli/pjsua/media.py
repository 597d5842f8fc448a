"""Media setup of the engine: codec priorities and the RTP settings of every pj.Account (pjsua thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sipcli.pjsua.engine import Engine, EngineError

__all__ = ["CodecError", "MediaSettings", "apply_media_settings", "codec_names", "set_codecs"]


class CodecError(EngineError):
    """None of the wanted codecs is available in this engine."""


@dataclass(frozen=True)
class MediaSettings:
    """What a process that carries calls sets on each account's media: the RTP port range (None: any port)."""

    rtp_port_range: tuple[int, int] | None = None


def apply_media_settings(config: Any, settings: MediaSettings, local_ip: str | None) -> None:
    """RTP on the engine's address, in the port range; no re-INVITE to lock a codec when the answer lists several
    (peers such as SIPp do not expect one). config: a pj.AccountConfig."""
    media = config.mediaConfig
    media.lockCodecEnabled = False
    if local_ip:
        media.transportConfig.boundAddress = local_ip
        media.transportConfig.publicAddress = local_ip
    if settings.rtp_port_range is not None:
        start, end = settings.rtp_port_range
        media.transportConfig.port = start
        media.transportConfig.portRange = end - start
        media.transportConfig.randomizePort = True


def codec_names() -> list[str]:
    """pjsua thread: the engine's audio codec names, each once, in the engine's order."""
    names = [info.codecId.split("/", 1)[0] for info in Engine().endpoint.codecEnum2()]
    return list(dict.fromkeys(names))


def set_codecs(names: list[str]) -> list[str]:
    """pjsua thread: codecs in names get descending priorities, every other codec is disabled."""
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
