"""A private network namespace with multicast on loopback: mDNS tests never reach a real network."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextmanager
def private_netns() -> Iterator[tuple[str, ...]]:
    """Yield the command prefix that runs a program in a new namespace (only lo, up, with 224.0.0.0/4 on it);
    skip the test when not root or `ip netns` is unavailable. The namespace is deleted afterwards: stop the
    processes started in it first."""
    if os.geteuid() != 0:
        pytest.skip("mDNS tests need root to create a private network namespace (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("mDNS tests need `ip` (iproute2) for a private network namespace")
    name = f"sipcli-{secrets.token_hex(4)}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"ip netns is unavailable: {error.stderr.strip()}")
    try:
        for command in (("link", "set", "lo", "up"), ("link", "set", "lo", "multicast", "on"),
                        ("route", "add", "224.0.0.0/4", "dev", "lo")):
            _ip("-n", name, *command)
        yield ("ip", "netns", "exec", name)
    finally:
        _ip("netns", "delete", name)
