"""The committed completion scripts match what click generates, load in their shells, and really complete."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIPCLI = str(Path(sys.executable).with_name("sipcli")) if Path(sys.executable).with_name("sipcli").exists() \
    else shutil.which("sipcli")


def test_committed_scripts_are_not_stale():
    result = subprocess.run([sys.executable, str(ROOT / "completions" / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_SIPCLI_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = subprocess.run([SIPCLI], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_completion_lists_subcommands_and_options():
    assert "accounts" in complete("sipcli acc", 1)
    assert set(complete("sipcli accounts ", 2)) >= {"list", "add", "show", "set", "delete", "default"}
    assert "--password-stdin" in complete("sipcli accounts add x --pass", 4)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_registers_the_completion():
    script = ROOT / "completions" / "sipcli.bash"
    result = subprocess.run(["bash", "-c", f"source {script} && complete -p sipcli"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0 and "_sipcli_completion" in result.stdout, result.stderr
