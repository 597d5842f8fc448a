"""Audio call benchmarks on loopback: call setup time, whole-process `sipcli call`, and `sipcli listen` under load.

    python3 bench/call.py [--calls N] [--load-calls N ...] [--rate CPS] [--hold S] [--engine PYTHON ...]

1. Call setup (INVITE sent -> 200 OK -> ACK sent), p50/p95 over --calls calls: `sipcli call --duration 0 --trace`
   to a SIPp UAS (times from its SIPEngineSIPTrace lines), next to a SIPp UAC placing the same calls to the same
   UAS in the same run (times from its message log).
2. Whole process: wall time of `sipcli call --duration 0` (start, call, BYE, exit), p50/best, next to one SIPp UAC
   process placing one call.
3. `sipcli listen --auto-answer` taking --load-calls calls (100 and 250 by default) from SIPp at --rate calls/s,
   each held --hold s: calls answered, p50/p95 setup time under load (SIPp's INVITE -> 200), the listener's peak
   RSS; once per engine: this Python's pjsua2 and each --engine PYTHON (a venv with another pjsua2, e.g.
   sipcli's engine build), side by side.
The package is byte-compiled first (as installed). The last line is one JSON object.
Targets: whole process <= 0.15 s; setup added by sipcli <= 5 ms p50;
100 calls with 0 failures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.register import compile_package, sipcli_executable
from tests.support.ports import free_port
from tests.support.sipp import SCENARIOS, start_sipp


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def sipcli_setup_times(uas_uri: str, calls: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """(setup seconds, whole-process seconds) of `sipcli call --duration 0 --trace`, one process per call."""
    setups, walls = [], []
    command = [*sipcli_executable(), "call", uas_uri, "--local-ip", "127.0.0.1", "--duration", "0", "--trace"]
    subprocess.run(command, env=env, capture_output=True, check=True)  # warm the page cache
    for _ in range(calls):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"sipcli call failed ({result.returncode}): {result.stderr[-2000:]}")
        invite = ack = None
        for line in result.stdout.splitlines():
            event = json.loads(line)
            if event["name"] != "SIPEngineSIPTrace":
                continue
            data = event["data"]["data"]
            when = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
            if invite is None and data.startswith("INVITE "):
                invite = when
            elif ack is None and data.startswith("ACK "):
                ack = when
        setups.append(ack - invite)
    return setups, walls


def sipp_setup_times(uas_port: int, calls: int, workdir: Path) -> tuple[list[float], list[float]]:
    """(INVITE sent -> ACK sent seconds, from its message log, and whole-process seconds) of SIPp UACs."""
    setups, walls = [], []
    for index in range(calls):
        log = workdir / f"uac_{index}.log"
        started = time.perf_counter()
        subprocess.run(["sipp", "-sf", str(SCENARIOS / "uac_hold.xml"), "-i", "127.0.0.1", "-p", str(free_port("udp")),
                        "-m", "1", "-d", "0", "-nostdin", "-trace_msg", "-message_file", str(log),
                        f"127.0.0.1:{uas_port}"], cwd=workdir, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        sent = {}
        for block in log.read_text().split("\n-----")[0:]:
            lines = block.strip("-\n").splitlines()
            if len(lines) < 3 or "message sent" not in lines[1]:
                continue
            stamp = datetime.strptime(lines[0].strip(" -").replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            method = next(line for line in lines[2:] if line.strip()).split()[0]
            sent.setdefault(method, stamp)
        setups.append(sent["ACK"] - sent["INVITE"])
    return setups, walls


def engine_label(python: str) -> str:
    """The pjsua2 version a Python interpreter loads (e.g. 2.15.1.post1, 2.15.1.post1+sipcli)."""
    return subprocess.run([python, "-c", "import pjsua2; print(pjsua2.__version__)"], capture_output=True,
                          text=True, check=True).stdout.strip()


def listen_load(calls: int, rate: float, hold: float, workdir: Path, env: dict[str, str],
                sipcli: list[str] | None = None) -> dict:
    """Run `sipcli listen --auto-answer --count calls` under a SIPp load: answered and failed calls, setup time
    percentiles (SIPp's response times to its INVITEs, over the answered calls) and the listener's peak RSS."""
    workdir = workdir / f"load-{calls}-{time.monotonic_ns()}"
    listener = subprocess.Popen(
        [*(sipcli or sipcli_executable()), "listen", "--local-ip", "127.0.0.1", "--auto-answer", "--count",
         str(calls)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    uri = None
    for line in listener.stdout:
        event = json.loads(line)
        if event["name"] == "SIPCLIListenDidStart":
            uri = event["data"]["uris"]["udp"]
            break
    port = uri.rsplit(":", 1)[1]
    # Read the listener's lines as they come: a full pipe would block its output, and with it the listener.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(listener.stdout), daemon=True)
    reader.start()
    uac = start_sipp("uac_hold", workdir, f"127.0.0.1:{port}", calls=calls,
                     extra=["-r", str(rate), "-d", str(int(hold * 1000)), "-l", str(calls), "-trace_stat",
                            "-stf", str(workdir / "stat.csv"), "-trace_rtt", "-rtt_freq", "1"])
    try:
        uac.wait(calls / rate + hold + 60)
        # os.wait4 (not poll) reaps the listener, for its peak RSS.
        deadline = time.monotonic() + hold + 5
        pid, status, usage = os.wait4(listener.pid, os.WNOHANG)
        while not pid and time.monotonic() < deadline:
            time.sleep(0.05)
            pid, status, usage = os.wait4(listener.pid, os.WNOHANG)
        if not pid:  # failed calls never reach the listener's --count: stop it (it ends its sessions, exits 130)
            listener.terminate()
            _, status, usage = os.wait4(listener.pid, 0)
        listener.returncode = os.waitstatus_to_exitcode(status)
        reader.join(10)
        summary = json.loads(lines[-1]) if lines else None
    finally:
        uac.stop()
        if listener.returncode is None:
            listener.kill()
            listener.wait()
    header, *rows = (workdir / "stat.csv").read_text().strip().splitlines()
    stats = dict(zip(header.split(";"), rows[-1].split(";"), strict=False))
    setups = []
    for rtt in workdir.glob("uac_hold_*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            fields = line.split(";")
            if len(fields) >= 2:
                setups.append(float(fields[1]))
    return {"calls": calls, "successful": int(stats["SuccessfulCall(C)"]), "failed": int(stats["FailedCall(C)"]),
            "sipp_exit": uac.process.returncode, "listener_exit": os.waitstatus_to_exitcode(status),
            "listener_sessions": summary["data"].get("sessions") if summary else None,
            "setup_p50_ms": round(statistics.median(setups), 2) if setups else None,
            "setup_p95_ms": round(percentile(setups, 0.95), 2) if setups else None,
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--load-calls", type=int, nargs="+", default=[100, 250])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--hold", type=float, default=6)
    parser.add_argument("--engine", action="append", default=[], metavar="PYTHON",
                        help="also run the load with this interpreter's pjsua2 (repeatable)")
    args = parser.parse_args()
    compile_package()
    workdir = Path(tempfile.mkdtemp(prefix="sipcli-bench-call-"))
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(workdir / "config")}
    uas = start_sipp("uas_answer", workdir / "uas", calls=None)
    try:
        ours, our_walls = sipcli_setup_times(uas.uri, args.calls, env)
        theirs, their_walls = sipp_setup_times(uas.port, args.calls, workdir)
    finally:
        uas.stop()
    engines = [(engine_label(sys.executable), sipcli_executable())]
    engines += [(engine_label(python), [python, "-m", "sipcli.commands"]) for python in args.engine]
    loads = {label: [listen_load(calls, args.rate, args.hold, workdir, env, command) for calls in args.load_calls]
             for label, command in engines}
    shutil.rmtree(workdir, ignore_errors=True)
    ms = 1000
    print(f"call setup, sipcli (INVITE -> 200 -> ACK): p50 {statistics.median(ours) * ms:.2f} ms, "
          f"p95 {percentile(ours, 0.95) * ms:.2f} ms ({args.calls} calls)")
    print(f"call setup, SIPp UAC (INVITE -> 200 -> ACK): p50 {statistics.median(theirs) * ms:.2f} ms, "
          f"p95 {percentile(theirs, 0.95) * ms:.2f} ms")
    print(f"whole process: sipcli call --duration 0 p50 {statistics.median(our_walls):.3f} s "
          f"(best {min(our_walls):.3f}); sipp one call p50 {statistics.median(their_walls):.3f} s")
    print(f"listen --auto-answer under SIPp load ({args.rate:g} cps, each call held {args.hold:g} s):")
    print(f"  {'engine':<22} {'calls':>5} {'answered':>8} {'failed':>6} {'setup p50':>10} {'p95':>9} {'peak RSS':>9}")
    for label, results in loads.items():
        for load in results:
            p50 = f"{load['setup_p50_ms']:.1f} ms" if load["setup_p50_ms"] is not None else "-"
            p95 = f"{load['setup_p95_ms']:.1f} ms" if load["setup_p95_ms"] is not None else "-"
            print(f"  {label:<22} {load['calls']:>5} {load['successful']:>8} {load['failed']:>6} {p50:>10} {p95:>9} "
                  f"{load['peak_rss_mib']:>5.1f} MiB")
    load = loads[engines[0][0]][0]
    print(json.dumps({
        "setup_p50_ms": round(statistics.median(ours) * ms, 2), "setup_p95_ms": round(percentile(ours, 0.95) * ms, 2),
        "sipp_setup_p50_ms": round(statistics.median(theirs) * ms, 2),
        "sipp_setup_p95_ms": round(percentile(theirs, 0.95) * ms, 2),
        "setup_added_p50_ms": round((statistics.median(ours) - statistics.median(theirs)) * ms, 2),
        "process_p50_s": round(statistics.median(our_walls), 4), "process_best_s": round(min(our_walls), 4),
        "sipp_process_p50_s": round(statistics.median(their_walls), 4),
        "load_calls": load["calls"], "load_failed": load["failed"], "load_successful": load["successful"],
        "listener_exit": load["listener_exit"], "listen_peak_rss_mib": load["peak_rss_mib"],
        "load_by_engine": loads}))


if __name__ == "__main__":
    main()
