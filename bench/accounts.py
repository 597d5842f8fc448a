"""`sipcli accounts list` over a configuration with many accounts, next to `json.load` of the same file.

    python3 bench/accounts.py [--accounts N] [--runs R]

Writes a config.json with N accounts (password, display name, proxy on every third) into a temporary directory,
then prints best and median wall time and peak RSS of: a process that only json.loads the file (the baseline),
`sipcli accounts list` (JSON lines) and `sipcli accounts list --format text` (a table). Each is a whole process;
the package is byte-compiled first. The last line is one JSON object with the medians and peaks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_config(directory: Path, count: int) -> Path:
    accounts = {}
    for i in range(count):
        account: dict = {"auth": {"password": f"pw-{i}"}, "display_name": f"User {i}"}
        if i % 3 == 0:
            account["sip"] = {"outbound_proxy": "sip:127.0.0.1:5060;transport=tcp"}
        accounts[f"user{i}@example.test"] = account
    path = directory / "config.json"
    settings = {"default_account": "user1@example.test"}
    path.write_text(json.dumps({"version": 1, "accounts": accounts, "settings": settings}))
    path.chmod(0o600)
    return path


def timed(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, stdout lines) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = sum(1 for _ in process.stdout)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{argv} failed ({code}): {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", "sipcli", "commands"], cwd=ROOT, check=True)
    sipcli = [sys.executable, "-m", "sipcli.commands"]
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), options.accounts)
        cases = {
            "json_load": [sys.executable, "-c", f"import json; json.load(open({str(config)!r}))"],
            "list_json": [*sipcli, "--config-dir", tmp, "accounts", "list"],
            "list_text": [*sipcli, "--config-dir", tmp, "accounts", "list", "--format", "text"],
        }
        print(f"{options.accounts} accounts, {config.stat().st_size / 2**20:.1f} MiB config.json, "
              f"{options.runs} runs each (run from {os.getcwd()})")
        figures = {}
        for name, argv in cases.items():
            runs = [timed(argv) for _ in range(options.runs)]
            times = [run[0] for run in runs]
            peak = max(run[1] for run in runs)
            print(f"{name:10} best {min(times):6.2f} s  median {statistics.median(times):6.2f} s  "
                  f"peak RSS {peak:6.1f} MiB  {runs[0][2]} stdout lines")
            figures[f"{name}_s"] = round(statistics.median(times), 3)
            figures[f"{name}_rss_mib"] = round(peak, 1)
    print(json.dumps({"accounts": options.accounts, **figures}))


if __name__ == "__main__":
    main()
