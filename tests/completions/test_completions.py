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


def complete(words: str, cword: int, env: dict[str, str] | None = None) -> list[str]:
    env = {**(env or os.environ), "_SIPCLI_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = subprocess.run([SIPCLI], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


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


@pytest.mark.parametrize(("shell", "filename"), [("bash", "sipcli.bash"), ("zsh", "_sipcli"), ("fish", "sipcli.fish")])
def test_completion_subcommand_prints_the_committed_script(tmp_path, shell, filename):
    result = subprocess.run([SIPCLI, "completion", shell], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == (ROOT / "completions" / filename).read_text()


def test_account_option_completes_the_configured_account_ids(tmp_path):
    config = tmp_path / "config"
    for account in ("alice@example.test", "albert@example.test", "bob@example.test"):
        added = subprocess.run([SIPCLI, "--config-dir", str(config), "accounts", "add", account, "--password-env",
                                "PW"], env={**os.environ, "PW": "pw"}, capture_output=True, text=True, timeout=30)
        assert added.returncode == 0, added.stderr
    words = f"sipcli --config-dir {config} call sip:x@127.0.0.1 --account al"
    assert sorted(complete(words, 6)) == ["albert@example.test", "alice@example.test"]
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(config)}
    assert sorted(complete("sipcli register --account ", 3, env)) == ["albert@example.test", "alice@example.test",
                                                                        "bob@example.test"]
    assert complete("sipcli listen --account nobody", 3, env) == []
