"""SIP URIs and routes: the small subset of RFC 3261 URI syntax sipcli needs (sip:/sips:, user, host, port, params)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

__all__ = ["SIPURI", "TRANSPORTS", "Route"]

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}

# scheme:[user[:password]@]host[:port][;params][?headers]; host is a name, IPv4 or [IPv6]
_URI = re.compile(
    r"^(?P<scheme>sips?):"
    r"(?:(?P<user>[^@:;?]+)(?::(?P<password>[^@;?]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>\d{1,5}))?"
    r"(?P<params>(?:;[^;?]*)*)"
    r"(?:\?(?P<headers>.*))?$",
    re.IGNORECASE)


def is_ip_address(host: str) -> bool:
    """Whether host is an IPv4 literal or a bracketed/bare IPv6 literal."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass
class SIPURI:
    """A parsed SIP URI; str() gives it back in canonical form (the password is never rendered)."""

    host: str
    user: str | None = None
    port: int | None = None
    parameters: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    secure: bool = False

    @classmethod
    def parse(cls, text: str) -> SIPURI:
        """Parse 'sip:user@host:port;params', also inside <...>; ValueError says what is wrong."""
        value = text.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1].strip()
        if not value.lower().startswith(("sip:", "sips:")):
            raise ValueError(f"not a SIP URI (expected sip: or sips:): {text!r}")
        match = _URI.match(value)
        if match is None:
            raise ValueError(f"malformed SIP URI: {text!r}")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port out of range in SIP URI: {text!r}")
        parameters: dict[str, str | None] = {}
        for item in (match["params"] or "").split(";")[1:]:
            if not item:
                continue
            name, sep, val = item.partition("=")
            parameters[name.lower()] = val if sep else None
        transport = parameters.get("transport")
        if transport is not None and transport.lower() not in TRANSPORTS:
            raise ValueError(f"unsupported transport {transport!r} in SIP URI {text!r} (udp, tcp or tls)")
        if transport is not None:
            parameters["transport"] = transport.lower()
        return cls(host=match["host"], user=match["user"], port=port, parameters=parameters,
                   headers=match["headers"], secure=match["scheme"].lower() == "sips")

    @property
    def transport(self) -> str:
        """The transport this URI asks for: its transport parameter, tls for sips:, else udp."""
        return self.parameters.get("transport") or ("tls" if self.secure else "udp")

    @property
    def address(self) -> str:
        """user@host (or host), as used for account ids."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        text = ("sips:" if self.secure else "sip:") + (f"{self.user}@" if self.user else "") + self.host
        if self.port is not None:
            text += f":{self.port}"
        for name, value in self.parameters.items():
            text += f";{name}" if value is None else f";{name}={value}"
        if self.headers:
            text += f"?{self.headers}"
        return text

    def __json__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Route:
    """Where to send a request: an IP address, port and transport (one RFC 3263 result). ``Route("1.2.3.4")`` is
    port 5060 over UDP, as in the reference (the port defaults to the transport's: 5061 for TLS)."""

    address: str
    port: int = None  # type: ignore[assignment]  # None: the transport's default port (set in __post_init__)
    transport: str = "udp"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unsupported transport {self.transport!r} (udp, tcp or tls)")
        if self.port is None:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.transport])

    @property
    def uri(self) -> SIPURI:
        """The route as a loose-routing SIP URI (what pjsip takes as a proxy)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return SIPURI(host=host, port=self.port, parameters={"transport": self.transport, "lr": None})

    def __str__(self) -> str:
        return f"{self.address}:{self.port};transport={self.transport}"

    def __json__(self) -> str:
        return str(self)
