"""pjsip's TLS protocol bits (pj_ssl_sock_proto) and what a negotiated cipher suite says about the version."""

from __future__ import annotations

__all__ = ["PROTOCOLS", "negotiated_version", "protocol_names"]

# pj_ssl_sock_proto bits, by name (TlsConfig.proto, TlsInfo.protocol)
PROTOCOLS = {"TLSv1": 1 << 2, "TLSv1.1": 1 << 3, "TLSv1.2": 1 << 4, "TLSv1.3": 1 << 5}


def protocol_names(mask: int) -> list[str]:
    """The protocol names a pj_ssl_sock_proto mask enables."""
    return [name for name, bit in PROTOCOLS.items() if mask & bit]


def negotiated_version(cipher: str) -> str | None:
    """The TLS version a cipher suite (OpenSSL's name) implies: TLS 1.3 suites exist only in 1.3, AEAD and SHA-2
    suites only from 1.2; None for older suites, which 1.0 to 1.2 share (pjsip does not expose the version)."""
    if cipher.startswith("TLS_"):
        return "TLSv1.3"
    if any(tag in cipher for tag in ("GCM", "CHACHA20", "CCM", "SHA256", "SHA384")):
        return "TLSv1.2"
    return None
