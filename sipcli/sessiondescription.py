"""Sans-IO SDP splicing: carry an MSRP chat line (``m=message``) through the SDP that pjsua writes.

pjsua only knows audio. A session with chat is made with two audio slots; every SDP pjsua produces passes
through here, where the second audio section becomes the chat section (or a disabled ``m=message 0`` line
that keeps the m-line positions stable, since m-lines are never deleted, RFC 3264 section 8.2). It also tells
whether an SDP offers chat or active audio (cheap: the session layer asks this on every call, with or without chat).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipcli.msrp.sdp import MessageMedia, SDPError, find_message_media

__all__ = ["CHAT_SLOT", "DISABLED_CHAT", "IPV6_MEDIA", "MediaSection", "SessionDescription",
           "audio_active", "chat_slot", "media_refusal", "offered_audio_codecs", "offered_chat", "refusal_reason",
           "splice_chat", "without_needless_lines"]

CHAT_SLOT = 1  # media position of a session's chat line (after the audio line)
DISABLED_CHAT = "m=message 0 TCP/MSRP *"
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
IPV6_MEDIA = "IPv6 media is not supported by this engine"
_STATIC_PAYLOADS = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "15": "G728", "18": "G729"}
_NOT_CODECS = {"telephone-event", "cn", "red"}
# Lines pjsua writes that no peer needs (bandwidth hints, a=ssrc)
_NEEDLESS = ("b=AS:", "b=TIAS:", "a=ssrc:")


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


def without_needless_lines(sdp: str) -> str:
    """Our SDP without what no peer needs, so that an INVITE stays under the 1,300 bytes past which pjsip sends it
    over TCP instead of UDP (RFC 3261 18.1.1): bandwidth hints, a=ssrc, and an RFC 3605 a=rtcp line that names
    the default (the RTP port + 1 on the line's address); pjmedia's session name becomes "-"."""
    kept = []
    port: int | None = None
    address = session_address = None
    for line in sdp.split("\r\n"):
        if line.startswith(_NEEDLESS):
            continue
        if line.startswith("m="):
            fields = line[2:].split()
            port = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
            address = session_address
        elif line.startswith("c="):
            address = line.split()[-1]
            if port is None:
                session_address = address
        elif line.startswith("a=rtcp:") and port is not None:
            value = line[7:].split()
            if value[:1] == [str(port + 1)] and (len(value) == 1 or (len(value) == 4 and value[3] == address)):
                continue
        elif line == "s=pjmedia":
            line = "s=-"
        kept.append(line)
    return "\r\n".join(kept)


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


def chat_slot(sdp: str) -> int:
    """Where the chat line of a session is: CHAT_SLOT, or 0 when the SDP starts with it (another client's chat-only
    offer, which sipcli's engine build accepts: Capabilities.chat_only_offers)."""
    try:
        media = SessionDescription.parse(sdp).media
    except (SDPError, ValueError):
        return CHAT_SLOT
    return 0 if media and media[0].kind == "message" else CHAT_SLOT


def offered_chat(sdp: str) -> MessageMedia | None:
    """The active m=message section at the chat slot of an SDP body, or None."""
    slot = chat_slot(sdp)
    try:
        for index, media in find_message_media(sdp):
            if index == slot and media.port:
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


def media_refusal(sdp: str, ipv6: bool = False) -> str | None:
    """Why this engine cannot take an offer it would otherwise try (pjsua answers 200 and then fails with 488
    "Unable to create media session"), or None. Today: an active audio line whose address is IPv6 on an engine
    without IPv6 (ipv6: Capabilities.ipv6; the PyPI wheel is built without it)."""
    if ipv6:
        return None
    try:
        description = SessionDescription.parse(sdp)
    except ValueError:
        return None
    session_address = _connection_family(description.session_lines)
    for section in description.media:
        if section.kind == "audio" and section.active and \
                (_connection_family(section.lines) or session_address) == "IP6":
            return IPV6_MEDIA
    return None


def _connection_family(lines: list[str]) -> str | None:
    """The address type (IP4, IP6) of the c= line among lines, or None."""
    for line in lines:
        if line.startswith("c="):
            fields = line[2:].split()
            return fields[1].upper() if len(fields) >= 2 else None
    return None


def offered_audio_codecs(sdp: str) -> list[str]:
    """The codec names of the active audio lines of an SDP (telephone-event and comfort noise left out)."""
    try:
        description = SessionDescription.parse(sdp)
    except ValueError:
        return []
    names: list[str] = []
    for section in description.media:
        if section.kind != "audio" or not section.active:
            continue
        mapped = {}
        for value in section.attributes("rtpmap"):
            payload, _, encoding = value.partition(" ")
            mapped[payload] = encoding.split("/", 1)[0]
        for payload in section.formats:
            name = mapped.get(payload) or _STATIC_PAYLOADS.get(payload) or f"payload {payload}"
            if name.lower() not in _NOT_CODECS and name not in names:
                names.append(name)
    return names


def refusal_reason(sdp: str, codecs: list[str], ipv6: bool = False) -> str | None:
    """Why an offer cannot be taken by an engine that has these audio codecs (names) and IPv6 or not, or None
    when it looks acceptable. For the 488s pjsua sends on its own, before the application sees the INVITE."""
    if not sdp.strip():
        return None
    refusal = media_refusal(sdp, ipv6)
    if refusal is not None:
        return refusal
    if not audio_active(sdp):
        try:
            offered = ", ".join(SessionDescription.parse(sdp).streams()) or "no stream"
        except ValueError:
            return "the offer is not valid SDP"
        return f"an offer without active audio cannot be taken by this engine (offered: {offered})"
    offered_codecs = offered_audio_codecs(sdp)
    wanted = {codec.lower() for codec in codecs}
    if not any(codec.lower() in wanted for codec in offered_codecs):
        return (f"no audio codec in common (offered: {', '.join(offered_codecs) or 'none'}; "
                f"accepted: {', '.join(codecs) or 'none'})")
    return None
