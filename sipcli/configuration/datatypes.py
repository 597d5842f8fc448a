"""Typed setting values. Each type validates in its constructor and raises ValueError with a readable reason.

Every type accepts its own stored JSON form (what ``to_json`` in ``sipcli.configuration`` produces) and, through
``from_text``, the text a user types on the command line.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable

__all__ = [
    "AudioCodec", "AudioCodecList", "Hostname", "IPAddress", "MSRPTransport", "NonNegativeInteger", "Password",
    "Path", "Port", "PortRange", "PositiveInteger", "SIPAddress", "SIPProxyAddress", "SIPTransport",
    "SIPTransportList", "SRTPEncryption", "SampleRate", "StrEnumeration", "TypedList", "from_text",
]

# RFC 3261 user part: unreserved, escaped and user-unreserved characters.
_USER_RE = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$")
_HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?$")


class Hostname(str):
    """A DNS name or an IPv4/IPv6 address (IPv6 without brackets)."""

    def __new__(cls, value: str) -> Hostname:
        if not isinstance(value, str):
            raise ValueError(f"expected a host name, got {value!r}")
        text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        if ":" in text or text.replace(".", "").isdigit():  # only these can be addresses (a failed parse is slow)
            try:
                return super().__new__(cls, str(ipaddress.ip_address(text)))
            except ValueError:
                pass
        labels = text.rstrip(".").split(".")
        if not text or len(text) > 253 or not all(_HOST_LABEL_RE.match(label) for label in labels):
            raise ValueError(f"invalid host name {value!r}")
        return super().__new__(cls, text.lower())

    @property
    def is_ipv6(self) -> bool:
        return ":" in self

    @property
    def uri_form(self) -> str:
        """The host as written in a URI (IPv6 in brackets)."""
        return f"[{self}]" if self.is_ipv6 else str(self)


class IPAddress(str):
    """An IPv4 or IPv6 address."""

    def __new__(cls, value: str) -> IPAddress:
        try:
            return super().__new__(cls, str(ipaddress.ip_address(value)))
        except (ValueError, TypeError):
            raise ValueError(f"invalid IP address {value!r}") from None


class SIPAddress(str):
    """A SIP address of record ``user@domain`` (a leading ``sip:`` is accepted and dropped)."""

    def __new__(cls, value: str) -> SIPAddress:
        if not isinstance(value, str):
            raise ValueError(f"expected a SIP address user@domain, got {value!r}")
        text = value[4:] if value.lower().startswith("sip:") else value
        username, sep, domain = text.rpartition("@")
        if not sep or not username or not domain:
            raise ValueError(f"invalid SIP address {value!r}: expected user@domain")
        if not _USER_RE.match(username):
            raise ValueError(f"invalid SIP address {value!r}: bad user part {username!r}")
        try:
            host = Hostname(domain)
        except ValueError:
            raise ValueError(f"invalid SIP address {value!r}: bad domain {domain!r}") from None
        instance = super().__new__(cls, f"{username}@{host.uri_form}")
        instance._username = username
        instance._domain = str(host)
        return instance

    @property
    def username(self) -> str:
        return self._username

    @property
    def domain(self) -> str:
        return self._domain


class StrEnumeration(str):
    """A string restricted to the class attribute ``values`` (matched case-insensitively)."""

    values: tuple[str, ...] = ()

    def __new__(cls, value: str) -> StrEnumeration:
        if isinstance(value, str):
            for allowed in cls.values:
                if value.lower() == allowed.lower():
                    return super().__new__(cls, allowed)
        raise ValueError(f"invalid value {value!r}: expected one of {', '.join(cls.values)}")


class SIPTransport(StrEnumeration):
    values = ("udp", "tcp", "tls")


class MSRPTransport(StrEnumeration):
    values = ("tcp", "tls")


class SRTPEncryption(StrEnumeration):
    values = ("disabled", "optional", "mandatory")


class AudioCodec(StrEnumeration):
    """A codec name as pjsip knows it (the pjsua2 wheel has no Opus; it is accepted for other engines)."""

    values = ("opus", "G722", "PCMU", "PCMA", "speex", "GSM", "iLBC", "L16")


class SIPProxyAddress(str):
    """A proxy or route address: ``[sip:]host[:port][;transport=udp|tcp|tls]``, rendered canonically as a URI."""

    def __new__(cls, value: str) -> SIPProxyAddress:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"invalid SIP proxy address {value!r}")
        text = value.strip()
        scheme = "sip"
        if text.lower().startswith(("sip:", "sips:")):
            scheme, _, text = text.partition(":")
            scheme = scheme.lower()
        hostport, *params = text.split(";")
        transport = None
        for param in params:
            pname, _, pvalue = param.partition("=")
            if pname.strip().lower() == "transport":
                try:
                    transport = SIPTransport(pvalue.strip())
                except ValueError:
                    raise ValueError(f"invalid SIP proxy address {value!r}: unknown transport {pvalue!r}") from None
            elif pname.strip().lower() != "lr":
                raise ValueError(f"invalid SIP proxy address {value!r}: unsupported parameter {param!r}")
        if "@" in hostport:
            raise ValueError(f"invalid SIP proxy address {value!r}: a proxy has no user part")
        host_text, port = cls._split_hostport(hostport, value)
        try:
            host = Hostname(host_text)
        except ValueError:
            raise ValueError(f"invalid SIP proxy address {value!r}: bad host {host_text!r}") from None
        if scheme == "sips":
            if transport not in (None, "tls"):
                raise ValueError(f"invalid SIP proxy address {value!r}: sips: needs transport tls")
            transport = SIPTransport("tls")
        uri = f"sip:{host.uri_form}" + (f":{port}" if port is not None else "")
        uri += f";transport={transport}" if transport is not None else ""
        instance = super().__new__(cls, uri)
        instance._host, instance._port, instance._transport = host, port, transport
        return instance

    @staticmethod
    def _split_hostport(hostport: str, original: str) -> tuple[str, int | None]:
        if hostport.startswith("["):
            host, sep, rest = hostport[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"invalid SIP proxy address {original!r}")
            port_text = rest[1:] if rest else None
        elif hostport.count(":") == 1:
            host, port_text = hostport.split(":")
        else:
            host, port_text = hostport, None
        if port_text is None:
            return host, None
        try:
            return host, int(Port(port_text))
        except ValueError:
            raise ValueError(f"invalid SIP proxy address {original!r}: bad port {port_text!r}") from None

    @property
    def host(self) -> str:
        return str(self._host)

    @property
    def port(self) -> int | None:
        """The explicit port, or None (let RFC 3263 or the transport default decide)."""
        return self._port

    @property
    def transport(self) -> str | None:
        """The explicit transport, or None."""
        return None if self._transport is None else str(self._transport)


class _BoundedInteger(int):
    minimum: int | None = None
    maximum: int | None = None
    description = "an integer"

    def __new__(cls, value: int | str) -> _BoundedInteger:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected {cls.description}, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected {cls.description}, got {value!r}") from None
        if (cls.minimum is not None and number < cls.minimum) or (cls.maximum is not None and number > cls.maximum):
            raise ValueError(f"expected {cls.description}, got {value!r}")
        return super().__new__(cls, number)


class NonNegativeInteger(_BoundedInteger):
    minimum = 0
    description = "a non-negative integer"


class PositiveInteger(_BoundedInteger):
    minimum = 1
    description = "a positive integer"


class Port(_BoundedInteger):
    """A UDP/TCP port; 0 means any free port."""

    minimum, maximum = 0, 65535
    description = "a port number 0-65535"


class SampleRate(_BoundedInteger):
    """An audio sample rate in Hz."""

    values = (8000, 16000, 32000, 44100, 48000)
    description = "a sample rate (8000, 16000, 32000, 44100 or 48000)"

    def __new__(cls, value: int | str) -> SampleRate:
        instance = super().__new__(cls, value)
        if instance not in cls.values:
            raise ValueError(f"expected {cls.description}, got {value!r}")
        return instance


class PortRange(str):
    """An inclusive port range ``start:end`` (1-65535, start <= end), for RTP."""

    def __new__(cls, value: str | Iterable[int]) -> PortRange:
        parts = value.replace("-", ":").split(":") if isinstance(value, str) else list(value)
        try:
            if len(parts) != 2:
                raise ValueError
            start, end = (int(Port(part)) for part in parts)
        except (ValueError, TypeError):
            raise ValueError(f"invalid port range {value!r}: expected start:end") from None
        if not 0 < start <= end:
            raise ValueError(f"invalid port range {value!r}: expected 1 <= start <= end <= 65535")
        instance = super().__new__(cls, f"{start}:{end}")
        instance._start, instance._end = start, end
        return instance

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end


class Path(str):
    """A filesystem path as the user wrote it; ``normalized`` expands ``~`` and makes it absolute."""

    def __new__(cls, value: str) -> Path:
        if not isinstance(value, str | os.PathLike) or not str(value):
            raise ValueError(f"invalid path {value!r}")
        text = os.fspath(value)
        if "\0" in text:
            raise ValueError("invalid path: contains a NUL byte")
        return super().__new__(cls, text)

    @property
    def normalized(self) -> str:
        return os.path.abspath(os.path.expanduser(self))


class Password(str):
    """A secret; settings of this type are masked wherever settings are shown or reported."""

    def __new__(cls, value: str) -> Password:
        if not isinstance(value, str):
            raise ValueError("a password must be a string")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return "Password('***')"

    def __json__(self) -> str:
        return "***"


class TypedList(tuple):
    """An immutable list whose items are coerced to ``item_type``; subclasses set it (and ``unique``)."""

    item_type: type = str
    unique = True
    allow_empty = True

    def __new__(cls, value: Iterable = ()) -> TypedList:
        if isinstance(value, str):
            raise ValueError(f"expected a list, got the string {value!r}")
        try:
            items = [cls.item_type(item) for item in value]
        except TypeError:
            raise ValueError(f"expected a list, got {value!r}") from None
        if cls.unique and len(set(items)) != len(items):
            raise ValueError(f"duplicate items in {', '.join(map(str, items))}")
        if not cls.allow_empty and not items:
            raise ValueError("the list must not be empty")
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class SIPTransportList(TypedList):
    item_type = SIPTransport
    allow_empty = False


class AudioCodecList(TypedList):
    item_type = AudioCodec
    allow_empty = False


def from_text(value_type: type, text: str) -> object:
    """Parse what a user typed into value_type (booleans: true/false/yes/no/on/off/1/0; lists: comma-separated)."""
    if value_type is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if isinstance(value_type, type) and issubclass(value_type, TypedList):
        return value_type([item.strip() for item in text.split(",") if item.strip()])
    if value_type is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    return value_type(text)
