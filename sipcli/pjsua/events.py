"""What the pjsua layer reports to the middleware: plain, immutable data handed to the loop thread.

Each event is built on the pjsua thread from a callback's parameters (valid only during the callback) and
delivered to the owner's ``on_event`` on the asyncio loop thread with ``Engine.post``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AccountEvent", "AudioInfo", "AudioStatistics", "CallEvent", "CallStateChanged", "DTMFReceived",
           "IncomingCall", "InfoResponse", "InviteResponse", "KeepAliveResult", "MediaChanged", "MediaFailed",
           "MessageStatus", "PagerRequest", "ProposalDeclined", "RegistrationStateChanged", "RejectedCall",
           "RemoteProposal", "StreamFigures"]


@dataclass(frozen=True)
class IncomingCall:
    """The INVITE of an incoming call, as received; the call rings (posted before pjsua's EARLY state)."""

    message: str


@dataclass(frozen=True)
class CallStateChanged:
    """pjsua's INVITE session state moved ('CALLING', 'EARLY', 'CONNECTING', 'CONFIRMED', 'DISCONNECTED'...).

    message: the SIP message that caused it when one was received (remote_response: it is a response)."""

    state: str
    code: int
    reason: str
    local_uri: str
    remote_uri: str
    remote_response: bool
    message: str


@dataclass(frozen=True)
class AudioInfo:
    """The negotiated parameters of the call's active audio stream."""

    codec: str
    sample_rate: int
    srtp_active: bool
    local_rtp_address: str
    local_rtp_port: int
    remote_rtp_address_sdp: str
    remote_rtp_port_sdp: int


@dataclass(frozen=True)
class MediaChanged:
    """The media of the call was (re)created: audio is None without an active audio stream; hold says who holds
    it ('local', 'remote') or None; inactive: the audio line is a=inactive (the remote offer made it so)."""

    audio: AudioInfo | None
    hold: str | None
    inactive: bool = False


@dataclass(frozen=True)
class MediaFailed:
    """pjsua could not (re)start the call's audio with the SDP just negotiated (e.g. an unusable SRTP answer to a
    re-INVITE): the audio line is dead (pjsua closed its transport) while the call goes on."""

    reason: str


@dataclass(frozen=True)
class RemoteProposal:
    """A re-INVITE adds these streams; pjsua holds it until the AnswerProposal command."""

    streams: list[str]


@dataclass(frozen=True)
class ProposalDeclined:
    """An offer pjsua answered at once (an UPDATE: it cannot be held) added these streams; its answer declined
    them."""

    streams: list[str]


@dataclass(frozen=True)
class InviteResponse:
    """A final response to one of our INVITEs (initial or re-INVITE) and its SDP body."""

    code: int
    reason: str
    body: str


@dataclass(frozen=True)
class InfoResponse:
    """A final response to one of our INFO requests (DTMF over SIP INFO)."""

    code: int
    reason: str


@dataclass(frozen=True)
class DTMFReceived:
    digit: str
    method: str  # 'rfc2833' or 'info'


@dataclass(frozen=True)
class StreamFigures:
    """What pjsua measured on one audio stream (RTP counters, RFC 3550 jitter, RTCP round-trip time)."""

    codec: str
    clock_rate: int
    packets_sent: int
    bytes_sent: int
    packets_received: int
    bytes_received: int
    packets_lost: int
    packets_discarded: int
    packets_duplicated: int
    packets_reordered: int
    jitter_mean_ms: float | None  # None: not measured yet
    jitter_max_ms: float | None
    rtt_ms: float | None  # None: no RTCP report with a round trip yet
    remote_packets_lost: int  # what the peer's RTCP receiver reports say it lost of ours


@dataclass(frozen=True)
class AudioStatistics:
    """RTP packets received so far, where they come from when known, and the stream's figures when read
    (stream_ended: its last ones, read just before pjsua destroyed the stream); rtcp_reports: how many RTCP reports
    about our stream the peer sent (every ~5 s while its stream lives, also in silence, when it sends little RTP)."""

    packets: int
    address: str | None
    port: int | None
    figures: StreamFigures | None = None
    stream_ended: bool = False
    rtcp_reports: int = 0


@dataclass(frozen=True)
class KeepAliveResult:
    """The final answer to our in-dialog keep-alive (OPTIONS); local: pjsip made it up (a timeout or a transport
    error), no response was received."""

    code: int
    reason: str
    local: bool


@dataclass(frozen=True)
class PagerRequest:
    """A pager-mode MESSAGE pjsua received (and answered 200 already), for an account or inside a call's dialog:
    the request's bytes as received; composing: pjsua took it for an RFC 3994 typing indication."""

    data: bytes
    composing: bool


CallEvent = (IncomingCall | CallStateChanged | MediaChanged | MediaFailed | RemoteProposal | ProposalDeclined
             | InviteResponse | InfoResponse | DTMFReceived | AudioStatistics | KeepAliveResult | PagerRequest)


@dataclass(frozen=True)
class RegistrationStateChanged:
    """onRegState: code/reason of the REGISTER transaction, the granted expiration, pjsip's error text for a
    local failure, and the response itself when one was received (else '')."""

    code: int
    reason: str
    expiration: int
    error: str
    message: str


AccountEvent = RegistrationStateChanged | PagerRequest


@dataclass(frozen=True)
class MessageStatus:
    """The final status of one MESSAGE sipcli sent: code and reason, and the whole response when one was received
    (b"" when the engine made the code up: a timeout, a transport failure, the engine stopping)."""

    code: int
    reason: str
    response: bytes


@dataclass(frozen=True)
class RejectedCall:
    """pjsua refused an incoming INVITE on its own, before any Call existed (e.g. 488 for an offer without a codec
    in common or without active audio). codecs: the audio codec names the engine had enabled."""

    code: int
    reason: str
    message: str
    codecs: list[str]
