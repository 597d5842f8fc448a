"""What the loaded pjsua2 can do, read from the library itself at run time.

Nothing is inferred from a version number: the PyPI wheel and sipcli's own build (engine/build.py) are the same
pjproject release with different compile-time settings. Each value comes from the library:

- max calls, conference ports, default TLS protocols: pjsua2's config defaults (UaConfig, MediaConfig,
  TlsConfig), which pjsua fills from PJSUA_MAX_CALLS, PJSUA_MAX_CONF_PORTS and PJSIP_SSL_DEFAULT_PROTO;
- IPv6, largest SIP message, ioqueue: pjlib's and pjsip's own configuration dumps (pj_dump_config,
  pjsip_dump_config), captured from pj_log;
- SDP buffer: pjsua2's SdpSession::fromPj on SDPs of growing size (it prints into PJSUA2_MAX_SDP_BUF_LEN bytes
  and gives an empty text when the SDP does not fit);
- OpenSSL: the OpenSSL that pjsua2's module links (its version call, looked up through the module);
- codecs: the endpoint's codec list; SRTP keying: pjmedia_srtp_enum_keying.

Only sipcli's source changes to pjproject (accepting an offer without audio, answering an oversized message)
have no run-time handle short of a call: engine/build.py lists its patches in ``sipcli_build.json`` next to the
module, and that is what is read.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sipcli.pjsua.tls import protocol_names

__all__ = ["ENGINE_HINT", "Capabilities", "MissingCapabilityError", "probe"]

log = logging.getLogger(__name__)

ENGINE_HINT = "install sipcli's engine build (README: 'Engine build')"
MARKER = "sipcli_build.json"
CHAT_ONLY_PATCHES = ("0001-chat-only-offers.patch", "0002-pjsua2-answer-without-sdp-pool.patch")
OVERSIZED_PATCH = "0003-refuse-oversized-messages.patch"
# First OpenSSL release with each protocol (TLS 1.3: 1.1.1).
_TLS_OPENSSL = {"TLSv1": 0, "TLSv1.1": 0x10001000, "TLSv1.2": 0x10001000, "TLSv1.3": 0x10101000}
_SDP_PROBE_LIMIT = 256 * 1024
_FROM_PJ = "_ZN2pj10SdpSession6fromPjERK19pjmedia_sdp_session"
_DUMP_LINE = re.compile(r"\s(PJ\w+|ioqueue type)\s*:+\s*(\S.*?)\s*$")
_LOG_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)


class MissingCapabilityError(Exception):
    """A feature needs something the loaded engine lacks; the message is one line naming it and the remedy."""

    def __init__(self, feature: str, capability: str, have: Any = None) -> None:
        have_text = "" if have is None else f" (this engine: {have})"
        super().__init__(f"{feature} needs {capability}{have_text}: {ENGINE_HINT}")
        self.feature = feature
        self.capability = capability


@dataclass(frozen=True)
class Capabilities:
    """The loaded engine's abilities (see the module docstring for where each comes from)."""

    pjsua2: str = "unknown"  # the loaded pjsua2 package's version (pjsua2-python's)
    pjproject: str = "unknown"
    build: str = "unknown"  # "sipcli" for engine/build.py's wheel, else "other"
    max_calls: int = 0
    conference_ports: int = 0
    ipv6: bool = False
    tls_versions: tuple[str, ...] = ()  # protocols the TLS transport offers by default
    openssl: str | None = None
    codecs: tuple[str, ...] = ()
    srtp: tuple[str, ...] = ()  # keying methods: "sdes", "dtls"
    chat_only_offers: bool = False
    sdp_buffer: int = 0  # the largest SDP (bytes) that reaches Python whole
    max_packet: int = 0  # the largest SIP message pjsip sends or receives
    # A larger request over TCP/TLS is answered 413/513 (else dropped unanswered, its rest read as new messages).
    oversized_answers: bool = False
    ioqueue: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data

    def ioqueue_handles(self) -> int:
        """How many sockets pjsip's ioqueue takes (PJ_IOQUEUE_MAX_HANDLES; 64 when the dump did not say)."""
        return _int(self.extra.get("PJ_IOQUEUE_MAX_HANDLES")) or 64

    def has_codec(self, name: str) -> bool:
        """Whether a codec named like 'opus' or 'PCMU/8000' is in the engine (case-insensitive prefix)."""
        wanted = name.lower()
        return any(codec.lower() == wanted or codec.lower().startswith(wanted + "/") for codec in self.codecs)

    def require_ipv6(self, feature: str) -> None:
        if not self.ipv6:
            raise MissingCapabilityError(feature, "IPv6 (PJ_HAS_IPV6)", "IPv4 only")

    def require_codecs(self, names: tuple[str, ...] | list[str], feature: str = "--codec") -> None:
        missing = [name for name in names if not self.has_codec(name)]
        if missing:
            available = sorted({codec.split("/")[0] for codec in self.codecs})
            raise MissingCapabilityError(f"{feature} {','.join(missing)}", f"codec {','.join(missing)}",
                                         f"{', '.join(available)}")

    def require_calls(self, count: int, feature: str) -> None:
        if count > self.max_calls:
            raise MissingCapabilityError(feature, f"{count} concurrent calls", f"at most {self.max_calls}")

    def require_tls(self, version: str, feature: str) -> None:
        if version not in self.tls_versions:
            raise MissingCapabilityError(feature, version, ", ".join(self.tls_versions) or "no TLS")


