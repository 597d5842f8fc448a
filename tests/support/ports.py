"""Free loopback ports, chosen per test."""

import socket


def free_port(kind: str = "both") -> int:
    """A loopback port that is free for TCP and UDP (kind 'both'), or only for 'tcp' / 'udp'."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if kind != "both":
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")
