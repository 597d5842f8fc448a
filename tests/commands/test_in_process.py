"""The click group runs in-process under click's CliRunner: no command calls os._exit (only the console script's
``main`` does), so every ending is a SystemExit with the code and a SIPCLIDidEnd line on the captured stdout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sipcli.commands.cli import cli

from sipcli.account import reset_singletons


@pytest.fixture
def invoke(tmp_path):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None, text: bool = False):
        reset_singletons()  # a process runs one command; here the singletons would outlive it
        try:
            result = runner.invoke(cli, ["--config-dir", str(tmp_path / "config"), *args], input=input, env=env,
                                   prog_name="sipcli")
        finally:
            reset_singletons()
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
            result.exc_info
        if text:
            # the human view's summary line (SIPCLIDidEnd as a sentence)
            assert f"-> exit {result.exit_code} (" in result.stdout.splitlines()[-1], result.stdout
            return result, []
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert lines and lines[-1]["name"] == "SIPCLIDidEnd", result.stdout
        assert lines[-1]["data"]["exit_code"] == result.exit_code
        return result, lines

    return invoke


def test_accounts_add_list_show_in_process(invoke, tmp_path):
    result, lines = invoke("accounts", "add", "alice@example.test", "--password-stdin", input="secret\n")
    assert result.exit_code == 0 and len(lines) == 1, result.stderr
    assert "added account alice@example.test" in result.stderr
    result, lines = invoke("accounts", "list")
    assert [line["data"]["id"] for line in lines[:-1]] == ["bonjour@local", "alice@example.test"]
    result, _ = invoke("accounts", "show", "alice@example.test", "--format", "text", text=True)
    assert result.exit_code == 0 and "***" in result.stdout and "secret" not in result.stdout


def test_usage_config_and_unknown_account_errors_in_process(invoke, tmp_path):
    result, lines = invoke("accounts", "add", "not-an-address")
    assert result.exit_code == 2 and lines[-1]["data"]["outcome"] == "usage"
    assert result.stderr.count("\n") == 1 and "sipcli accounts add:" in result.stderr
    result, lines = invoke("accounts", "show", "nobody@example.test")
    assert result.exit_code == 5 and lines[-1]["data"]["reason"] == "unknown account nobody@example.test"
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.json").write_text('{"accounts": []}')
    result, lines = invoke("accounts", "list")
    assert result.exit_code == 5 and "config.json" in lines[-1]["data"]["reason"]
    result, lines = invoke("call", "sip:x@127.0.0.1:9", "--timeout", "inf")
    assert result.exit_code == 2 and "--timeout" in result.stderr
