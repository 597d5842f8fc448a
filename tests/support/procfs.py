"""What /proc tells about a running process: its listening TCP ports, its memory."""

from __future__ import annotations

import os
from pathlib import Path


def listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state whose socket belongs to pid."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return {int(cols[1].split(":")[1], 16) for cols in map(str.split, rows) if cols[3] == "0A" and cols[9] in inodes}


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak resident size so far) of pid, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0]) / 1024
    return values