def probe(endpoint: Any) -> Capabilities:
    """On the pjsua thread, after libInit: what the loaded pjsua2 can do. Never raises for a missing detail."""
    import pjsua2 as pj

    marker = _marker()
    library = _library()
    dump = _config_dump(library) if library is not None else {}
    openssl, openssl_number = _openssl(library)
    default_proto = int(pj.TlsConfig().proto)
    tls = tuple(name for name in protocol_names(default_proto)
                if openssl_number is not None and openssl_number >= _TLS_OPENSSL[name])
    patches = set(marker.get("patches", ()))
    try:
        codecs = tuple(str(info.codecId) for info in endpoint.codecEnum2())
    except Exception as error:
        log.debug("codec list unavailable: %r", error)
        codecs = ()
    return Capabilities(
        pjsua2=_distribution_version(),
        pjproject=_pj_version(library),
        build="sipcli" if marker.get("builder", "").startswith("sipcli") else "other",
        max_calls=int(pj.UaConfig().maxCalls),
        conference_ports=int(pj.MediaConfig().maxMediaPorts),
        ipv6=dump.get("PJ_HAS_IPV6") == "1",
        tls_versions=tls,
        openssl=openssl,
        codecs=codecs,
        srtp=_srtp_keying(library),
        chat_only_offers=all(name in patches for name in CHAT_ONLY_PATCHES),
        sdp_buffer=_sdp_buffer(library, pj) or _int(marker.get("config_site", {}).get("PJSUA2_MAX_SDP_BUF_LEN")),
        max_packet=_int(dump.get("PJSIP_MAX_PKT_LEN")),
        oversized_answers=OVERSIZED_PATCH in patches,
        ioqueue=dump.get("ioqueue type", "unknown").split("[")[0],
        extra={key: value for key, value in dump.items()
               if key in ("PJ_IOQUEUE_MAX_HANDLES", "PJSIP_MAX_TSX_COUNT", "PJSIP_MAX_DIALOG_COUNT")},
    )


def _int(value: Any) -> int:
    try:
        return int(str(value).strip("() "))
    except (TypeError, ValueError):
        return 0


def _library() -> ctypes.CDLL | None:
    """The already loaded _pjsua2 extension, as a C library (its symbols are exported)."""
    try:
        return ctypes.CDLL(importlib.import_module("pjsua2._pjsua2").__file__)
    except (ImportError, OSError, TypeError) as error:
        log.debug("pjsua2's C library is not reachable: %r", error)
        return None


