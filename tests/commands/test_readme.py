"""The README's shell examples, run exactly as printed.

Each example (the command lines of a ``::`` literal block up to a blank line, continuation lines joined; a
``.. code-block:: text`` diagram is none) runs with bash inside a private network namespace, where the fixed ports
and documentation addresses the README uses (127.0.0.1:5070, 192.0.2.7:5060) are free and reach nothing outside;
the peers an example talks to are started there first as stand-ins. Every README example must be listed here, so
a new one fails until it is run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import sine_wav
from tests.support.netns import private_netns

pytest.importorskip("pjsua2")

README = Path(__file__).resolve().parents[2] / "README.rst"
ROOT = README.parent


def examples() -> list[str]:
    """The README's shell examples (lines that run a program, in literal blocks), one string each."""
    blocks: list[str] = []
    current: list[str] = []
    in_block = False
    lines = README.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            in_block = True
            continue
        if in_block and line and not line.startswith(" "):
            in_block = False
        if not in_block or not line.strip() or line.strip().startswith("#"):
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        if current and current[-1].endswith("\\"):
            current[-1] = current[-1][:-1].rstrip() + " " + line.strip()
        else:
            current.append(line.strip())
        if index == len(lines) - 1 and current:
            blocks.append("\n".join(current))
    if current:
        blocks.append("\n".join(current))
    return blocks


# Examples run elsewhere: the CI scripts themselves, and the benchmarks (bench/ scripts, not tests).
ELSEWHERE = {
    "python3 -m venv ~/.venvs/sipcli && . ~/.venvs/sipcli/bin/activate\npip install . && sipcli demo":
        ".ci/installed-demo (a fresh venv, non-editable install, `sipcli demo` from the repository root)",
    "bash .ci/run": "CI itself",
    # engine/build.py, as .ci/run runs it (from the CI machine's tarball: a build of minutes, packages as root)
    "python3 engine/build.py --print-deps       # build-essential libssl-dev libopus-dev swig patch python3-dev "
    "binutils\nsudo apt-get install $(python3 engine/build.py --print-deps)   # or run the build as root with "
    "--install-deps\npython3 engine/build.py --source pjproject-2.15.1.tar.gz --install   # into the Python that "
    "runs it": ".ci/run",
}
BENCH = re.compile(r"^python bench/\w+\.py")
# Examples that need a registrar for example.com: run against kamailio at 10.0.0.1:5060 (proxy.example.com in a
# DNS server on the namespace's 127.0.0.1:53, its resolv.conf), where bob answers with a tone and DTMF 42.
NEED_REGISTRAR = ("alice@example.com", "bob@example.com")
REGISTRAR_USERS = {"alice": "secret", "bob": "bob-secret"}


