"""A lossy path between a caller and a listener on loopback: a UDP relay for the INVITE transaction and the RTP.

The caller sends its INVITE to ``sip_port``; the relay forwards it to the listener and the responses back, and
rewrites only the audio ports of the two SDP bodies (``m=audio`` and ``a=rtcp``) to its own, so that all RTP
and RTCP of the call passes through it. It drops every ``drop_every``-th RTP packet in each direction and
forwards everything else unchanged. In-dialog requests (ACK, BYE) go straight between the two (Contact).
"""

from __future__ import annotations

import re
import selectors
import socket
import threading

LOOPBACK = "127.0.0.1"
_AUDIO_PORT = re.compile(rb"^(m=audio )(\d+)", re.MULTILINE)
_RTCP_PORT = re.compile(rb"^(a=rtcp:)(\d+)", re.MULTILINE)
_CONTENT_LENGTH = re.compile(rb"^(Content-Length|l)[ \t]*:[ \t]*\d+", re.MULTILINE | re.IGNORECASE)


def _udp(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, port))
    return sock


def _port_pair() -> tuple[socket.socket, socket.socket]:
    """Two sockets on an even port and the next (RTP, RTCP)."""
    for _ in range(100):
        probe = _udp()
        port = probe.getsockname()[1]
        probe.close()
        port -= port % 2
        try:
            rtp = _udp(port)
        except OSError:
            continue
        try:
            return rtp, _udp(port + 1)
        except OSError:
            rtp.close()
    raise RuntimeError("no free RTP port pair on loopback")


class LossyPath:
    """Start with the listener's SIP port; call ``uri`` instead of the listener's; ``close()`` at the end."""

    def __init__(self, listener_sip_port: int, drop_every: int = 10) -> None:
        self.listener = (LOOPBACK, listener_sip_port)
        self.drop_every = drop_every
        self.caller_sip = _udp()  # the caller talks to this one
        self.listener_sip = _udp()  # and the listener to this one
        self.caller_rtp, self.caller_rtcp = _port_pair()  # in the listener's SDP, as the caller gets it
        self.listener_rtp, self.listener_rtcp = _port_pair()  # in the caller's SDP, as the listener gets it
        self.caller: tuple[str, int] | None = None
        self.targets: dict[socket.socket, tuple[str, int]] = {}  # where each RTP/RTCP socket forwards to
        self.forwarded = {"to_listener": 0, "to_caller": 0}
        self.dropped = {"to_listener": 0, "to_caller": 0}
        self._counts = {"to_listener": 0, "to_caller": 0}
        self._selector = selectors.DefaultSelector()
        for sock in (self.caller_sip, self.listener_sip, self.caller_rtp, self.caller_rtcp, self.listener_rtp,
                     self.listener_rtcp):
            self._selector.register(sock, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"sip:listener@{LOOPBACK}:{self.caller_sip.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._selector.close()
        for sock in (self.caller_sip, self.listener_sip, self.caller_rtp, self.caller_rtcp, self.listener_rtp,
                     self.listener_rtcp):
            sock.close()

    def _rewrite(self, message: bytes, rtp: socket.socket, rtcp: socket.socket, peer_rtp: socket.socket,
                 peer_rtcp: socket.socket) -> bytes:
        """The SDP of message with the relay's audio ports; rtp/rtcp: the relay's sockets that now receive what
        was sent to the SDP's ports, peer_*: the sockets that forward to them."""
        head, separator, body = message.partition(b"\r\n\r\n")
        audio = _AUDIO_PORT.search(body)
        if not separator or audio is None:
            return message
        port = int(audio.group(2))
        self.targets[peer_rtp] = (LOOPBACK, port)
        rtcp_match = _RTCP_PORT.search(body)
        self.targets[peer_rtcp] = (LOOPBACK, int(rtcp_match.group(2)) if rtcp_match else port + 1)
        body = _AUDIO_PORT.sub(lambda m: m.group(1) + str(rtp.getsockname()[1]).encode(), body, count=1)
        body = _RTCP_PORT.sub(lambda m: m.group(1) + str(rtcp.getsockname()[1]).encode(), body, count=1)
        head = _CONTENT_LENGTH.sub(lambda m: m.group(1) + b": " + str(len(body)).encode(), head, count=1)
        return head + separator + body

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data, source = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self.caller_sip:
                    self.caller = source
                    # the listener sends its RTP to listener_rtp, which forwards it to the caller
                    data = self._rewrite(data, self.listener_rtp, self.listener_rtcp, self.caller_rtp,
                                         self.caller_rtcp)
                    self.listener_sip.sendto(data, self.listener)
                elif sock is self.listener_sip:
                    if self.caller is not None:
                        data = self._rewrite(data, self.caller_rtp, self.caller_rtcp, self.listener_rtp,
                                             self.listener_rtcp)
                        self.caller_sip.sendto(data, self.caller)
                else:
                    self._media(sock, data)

    def _media(self, sock: socket.socket, data: bytes) -> None:
        """RTP/RTCP that reached sock goes out of the socket on the other side, to the address in its SDP."""
        pairs = {self.caller_rtp: self.listener_rtp, self.listener_rtp: self.caller_rtp,
                 self.caller_rtcp: self.listener_rtcp, self.listener_rtcp: self.caller_rtcp}
        out = pairs[sock]
        target = self.targets.get(out)
        if target is None:
            return
        if sock in (self.caller_rtp, self.listener_rtp):
            direction = "to_listener" if sock is self.caller_rtp else "to_caller"
            self._counts[direction] += 1
            if self._counts[direction] % self.drop_every == 0:
                self.dropped[direction] += 1
                return
            self.forwarded[direction] += 1
        out.sendto(data, target)
