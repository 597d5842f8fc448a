"""An SRTP audio sender for peers that negotiate SDES keys but send no media themselves (SIPp): a PCMU tone,
protected with a master key + salt from an SDP crypto line (pylibsrtp)."""

from __future__ import annotations

import base64
import math
import socket
import struct
import time

FRAME = 160  # 20 ms of PCMU at 8 kHz


def pcmu(sample: int) -> int:
    """G.711 mu-law of one 16-bit sample (as the reference encoder: 14-bit magnitude, bias 33, clip 8159)."""
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    value = min(-value if value < 0 else value, 8159) + 33
    segment = max(0, value.bit_length() - 6)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def send_srtp_tone(destination: tuple[str, int], inline_key: str, frequency: float, seconds: float,
                   ssrc: int = 0x5151) -> int:
    """Send seconds of a PCMU sine tone as SRTP (AES_CM_128_HMAC_SHA1_80) at real time; the packet count."""
    import pylibsrtp

    policy = pylibsrtp.Policy(key=base64.b64decode(inline_key), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                              srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
    session = pylibsrtp.Session(policy=policy)
    packets = int(seconds * 50)
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for number in range(packets):
            payload = bytes(pcmu(int(12000 * math.sin(2 * math.pi * frequency * (number * FRAME + n) / 8000)))
                            for n in range(FRAME))
            header = struct.pack("!BBHII", 0x80, 0, number & 0xFFFF, number * FRAME, ssrc)
            sock.sendto(session.protect(header + payload), destination)
            time.sleep(max(0.0, start + (number + 1) * 0.02 - time.monotonic()))
    return packets
