"""Start-up time of the commands that never touch the SIP engine, next to a bare interpreter.

    python3 bench/startup.py [--runs R]

Times whole processes: `python -c pass` (the baseline: what any Python command pays), `sipcli --help` and
`sipcli accounts list` on an empty configuration, each through the installed console script. Prints best and
median per command and the difference to the baseline; the last line is one JSON object with the medians.
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


def timings(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        result.append(time.perf_counter() - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    sipcli = shutil.which("sipcli")
    if sipcli is None:
        raise SystemExit("sipcli is not installed (pip install .)")
    with tempfile.TemporaryDirectory() as config_dir:
        env = {**os.environ, "SIPCLI_CONFIG_DIR": config_dir}
        commands = {"python -c pass": [sys.executable, "-c", "pass"], "sipcli --help": [sipcli, "--help"],
                    "sipcli accounts list": [sipcli, "accounts", "list"]}
        medians = {}
        for name, argv in commands.items():
            times = timings(argv, args.runs, env)
            medians[name] = statistics.median(times)
            print(f"{name:<22} best {min(times) * 1000:6.1f} ms  median {medians[name] * 1000:6.1f} ms  "
                  f"(+{(medians[name] - medians['python -c pass']) * 1000:5.1f} ms over the baseline)")
    median_ms = {name: round(value * 1000, 1) for name, value in medians.items()}
    print(json.dumps({"runs": args.runs, "median_ms": median_ms}))


if __name__ == "__main__":
    main()
