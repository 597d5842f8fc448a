"""The SDP media description of an MSRP chat (RFC 4975 section 8, RFC 6135 connection direction).

``MessageMedia`` builds and parses the ``m=message`` section: port, ``a=path``, ``a=accept-types``,
``a=accept-wrapped-types``, ``a=setup`` and ``a=max-size``.

Connection direction: offer ``a=setup:actpass`` (``OFFER_SETUP``) and listen; answer with ``answer_setup()``,
which returns ``passive`` unless the offer said ``passive``. That default keeps RFC 4975's rule that the offerer
connects, so peers that ignore a=setup still work (the reference SIP SIMPLE client connects when it offered).
``connection_role()`` tells each side whether it connects (``active``) or waits (``passive``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipcli.msrp.uri import MSRPURI, format_path, parse_path

OFFER_SETUP = "actpass"
DEFAULT_ACCEPT_TYPES = ("message/cpim", "text/plain")
DEFAULT_WRAPPED_TYPES = ("text/plain",)


class SDPError(ValueError):
    """An m=message section we cannot use."""


@dataclass
class MessageMedia:
    """One m=message media description."""

    path: list[MSRPURI]
    accept_types: list[str] = field(default_factory=lambda: list(DEFAULT_ACCEPT_TYPES))
    accept_wrapped_types: list[str] = field(default_factory=lambda: list(DEFAULT_WRAPPED_TYPES))
    setup: str | None = OFFER_SETUP
    port: int | None = None  # defaults to the port of our own URI (the last in path); 0 removes the stream
    max_size: int | None = None
    direction: str | None = None  # sendrecv / sendonly / recvonly / inactive, when present

    @property
    def use_tls(self) -> bool:
        return self.path[-1].use_tls

    def to_sdp(self) -> str:
        """The m= line and its attributes, CRLF-terminated, ready to go after the session-level lines."""
        port = self.path[-1].port if self.port is None else self.port
        proto = "TCP/TLS/MSRP" if self.use_tls else "TCP/MSRP"
        lines = [f"m=message {port} {proto} *", f"a=path:{format_path(self.path)}"]
        if self.accept_types:
            lines.append("a=accept-types:" + " ".join(self.accept_types))
        if self.accept_wrapped_types:
            lines.append("a=accept-wrapped-types:" + " ".join(self.accept_wrapped_types))
        if self.max_size is not None:
            lines.append(f"a=max-size:{self.max_size}")
        if self.setup:
            lines.append(f"a=setup:{self.setup}")
        if self.direction:
            lines.append(f"a={self.direction}")
        return "".join(line + "\r\n" for line in lines)

    @classmethod
    def parse(cls, section: str) -> MessageMedia:
        """Parse one media section (its m= line and the a= lines that follow)."""
        lines = [line.strip() for line in section.replace("\r\n", "\n").split("\n") if line.strip()]
        if not lines or not lines[0].startswith("m=message "):
            raise SDPError("not an m=message section")
        fields = lines[0][2:].split()
        if len(fields) < 3 or not fields[1].isdigit():
            raise SDPError(f"bad m= line {lines[0]!r}")
        attributes: dict[str, str] = {}
        direction = None
        for line in lines[1:]:
            if line.startswith("a="):
                name, _, value = line[2:].partition(":")
                if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                    direction = name
                attributes.setdefault(name, value.strip())
        port = int(fields[1])
        if "path" not in attributes:
            if port == 0:
                return cls([], [], [], None, 0, None, direction)
            raise SDPError("m=message without a=path")
        max_size = attributes.get("max-size")
        return cls(parse_path(attributes["path"]), attributes.get("accept-types", "").split(),
                   attributes.get("accept-wrapped-types", "").split(), attributes.get("setup"), port,
                   int(max_size) if max_size and max_size.isdigit() else None, direction)


def find_message_media(sdp: str) -> list[tuple[int, MessageMedia]]:
    """(media index, description) of every m=message section of a whole SDP body."""
    sections = ("\n" + sdp.replace("\r\n", "\n")).split("\nm=")[1:]
    return [(index, MessageMedia.parse("m=" + section)) for index, section in enumerate(sections)
            if section.startswith("message ")]


def answer_setup(offer_setup: str | None) -> str:
    """Our a=setup when answering an offer (see the module docstring for the default)."""
    return "active" if offer_setup == "passive" else "passive"


def connection_role(we_offered: bool, answer_setup_value: str | None) -> str:
    """'active' (we connect) or 'passive' (we listen), from the answer's a=setup.

    Without a=setup in the answer RFC 4975 applies: the offerer connects.
    """
    answerer_active = answer_setup_value == "active"
    if we_offered:
        return "passive" if answerer_active else "active"
    return "active" if answerer_active else "passive"
