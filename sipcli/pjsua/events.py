"""What the pjsua layer reports to the middleware: plain, immutable data handed to the loop thread.

Each event is built on the pjsua thread from a callback's parameters (valid only during the callback) and
delivered to the owner's ``on_event`` on the asyncio loop thread with ``Engine.post``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioInfo", "AudioStatistics", "CallEvent", "CallStateChanged", "DTMFReceived", "IncomingCall",
           "InviteResponse", "KeepAliveResult", "MediaChanged", "RegistrationStateChanged", "RemoteProposal"]


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
    it ('local', 'remote') or None."""

    audio: AudioInfo | None
    hold: str | None


@dataclass(frozen=True)
class RemoteProposal:
    """A re-INVITE adds these streams; pjsua holds it until the AnswerProposal command."""

    streams: list[str]


@dataclass(frozen=True)
class InviteResponse:
    """A final response to one of our INVITEs (initial or re-INVITE) and its SDP body."""

    code: int
    reason: str
    body: str


@dataclass(frozen=True)
class DTMFReceived:
    digit: str
    method: str  # 'rfc2833' or 'info'


@dataclass(frozen=True)
class AudioStatistics:
    """RTP packets received so far, and where they come from when known; rtcp_reports: how many RTCP reports about
    our stream the peer sent (every ~5 s while its stream lives, also in silence, when it sends little RTP)."""

    packets: int
    address: str | None
    port: int | None
    rtcp_reports: int = 0


@dataclass(frozen=True)
class KeepAliveResult:
    """The final answer to our in-dialog keep-alive (OPTIONS); local: pjsip made it up (a timeout or a transport
    error), no response was received."""

    code: int
    reason: str
    local: bool


CallEvent = (IncomingCall | CallStateChanged | MediaChanged | RemoteProposal | InviteResponse | DTMFReceived
             | AudioStatistics | KeepAliveResult)


@dataclass(frozen=True)
class RegistrationStateChanged:
    """onRegState: code/reason of the REGISTER transaction, the granted expiration, pjsip's error text for a
    local failure, and the response itself when one was received (else '')."""

    code: int
    reason: str
    expiration: int
    error: str
    message: str
