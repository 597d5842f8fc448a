"""Sans-IO SDP splicing: carry an MSRP chat line (``m=message``) through the SDP that pjsua writes.

pjsua only knows audio. A session with chat is made with two audio slots; every SDP pjsua produces passes
through here, where the second audio section becomes the chat section (or a disabled ``m=message 0`` line
that keeps the m-line positions stable, since m-lines are never deleted, RFC 3264 section 8.2). It also tells
whether an SDP offers chat or active audio (cheap: the session layer asks this on every call, with or without chat).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipcli.msrp.sdp import MessageMedia, SDPError, find_message_media

__all__ = ["CHAT_SLOT", "DISABLED_CHAT", "MediaSection", "SessionDescription", "audio_active", "offered_chat",
           "splice_chat"]

CHAT_SLOT = 1  # media position of a session's chat line (after the audio line)
DISABLED_CHAT = "m=message 0 TCP/MSRP *"
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass
class MediaSection:
    """One m= line and the lines that follow it up to the next m= line."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, m_line: str, lines: list[str] | None = None) -> MediaSection:
        try:
            kind, port, proto, *formats = m_line[2:].split()
            port_number = int(port.split("/", 1)[0])
        except ValueError:
            raise ValueError(f"malformed SDP media line: {m_line!r}") from None
        return cls(kind, port_number, proto, formats, list(lines or []))

    @property
    def m_line(self) -> str:
        return f"m={self.kind} {self.port} {self.proto} {' '.join(self.formats)}"

    @property
    def active(self) -> bool:
        return self.port != 0

    def attributes(self, name: str) -> list[str]:
        """Values of every ``a=name:value`` (or ``a=name``, giving '') line."""
        values = []
        for line in self.lines:
            if line.startswith("a="):
                key, _, value = line[2:].partition(":")
                if key == name:
                    values.append(value)
        return values

    @property
    def direction(self) -> str:
        for line in self.lines:
            if line[2:] in _DIRECTIONS:
                return line[2:]
        return "sendrecv"

    def with_direction(self, direction: str) -> MediaSection:
        """A copy whose direction attribute is direction."""
        if direction not in _DIRECTIONS:
            raise ValueError(f"unknown SDP direction {direction!r}")
        lines = [line for line in self.lines if line[2:] not in _DIRECTIONS]
        return MediaSection(self.kind, self.port, self.proto, list(self.formats), [*lines, f"a={direction}"])

    def __str__(self) -> str:
        return "\r\n".join([self.m_line, *self.lines])


@dataclass
class SessionDescription:
    """An SDP body split into its session-level lines and media sections."""

    session_lines: list[str]
    media: list[MediaSection]

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        session_lines: list[str] = []
        media: list[MediaSection] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line:
                continue
            if line.startswith("m="):
                media.append(MediaSection.parse(line))
            elif media:
                media[-1].lines.append(line)
            else:
                session_lines.append(line)
        if not session_lines or not session_lines[0].startswith("v="):
            raise ValueError("SDP does not start with a v= line")
        return cls(session_lines, media)

    def __str__(self) -> str:
        return "\r\n".join([*self.session_lines, *(str(m) for m in self.media)]) + "\r\n"

    def streams(self) -> list[str]:
        """The active streams described, in the reference's names: 'audio' and 'chat'."""
        names = {"audio": "audio", "message": "chat"}
        found: list[str] = []
        for section in self.media:
            name = names.get(section.kind)
            if name and section.active and name not in found:
                found.append(name)
        return found


def splice_chat(sdp: str, chat: str | None, slot: int = CHAT_SLOT) -> str:
    """Put chat (an ``m=message`` section as text, or None to disable chat) at media position slot.

    Used on every SDP pjsua creates for a session that has, or had, a chat line: an offer made with two audio
    slots gets its second audio section replaced; an answer gets pjsua's placeholder ``m=message`` replaced.
    """
    description = SessionDescription.parse(sdp)
    if slot >= len(description.media):
        raise ValueError(f"SDP has no media section at position {slot}")
    # pjsua refuses a media section without a connection line, a disabled one included
    text = chat if chat is not None else f"{DISABLED_CHAT}\r\nc=IN IP4 0.0.0.0"
    first, *rest = text.replace("\r\n", "\n").strip("\n").split("\n")
    section = MediaSection.parse(first, rest)
    if section.kind != "message":
        raise ValueError("the chat section must be an m=message line")
    description.media[slot] = section
    return str(description)


def offered_chat(sdp: str) -> MessageMedia | None:
    """The active m=message section at the chat slot of an SDP body, or None."""
    try:
        for index, media in find_message_media(sdp):
            if index == CHAT_SLOT and media.port:
                return media
    except (SDPError, ValueError):
        return None
    return None


def audio_active(sdp: str) -> bool:
    """Whether an SDP body has an audio line that is not disabled or inactive."""
    try:
        description = SessionDescription.parse(sdp)
    except ValueError:
        return False
    return any(m.kind == "audio" and m.active and m.direction != "inactive" for m in description.media)