def _marker() -> dict[str, Any]:
    try:
        package = Path(str(importlib.import_module("pjsua2").__file__)).parent
        return json.loads((package / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return {}


def _distribution_version() -> str:
    """The pjsua2 package's own version (both wheels carry one; importlib.metadata takes milliseconds)."""
    return str(getattr(importlib.import_module("pjsua2"), "__version__", "unknown"))


def _pj_version(library: ctypes.CDLL | None) -> str:
    if library is None:
        return "unknown"
    function = library.pj_get_version
    function.restype = ctypes.c_char_p
    return function().decode("ascii", "replace")


def _config_dump(library: ctypes.CDLL) -> dict[str, str]:
    """pj_dump_config() and pjsip_dump_config() lines (name -> value), caught from pj_log for the moment."""
    lines: list[str] = []

    def collect(level: int, data: bytes, length: int) -> None:
        lines.append(data[:length].decode("utf-8", "replace"))

    callback = _LOG_FUNC(collect)
    library.pj_log_get_log_func.restype = ctypes.c_void_p
    saved_func = library.pj_log_get_log_func()
    saved_level = library.pj_log_get_level()
    library.pj_log_set_log_func.argtypes = [ctypes.c_void_p]
    try:
        library.pj_log_set_log_func(ctypes.cast(callback, ctypes.c_void_p))
        library.pj_log_set_level(3)
        library.pj_dump_config()
        library.pjsip_dump_config()
    finally:
        library.pj_log_set_level(saved_level)
        library.pj_log_set_log_func(saved_func)
    values: dict[str, str] = {}
    for text in "\n".join(lines).splitlines():
        match = _DUMP_LINE.search(text)
        if match:
            values.setdefault(match.group(1), match.group(2))
    return values


def _openssl(library: ctypes.CDLL | None) -> tuple[str | None, int | None]:
    """The version text and number of the OpenSSL that pjsua2 links (looked up through its own dependencies)."""
    if library is None:
        return None, None
    for text_name, number_name in (("OpenSSL_version", "OpenSSL_version_num"), ("SSLeay_version", "SSLeay")):
        try:
            text_function = getattr(library, text_name)
            number_function = getattr(library, number_name)
        except AttributeError:
            continue
        text_function.restype = ctypes.c_char_p
        text_function.argtypes = [ctypes.c_int]
        number_function.restype = ctypes.c_ulong
        return text_function(0).decode("ascii", "replace"), int(number_function())
    return None, None


def _srtp_keying(library: ctypes.CDLL | None) -> tuple[str, ...]:
    if library is None or not hasattr(library, "pjmedia_srtp_enum_keying"):
        return ()
    count = ctypes.c_uint(4)
    keying = (ctypes.c_int * 4)()
    if library.pjmedia_srtp_enum_keying(ctypes.byref(count), keying) != 0:
        return ()
    names = {0: "sdes", 1: "dtls"}
    return tuple(names.get(keying[i], str(keying[i])) for i in range(count.value))


def _sdp_buffer(library: ctypes.CDLL | None, pj: Any) -> int:
    """The largest SDP that pjsua2 hands to Python whole (0 when it cannot be measured)."""
    if library is None or not hasattr(library, _FROM_PJ):
        return 0
    library.pjsua_pool_create.restype = ctypes.c_void_p
    library.pjsua_pool_create.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
    library.pjmedia_sdp_parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                          ctypes.POINTER(ctypes.c_void_p)]
    library.pj_pool_release.argtypes = [ctypes.c_void_p]
    from_pj = getattr(library, _FROM_PJ)
    from_pj.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    head = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

    def printed(size: int) -> int:
        """The length of the SDP text pjsua2 hands over for an SDP of about size bytes (0: none)."""
        text = head + b"a=x-probe:" + b"x" * max(0, size - len(head) - 12) + b"\r\n"
        pool = library.pjsua_pool_create(b"capprobe", len(text) + 4096, 4096)
        if not pool:
            return 0
        try:
            buffer = ctypes.create_string_buffer(text, len(text))
            session = ctypes.c_void_p()
            if library.pjmedia_sdp_parse(pool, buffer, len(text), ctypes.byref(session)) != 0:
                return 0
            sdp = pj.SdpSession()
            from_pj(int(sdp.this), session)
            length = len(sdp.wholeSdp)
            del sdp
            return length
        finally:
            library.pj_pool_release(pool)

    # Doubling, then halving: each step parses one SDP, and small ones first (the usual buffers are 1-16 KiB).
    best, low, high = 0, 0, 512
    while high <= _SDP_PROBE_LIMIT:
        length = printed(high)
        if not length:
            break
        best, low, high = length, high, high * 2
    else:
        return best
    while high - low > 1:
        middle = (low + high) // 2
        length = printed(middle)
        if length:
            best, low = length, middle
        else:
            high = middle
    return best