def _sipcli_path(tmp_path: Path) -> str:
    """A directory with a `sipcli` executable running this checkout's interpreter, first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "sipcli"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m sipcli.commands \"$@\"\n")
    script.chmod(0o755)
    return f"{bindir}:{os.environ['PATH']}"


def _run(prefix: tuple[str, ...], example: str, tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": _sipcli_path(tmp_path), "SIPCLI_CONFIG_DIR": str(tmp_path / "config"),
           "ALICE_PW": "secret"}
    # Listeners an example leaves in the background (`... &`) are stopped when it is done.
    script = f"trap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT\n{example}"
    return subprocess.run([*prefix, "bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _stand_in(prefix: tuple[str, ...], tmp_path: Path, *args: str,
              env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "stand-in"), **(env or {})}
    errors = tmp_path / "stand-in.err"
    with open(errors, "w") as stderr:
        process = subprocess.Popen([*prefix, sys.executable, "-m", "sipcli.commands", *args], stdout=subprocess.PIPE,
                                   stderr=stderr, stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # until it takes calls
        if '"SIPCLIListenDidStart"' in line:
            return process
        seen.append(line)
    raise AssertionError(f"stand-in {args} did not start: {''.join(seen)[-2000:]}{errors.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def _wait_for(prefix: tuple[str, ...], host: str, port: int) -> None:
    """Until host:port accepts TCP connections inside the namespace."""
    probe = (f"import socket,time\nfor _ in range(200):\n    try: socket.create_connection(('{host}', {port}), 1)"
             f".close(); break\n    except OSError: time.sleep(0.05)\nelse: raise SystemExit(1)")
    subprocess.run([*prefix, sys.executable, "-c", probe], check=True, timeout=30)


@contextlib.contextmanager
def _registrar(prefix: tuple[str, ...], tmp_path: Path) -> Iterator[None]:
    """kamailio for example.com on 10.0.0.1:5060 (UDP, TCP) and a DNS server for the namespace's resolv.conf."""
    from tests.support.kamailio import Kamailio, registrar_config

    netns = prefix[-1]
    subprocess.run(["ip", "-n", netns, "addr", "add", "10.0.0.1/32", "dev", "lo"], check=True)
    etc = Path("/etc/netns") / netns  # `ip netns exec` mounts these over /etc/resolv.conf
    etc.mkdir(parents=True)
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    records = {"proxy.example.com A": ["10.0.0.1"], "example.com A": ["10.0.0.1"]}
    dns_server = subprocess.Popen([*prefix, sys.executable, "-m", "tests.support.dns", "53", json.dumps(records)],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True)
    (tmp_path / "kamailio").mkdir()
    k = Kamailio(tmp_path / "kamailio", 5060, 5060, None, REGISTRAR_USERS, domain="example.com")
    config = registrar_config(k).replace("127.0.0.1", "10.0.0.1")
    (k.workdir / "kamailio.cfg").write_text(config)
    log = open(k.workdir / "kamailio.log", "w")  # noqa: SIM115 - owned by the process
    k.process = subprocess.Popen([*prefix, "kamailio", "-DD", "-E", "-f", str(k.workdir / "kamailio.cfg"), "-m", "64",
                                  "-M", "8", "-Y", str(k.workdir), "-w", str(k.workdir)],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert dns_server.stdout is not None and dns_server.stdout.readline().strip() == "ready"
        _wait_for(prefix, "10.0.0.1", 5060)
        yield
    finally:
        k.stop()
        dns_server.terminate()
        dns_server.wait(5)
        shutil.rmtree(etc, ignore_errors=True)


def test_readme_registrar_examples_run_as_printed_in_order(tmp_path):
    """In README order, sharing one configuration: the account the first example adds is used by the next ones."""
    sine_wav(tmp_path / "hello.wav", 440, seconds=1, rate=8000)
    tone = sine_wav(tmp_path / "bob.tone.wav", 700, seconds=1, rate=8000)
    registrar_examples = [example for example in examples() if any(name in example for name in NEED_REGISTRAR)]
    assert registrar_examples
    with private_netns() as prefix, _registrar(prefix, tmp_path):
        bob = _stand_in(prefix, tmp_path, "listen", "--from", "bob@example.com", "--password-env", "BOB_PW",
                        "--proxy", "sip:10.0.0.1:5060", "--auto-answer", "--play", str(tone), "--dtmf", "42",
                        "--dtmf-delay", "0.3", env={"BOB_PW": REGISTRAR_USERS["bob"]})
        try:
            for example in registrar_examples:
                result = _run(prefix, example, tmp_path)
                assert result.returncode == 0, f"{example}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
                # Every run ends with a SIPCLIDidEnd line (accounts too); --format text renders it as a sentence.
                jobs = sum(1 for line in example.splitlines() if "sipcli " in line and "--format text" not in line)
                assert result.stdout.count('"name":"SIPCLIDidEnd"') == jobs, result.stdout[-2000:]
                if "sipcli register" in example:
                    assert '"name":"SIPAccountRegistrationDidSucceed"' in result.stdout
        finally:
            _stop(bob)
    assert (tmp_path / "bob.wav").stat().st_size > 44


def test_the_readme_check_file_is_valid(tmp_path):
    """The check file example (a TOML code-block, not a shell example) loads as `sipcli check` reads it."""
    from sipcli.commands.check import load_checks

    text = README.read_text(encoding="utf-8")
    block = text.split(".. code-block:: toml\n\n", 1)[1]
    block = re.split(r"\n(?=\S)", block, maxsplit=1)[0]
    path = tmp_path / "checks.toml"
    path.write_text("\n".join(line[4:] for line in block.splitlines()), encoding="utf-8")
    checks = load_checks(path, {"PROXY": "sip:127.0.0.1:5060", "ALICE_PW": "secret"})
    assert [(check.name, check.command) for check in checks] == [
        ("register alice", "register"), ("bob answers in PCMU", "call"), ("carol is busy", "call")]
    assert "sip:127.0.0.1:5060" in checks[0].argv and "--expect-code" in checks[2].argv


def test_every_readme_example_is_known():
    for example in examples():
        known = example in ELSEWHERE or BENCH.match(example) or any(name in example for name in NEED_REGISTRAR) \
            or example in RUN
        assert known, f"README example not run by any test:\n{example}"


RUN: dict[str, tuple[str, ...]] = {}  # example -> the stand-in `sipcli listen` it needs (args), or ()


def _p2p_examples() -> list[str]:
    return [example for example in examples() if example not in ELSEWHERE and not BENCH.match(example)
            and not any(name in example for name in NEED_REGISTRAR)]


STAND_INS = {
    "sip:bob@127.0.0.1:5070": ("listen", "--local-ip", "127.0.0.1", "--port", "5070", "--auto-answer", "--chat",
                               "--echo"),
    "sip:bob@192.0.2.7:5060": ("listen", "--local-ip", "192.0.2.7", "--port", "5060", "--chat", "--auto-answer"),
}
for _example in _p2p_examples():
    RUN[_example] = next((args for uri, args in STAND_INS.items() if uri in _example), ())


@pytest.mark.parametrize("example", sorted(RUN), ids=lambda example: example.split("\n")[0][:60])
def test_readme_example_runs_as_printed(example, tmp_path):
    sine_wav(tmp_path / "hello.wav", 440, seconds=1, rate=8000)
    with private_netns() as prefix:
        subprocess.run(["ip", "-n", prefix[-1], "addr", "add", "192.0.2.7/32", "dev", "lo"], check=True)
        stand_in = _stand_in(prefix, tmp_path, *RUN[example]) if RUN[example] else None
        try:
            result = _run(prefix, example, tmp_path)
        finally:
            if stand_in is not None:
                _stop(stand_in)
    assert result.returncode == 0, f"{example}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    if "| jq" in example:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z\n", result.stdout), result.stdout
    elif "--format text" in example:
        assert "message delivered" in result.stdout and "-> exit 0 (the job did what was asked)" in result.stdout
    else:
        assert '"name":"SIPCLIDidEnd"' in result.stdout
