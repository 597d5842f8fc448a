"""MSRP URIs (RFC 4975 section 6): ``msrp://host:port/session-id;tcp`` and ``msrps://`` for TLS.

Relay URIs (RFC 4976) may omit the session id and the port (default 2855). Comparison follows RFC 4975
section 6.1: scheme, host (case-insensitive), port, session id (case-sensitive) and transport.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

DEFAULT_PORT = 2855


class URIError(ValueError):
    """A string that is not an MSRP URI."""


@dataclass(frozen=True, slots=True)
class MSRPURI:
    """One MSRP URI; `str()` gives its canonical text."""

    host: str
    port: int = DEFAULT_PORT
    session_id: str | None = None
    transport: str = "tcp"
    use_tls: bool = False
    user: str | None = field(default=None, compare=False)  # RFC 4975 6.1: userinfo is not compared

    @classmethod
    def parse(cls, text: str) -> MSRPURI:
        """Parse `msrp[s]://[user@]host[:port][/session-id];transport`."""
        scheme, sep, rest = text.strip().partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ("msrp", "msrps"):
            raise URIError(f"not an msrp URI: {text!r}")
        rest, sep, transport = rest.partition(";")
        if not sep or not transport:
            raise URIError(f"msrp URI without transport: {text!r}")
        authority, _, session_id = rest.partition("/")
        user, sep, hostport = authority.rpartition("@")
        if hostport.startswith("["):
            host, _, port_text = hostport[1:].partition("]")
            port_text = port_text[1:]
        else:
            host, _, port_text = hostport.partition(":")
        if not host:
            raise URIError(f"msrp URI without host: {text!r}")
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            raise URIError(f"bad port in msrp URI: {text!r}") from None
        if not 0 < port < 65536:
            raise URIError(f"bad port in msrp URI: {text!r}")
        return cls(host.lower(), port, session_id or None, transport.partition(";")[0].lower(),
                   scheme == "msrps", user if sep else None)

    @classmethod
    def new(cls, host: str, port: int, use_tls: bool = False) -> MSRPURI:
        """A URI for a new local session endpoint, with a random session id."""
        return cls(host, port, secrets.token_urlsafe(12), "tcp", use_tls)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        path = f"/{self.session_id}" if self.session_id else ""
        return f"{'msrps' if self.use_tls else 'msrp'}://{user}{host}:{self.port}{path};{self.transport}"


def parse_path(text: str) -> list[MSRPURI]:
    """A space-separated list of URIs (To-Path, From-Path, Use-Path, a=path)."""
    uris = [MSRPURI.parse(part) for part in text.split()]
    if not uris:
        raise URIError("empty MSRP path")
    return uris


def format_path(path: list[MSRPURI]) -> str:
    return " ".join(str(uri) for uri in path)
