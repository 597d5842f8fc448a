"""Whole-process `sipcli register` (register + unregister) against kamailio on loopback, next to `sipsak -U`.

    python3 bench/register.py [--runs N] [--transport udp|tcp]

Byte-compiles the package first (as installed), then prints best and median wall time of each and sipcli's peak
RSS; the last line is one JSON object {"sipcli_s": median, "sipsak_s": median, "peak_rss_mib": max, ...}.
Targets: <= 0.10 s, <= 35 MiB.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.kamailio import registrar


def compile_package() -> None:
    """Byte-compile sipcli first: runs then measure what an installed tool runs (pip writes .pyc files; an editable
    install under PYTHONDONTWRITEBYTECODE never does, and every run would compile the modules from source)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "sipcli", "commands"],
                   cwd=Path(__file__).resolve().parent.parent, check=True)
    print("byte-compiled sipcli and commands first (python -m compileall -q sipcli commands)")


def sipcli_executable() -> list[str]:
    """The installed console script next to this interpreter (a pyenv shim would add its own ~0.1 s)."""
    script = Path(sys.executable).parent / "sipcli"
    if script.exists():
        return [str(script)]
    found = shutil.which("sipcli")
    return [found] if found else [sys.executable, "-m", "sipcli.commands"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    args = parser.parse_args()
    compile_package()
    workdir = Path(tempfile.mkdtemp(prefix="sipcli-bench-"))
    (workdir / "kamailio").mkdir()
    kamailio = registrar(workdir / "kamailio")
    try:
        env = {**os.environ, "SIPCLI_CONFIG_DIR": str(workdir / "config"), "BENCH_PASSWORD": "alice-secret"}
        sipcli = [*sipcli_executable(), "register", "--from", "alice@example.test", "--password-env", "BENCH_PASSWORD",
                  "--proxy", kamailio.proxy(args.transport)]
        port = kamailio.udp_port if args.transport == "udp" else kamailio.tcp_port
        sipsak = ["sipsak", "-U", "-C", "sip:bench@127.0.0.1:5999", "-x", "600", "-a", "alice-secret",
                  "-s", f"sip:alice@127.0.0.1:{port}" + (";transport=tcp" if args.transport == "tcp" else "")]
        timed(sipcli, env)  # warm the page cache: every run then measures the same thing
        ours, theirs, rss = [], [], []
        for _ in range(args.runs):
            wall, peak, _ = timed(sipcli, env)
            ours.append(wall)
            rss.append(peak)
            theirs.append(timed(sipsak, env)[0])
    finally:
        kamailio.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"sipcli register ({args.transport}, register+unregister): best {min(ours):.3f} s, "
          f"median {statistics.median(ours):.3f} s, peak RSS {max(rss):.1f} MiB ({args.runs} runs)")
    print(f"sipsak -U ({args.transport}, one registration):  best {min(theirs):.3f} s, "
          f"median {statistics.median(theirs):.3f} s")
    print(json.dumps({"sipcli_s": round(statistics.median(ours), 4), "sipcli_best_s": round(min(ours), 4),
                      "sipsak_s": round(statistics.median(theirs), 4), "sipsak_best_s": round(min(theirs), 4),
                      "peak_rss_mib": round(max(rss), 1), "runs": args.runs, "transport": args.transport}))


if __name__ == "__main__":
    main()
