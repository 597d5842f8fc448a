"""1,000 pager-mode MESSAGEs from one `sipcli message` process to a SIPp UAS over UDP, next to SIPp's own UAC
sending the same count to the same kind of UAS in the same run.

    python3 bench/message.py [--count N] [--runs R]

Byte-compiles the package first (as installed). For sipcli it prints the whole process (start-up, N MESSAGEs read
from stdin, teardown) and the sending phase alone (first to last SIPMessageDidSucceed line); for SIPp the time
its UAC took for N MESSAGEs with at most as many in flight as sipcli keeps (commands/message.py WINDOW). The last
line is one JSON object with the medians.
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
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sipcli.commands.message import WINDOW

from bench.register import compile_package, sipcli_executable
from tests.support.sipp import start_sipp


def run_sipcli(uri: str, count: int, env: dict[str, str]) -> tuple[float, float]:
    """(whole-process seconds, sending-phase seconds) of one `sipcli message` with count stdin lines."""
    lines = "".join(f"message {i} ✓\n" for i in range(count))
    started = time.perf_counter()
    done = subprocess.run([*sipcli_executable(), "message", uri, "--local-ip", "127.0.0.1"], input=lines,
                          capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sipcli message failed ({done.returncode}): {done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    stamps = [datetime.fromisoformat(e["time"]) for e in events if e["name"] == "SIPMessageDidSucceed"]
    if len(stamps) != count:
        raise SystemExit(f"sipcli reported {len(stamps)} deliveries, not {count}")
    start = next(datetime.fromisoformat(e["time"]) for e in events if e["name"] == "SIPApplicationDidStart")
    return wall, (max(stamps) - start).total_seconds()


def run_sipp_uac(target: str, count: int, workdir: Path) -> float:
    """Seconds SIPp's UAC takes for count MESSAGEs (as fast as it can, WINDOW in flight)."""
    started = time.perf_counter()
    uac = start_sipp("uac_message", workdir, target, calls=count,
                     extra=["-key", "body", "message", "-r", "1000000", "-l", str(WINDOW)])
    code = uac.wait(300)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"sipp UAC failed ({code}): {uac.output()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    workdir = Path(tempfile.mkdtemp(prefix="sipcli-bench-"))
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(workdir / "config")}
    whole, sending, sipp = [], [], []
    try:
        for run in range(args.runs):
            uas = start_sipp("uas_message", workdir / f"uas{run}", calls=None, extra=["-trace_err"])
            try:
                wall, phase = run_sipcli(uas.uri, args.count, env)
                whole.append(wall)
                sending.append(phase)
                sipp.append(run_sipp_uac(f"127.0.0.1:{uas.port}", args.count, workdir / f"uac{run}"))
            finally:
                uas.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n = args.count
    print(f"sipcli message, {n} MESSAGEs over UDP: whole process median {statistics.median(whole):.3f} s "
          f"({n / statistics.median(whole):.0f} msg/s), sending phase median {statistics.median(sending):.3f} s "
          f"({n / statistics.median(sending):.0f} msg/s) [{args.runs} runs]")
    print(f"SIPp UAC, {n} MESSAGEs over UDP ({WINDOW} in flight): median {statistics.median(sipp):.3f} s "
          f"({n / statistics.median(sipp):.0f} msg/s)")
    print(json.dumps({"count": n, "runs": args.runs, "window": WINDOW,
                      "sipcli_whole_msgs_per_s": round(n / statistics.median(whole)),
                      "sipcli_sending_msgs_per_s": round(n / statistics.median(sending)),
                      "sipp_msgs_per_s": round(n / statistics.median(sipp)),
                      "sipcli_whole_s": round(statistics.median(whole), 3),
                      "sipp_s": round(statistics.median(sipp), 3)}))


if __name__ == "__main__":
    main()
