"""Soak: calls and chats for N minutes against one long-lived `sipcli listen`; its memory and descriptors over time.

    python3 bench/soak.py [--minutes M] [--sample S] [--call-duration S]

A `sipcli listen --auto-answer --chat --echo` runs for the whole soak while two loops run side by side, one
process at a time each: `sipcli call --duration S` (audio) and `sipcli chat --message ...` (MSRP, echoed back).
Every --sample seconds the listener's resident size (VmRSS) and open descriptors (/proc/PID/fd) are recorded.
The baseline is the same listener idle, before its first session. Figures: sessions and failures (a non-zero
exit of a caller, a SIPSessionDidFail at the listener), RSS and fds at the start, at the end and at their peak,
and the growth per 100 sessions between the first and the last quarter of the soak (a leak shows as a steady
slope; warm-up does not). The package is byte-compiled first. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.register import compile_package, sipcli_executable
from tests.support.procfs import memory_mib

LOOPBACK = ["--local-ip", "127.0.0.1"]


class Listener:
    """The long-lived `sipcli listen`: its URI once it listens, and a count of the notifications it printed."""

    def __init__(self, env: dict[str, str]) -> None:
        argv = [*sipcli_executable(), "listen", *LOOPBACK, "--auto-answer", "--chat", "--echo"]
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.names: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []  # SIPSessionDidFail reasons
        self.uri: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(20) or self.uri is None:
            self.stop()
            raise SystemExit("sipcli listen did not start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self.names[event["name"]] += 1
            if event["name"] == "SIPSessionDidFail":
                self.failures.append(f"{event['data']['code']} {event['data']['reason']}")
            if event["name"] == "SIPCLIListenDidStart":
                self.uri = event["data"]["uris"]["udp"]
                self._ready.set()
        self._ready.set()

    def sample(self) -> tuple[float, int]:
        """(VmRSS MiB, open descriptors) now."""
        pid = self.process.pid
        return memory_mib(pid)["VmRSS"], len(os.listdir(f"/proc/{pid}/fd"))

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(15)


def loop(kind: str, argv: list[str], env: dict[str, str], until: float, results: dict[str, list[int]],
         failures: list[str]) -> None:
    """Run argv again and again until the deadline, one process at a time; their exit codes in results[kind], the
    reason of each failure (its SIPCLIDidEnd line) in failures."""
    while time.monotonic() < until:
        run = subprocess.run(argv, env=env, capture_output=True, text=True)
        results[kind].append(run.returncode)
        if run.returncode != 0:
            last = run.stdout.strip().rsplit("\n", 1)[-1]
            failures.append(f"{kind} exit {run.returncode}: {json.loads(last)['data']['reason'] if last else '-'}")


def growth_per_100(samples: list[tuple[float, float, int, int]], index: int) -> float:
    """How much the figure at index grew per 100 sessions from the first to the last quarter of the samples."""
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]
    sessions = sum(s[3] for s in last) / len(last) - sum(s[3] for s in first) / len(first)
    if sessions <= 0:
        return 0.0
    change = sum(s[index] for s in last) / len(last) - sum(s[index] for s in first) / len(first)
    return change / sessions * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples of the listener")
    parser.add_argument("--call-duration", type=float, default=1.0)
    args = parser.parse_args()
    compile_package()
    workdir = Path(tempfile.mkdtemp(prefix="sipcli-bench-soak-"))
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(workdir / "listener")}
    listener = Listener(env)
    time.sleep(1)
    baseline_rss, baseline_fds = listener.sample()
    print(f"listener idle (baseline): RSS {baseline_rss:.1f} MiB, {baseline_fds} fds")
    assert listener.uri is not None
    caller_env = {**os.environ, "SIPCLI_CONFIG_DIR": str(workdir / "callers")}
    call = [*sipcli_executable(), "call", listener.uri, *LOOPBACK, "--duration", f"{args.call_duration:g}"]
    chat = [*sipcli_executable(), "chat", listener.uri, *LOOPBACK, "--message", "soak one", "--message", "soak two"]
    results: dict[str, list[int]] = {"call": [], "chat": []}
    failures: list[str] = []
    started = time.monotonic()
    until = started + args.minutes * 60
    workers = [threading.Thread(target=loop, args=(kind, argv, caller_env, until, results, failures))
               for kind, argv in (("call", call), ("chat", chat))]
    for worker in workers:
        worker.start()
    samples: list[tuple[float, float, int, int]] = []  # (seconds, RSS MiB, fds, sessions so far)
    while any(worker.is_alive() for worker in workers):
        time.sleep(min(args.sample, max(0.1, until + 30 - time.monotonic())))
        rss, fds = listener.sample()
        sessions = listener.names["SIPSessionDidEnd"]
        samples.append((time.monotonic() - started, rss, fds, sessions))
        print(f"{samples[-1][0]:7.1f} s  RSS {rss:6.1f} MiB  fds {fds:3d}  sessions {sessions}", flush=True)
    for worker in workers:
        worker.join()
    time.sleep(2)  # the last session's teardown
    end_rss, end_fds = listener.sample()
    alive = listener.process.poll() is None
    listener_exit = listener.stop()
    failed = {kind: sum(1 for code in codes if code != 0) for kind, codes in results.items()}
    figures = {
        "minutes": args.minutes, "calls": len(results["call"]), "chats": len(results["chat"]),
        "failed_calls": failed["call"], "failed_chats": failed["chat"],
        "listener_sessions": listener.names["SIPSessionDidEnd"],
        "listener_failures": listener.names["SIPSessionDidFail"],
        "listener_alive": alive, "listener_exit": listener_exit,
        "baseline_rss_mib": round(baseline_rss, 1), "end_rss_mib": round(end_rss, 1),
        "peak_rss_mib": round(max([baseline_rss, end_rss, *(s[1] for s in samples)]), 1),
        "baseline_fds": baseline_fds, "end_fds": end_fds,
        "peak_fds": max([baseline_fds, end_fds, *(s[2] for s in samples)]),
        "rss_growth_mib_per_100_sessions": round(growth_per_100(samples, 1), 2),
        "fd_growth_per_100_sessions": round(growth_per_100(samples, 2), 2),
    }
    print(f"{figures['calls']} calls ({figures['failed_calls']} failed) and {figures['chats']} chats "
          f"({figures['failed_chats']} failed) in {args.minutes:g} min; the listener ended "
          f"{figures['listener_sessions']} sessions, {figures['listener_failures']} failed")
    print(f"listener RSS: baseline {baseline_rss:.1f} MiB, end {end_rss:.1f}, peak {figures['peak_rss_mib']}; "
          f"{figures['rss_growth_mib_per_100_sessions']} MiB per 100 sessions (first to last quarter)")
    for reason in failures + [f"listener: {reason}" for reason in listener.failures]:
        print(f"failure: {reason}")
    print(f"listener fds: baseline {baseline_fds}, end {end_fds}, peak {figures['peak_fds']}; "
          f"{figures['fd_growth_per_100_sessions']} per 100 sessions")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
