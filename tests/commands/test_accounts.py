"""`sipcli accounts`, run as the real console script against a temporary --config-dir."""

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

SIPCLI = str(Path(sys.executable).with_name("sipcli")) if Path(sys.executable).with_name("sipcli").exists() \
    else shutil.which("sipcli")
PASSWORD = "Sup3r-s3cret-pw"


@pytest.fixture
def config_dir(tmp_path):
    return tmp_path / "config"


@pytest.fixture
def run(config_dir):
    """Run `sipcli --config-dir DIR accounts ARGS`; assert it never prints a traceback or the password."""

    def run(*args, stdin="", env=None, check=None):
        result = subprocess.run([SIPCLI, "--config-dir", str(config_dir), "accounts", *args], input=stdin,
                                capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})})
        assert "Traceback" not in result.stderr, result.stderr
        assert PASSWORD not in result.stdout and PASSWORD not in result.stderr
        if check is not None:
            assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
        return result

    return run


def events(result) -> list[dict]:
    """stdout as JSON lines, the last one SIPCLIDidEnd with the process' exit code."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and lines[-1]["name"] == "SIPCLIDidEnd", result.stdout
    assert lines[-1]["data"]["exit_code"] == result.returncode
    return lines


def rows(result) -> list[dict]:
    """The SIPCLIAccount lines' data (list: one per account; show: one)."""
    lines = events(result)
    assert all(line["name"] == "SIPCLIAccount" for line in lines[:-1]), result.stdout
    return [line["data"] for line in lines[:-1]]


def one_error_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert len(events(result)) == 1  # only the summary


def test_empty_configuration_lists_the_bonjour_account(run, config_dir):
    result = run("list", "--format", "text", check=0)
    assert "bonjour@local" in result.stdout and "ID" in result.stdout
    assert [row["id"] for row in rows(run("list", check=0))] == ["bonjour@local"]
    assert not (config_dir / "config.json").exists()  # listing writes nothing


def test_add_show_list_with_password_from_stdin(run, config_dir):
    result = run("add", "alice@example.test", "--password-stdin", "--display-name", "Alice Ünicode",
                 "--proxy", "sip:127.0.0.1:5070;transport=tcp", stdin=PASSWORD + "\n", check=0)
    assert len(events(result)) == 1 and result.stderr.strip() == "added account alice@example.test (default)"
    config_file = config_dir / "config.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    stored = json.loads(config_file.read_text())
    assert stored["accounts"]["alice@example.test"]["auth"]["password"] == PASSWORD  # stored, never shown

    show = run("show", "alice@example.test", "--format", "text", check=0)
    assert "***" in show.stdout and "sip:127.0.0.1:5070;transport=tcp" in show.stdout
    assert "Alice Ünicode" in show.stdout and "sip.register_interval" in show.stdout

    [shown] = rows(run("show", "alice@example.test", check=0))
    assert shown["id"] == "alice@example.test" and shown["default"] is True
    assert shown["settings"]["auth.password"] == "***"
    assert shown["settings"]["sip.transport_list"] == ["udp", "tcp", "tls"]

    listed = rows(run("list", "--json", check=0))
    assert {row["id"]: row["default"] for row in listed} == {"bonjour@local": False, "alice@example.test": True}
    alice = next(row for row in listed if row["id"] == "alice@example.test")
    assert alice["outbound_proxy"] == "sip:127.0.0.1:5070;transport=tcp" and alice["display_name"] == "Alice Ünicode"


def test_add_with_password_env_and_default(run, config_dir):
    run("add", "alice@example.test", stdin="", check=0)
    run("add", "bob@example.test", "--password-env", "BOB_PW", "--default", env={"BOB_PW": PASSWORD}, check=0)
    stored = json.loads((config_dir / "config.json").read_text())
    assert stored["accounts"]["bob@example.test"]["auth"]["password"] == PASSWORD
    assert "password" not in stored["accounts"]["alice@example.test"].get("auth", {})
    assert [row["id"] for row in rows(run("list", check=0)) if row["default"]] == ["bob@example.test"]
    table = run("list", "--format", "text", check=0).stdout
    assert any(line.startswith("*") and "bob@example.test" in line for line in table.splitlines())


def test_add_prompts_for_a_hidden_password_on_a_terminal(config_dir):
    child = pexpect.spawn(SIPCLI, ["--config-dir", str(config_dir), "accounts", "add", "carol@example.test"],
                          encoding="utf-8", timeout=20)
    try:
        child.expect("Password for carol@example.test")
        child.sendline(PASSWORD)
        child.expect(pexpect.EOF)
        assert PASSWORD not in child.before  # not echoed
    finally:
        child.close()
    assert child.exitstatus == 0
    stored = json.loads((config_dir / "config.json").read_text())
    assert stored["accounts"]["carol@example.test"]["auth"]["password"] == PASSWORD


@pytest.mark.parametrize(("args", "fragment"), [
    (("add", "alice"), "'alice'"),
    (("add", "a@"), "'a@'"),
    (("add", "bonjour@local"), "bonjour@local"),
    (("add", "c@example.test", "--proxy", "sip:proxy;transport=sctp"), "--proxy"),
    (("add", "c@example.test", "--password-env", "SIPCLI_TEST_UNSET_VAR"), "SIPCLI_TEST_UNSET_VAR"),
    (("add", "c@example.test", "--password-env", "X", "--password-stdin"), "only one"),
    (("show", "alice"), "'alice'"),
    (("set", "alice@example.test", "sip.nope=1"), "sip.nope"),
    (("set", "alice@example.test", "sip.register_interval=soon"), "sip.register_interval"),
    (("set", "alice@example.test", "sip.outbound_proxy=sip:x:99999"), "sip.outbound_proxy"),
    (("set", "alice@example.test", "novalue"), "novalue"),
    (("add", "alice@example.test", "--password-stdin"), "already exists"),
    (("delete", "bonjour@local"), "bonjour@local"),
])
def test_usage_errors_exit_2_with_one_line(run, config_dir, args, fragment):
    run("add", "alice@example.test", check=0)
    before = (config_dir / "config.json").read_bytes()
    result = run(*args, check=2)
    one_error_line(result, fragment)
    assert (config_dir / "config.json").read_bytes() == before


@pytest.mark.parametrize("args", [("show", "nobody@example.test"), ("set", "nobody@example.test", "enabled=no"),
                                  ("delete", "nobody@example.test"), ("default", "nobody@example.test")])
def test_unknown_account_exits_5(run, args):
    one_error_line(run(*args, check=5), "nobody@example.test")


def test_set_dotted_values_and_default_reset(run, config_dir):
    run("add", "alice@example.test", check=0)
    run("set", "alice@example.test", "sip.outbound_proxy=127.0.0.1:5080;transport=tls", "registration.enabled=no",
        "rtp.srtp_encryption=mandatory", "sip.transport_list=tcp,tls", "display_name=Al", check=0)
    settings = rows(run("show", "alice@example.test", check=0))[0]["settings"]
    assert settings["sip.outbound_proxy"] == "sip:127.0.0.1:5080;transport=tls"
    assert settings["registration.enabled"] is False and settings["rtp.srtp_encryption"] == "mandatory"
    assert settings["sip.transport_list"] == ["tcp", "tls"] and settings["display_name"] == "Al"
    run("set", "alice@example.test", "registration.enabled=DEFAULT", "sip.outbound_proxy=", check=0)
    settings = rows(run("show", "alice@example.test", check=0))[0]["settings"]
    assert settings["registration.enabled"] is True and settings["sip.outbound_proxy"] is None
    stored = json.loads((config_dir / "config.json").read_text())["accounts"]["alice@example.test"]
    assert "registration" not in stored  # DEFAULT removes the explicit value
    run("set", "alice@example.test", f"auth.password={PASSWORD}", check=0)
    assert rows(run("show", "alice@example.test", check=0))[0]["settings"]["auth.password"] == "***"
    run("set", "bonjour@local", "display_name=P2P", check=0)
    assert "P2P" in run("show", "bonjour@local", "--format", "text", check=0).stdout


def test_delete_and_default(run):
    run("add", "alice@example.test", check=0)
    run("add", "bob@example.test", check=0)
    run("default", "bob@example.test", check=0)
    run("delete", "bob@example.test", check=0)
    listed = rows(run("list", check=0))
    assert [row["id"] for row in listed] == ["bonjour@local", "alice@example.test"]
    assert [row["id"] for row in listed if row["default"]] == ["alice@example.test"]
    run("default", "bonjour@local", check=0)
    assert [row["id"] for row in rows(run("list", check=0)) if row["default"]] == ["bonjour@local"]


@pytest.mark.parametrize("args", [("list",), ("list", "--json"), ("show", "alice@example.test"),
                                  ("add", "bob@example.test", "--password-stdin"),
                                  ("set", "alice@example.test", "enabled=no"), ("delete", "alice@example.test"),
                                  ("default", "alice@example.test")])
def test_corrupt_configuration_exits_5_and_is_left_untouched(run, config_dir, args):
    config_dir.mkdir(mode=0o700)
    corrupt = b'{"accounts": {"alice@example.test": {'
    (config_dir / "config.json").write_bytes(corrupt)
    one_error_line(run(*args, stdin=PASSWORD + "\n", check=5), "config.json", "corrupt")
    assert (config_dir / "config.json").read_bytes() == corrupt


def test_invalid_setting_in_configuration_exits_5(run, config_dir):
    config_dir.mkdir(mode=0o700)
    (config_dir / "config.json").write_text(
        '{"accounts": {"alice@example.test": {"registration": {"enabled": "maybe"}}}}')
    one_error_line(run("list", check=5), "registration.enabled")


def test_accounts_never_import_the_sip_engine(config_dir):
    code = textwrap.dedent(f"""
        import sys
        from sipcli.account import reset_singletons
        from sipcli.commands.cli import cli as main
        for args in (["--help"], ["accounts", "list"], ["accounts", "add", "x@example.test", "--password-stdin"]):
            try:
                main(["--config-dir", {str(config_dir)!r}, *args], prog_name="sipcli")
            except SystemExit as e:
                assert e.code in (0, None), (args, e.code)
            reset_singletons()
        assert "pjsua2" not in sys.modules, "pjsua2 was imported"
        assert "zeroconf" not in sys.modules, "zeroconf was imported"
    """)
    result = subprocess.run([sys.executable, "-c", code], input="pw\n", capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_help_lists_every_subcommand():
    """`sipcli --help` through the installed console script (its start-up time: bench/startup.py)."""
    result = subprocess.run([SIPCLI, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for name in ("accounts", "register", "call", "listen", "record", "chat", "message", "check"):
        assert name in result.stdout


DEEP = "[" * 100_000 + "]" * 100_000
WRONG_SHAPES = {
    "accounts-array": '{"accounts": []}',
    "null": "null",
    "top-array": "[]",
    "deep": DEEP,
    "deep-in-account": '{"accounts": {"alice@example.test": {"sip": ' + "{\"x\": " * 50 + "1" + "}" * 50 + "}}}",
    "account-number": '{"accounts": {"alice@example.test": 5}}',
    "group-number": '{"accounts": {"alice@example.test": {"sip": 5}}}',
    "setting-type": '{"accounts": {"alice@example.test": {"enabled": "yes"}}}',
    "general-array": '{"general": []}',
    "default-number": '{"general": {"default_account": 5}}',
    "version-text": '{"version": "x"}',
}


@pytest.mark.parametrize("content", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
def test_configuration_of_the_wrong_shape_exits_5_untouched_with_one_line(tmp_path, content):
    """Every command that reads the configuration: exit 5, one stderr line, SIPCLIDidEnd config, file untouched."""
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    path = config / "config.json"
    path.write_text(content)
    path.chmod(0o600)
    before = (path.stat().st_mtime_ns, sorted(p.name for p in config.iterdir()))
    commands = [("accounts", "list"), ("accounts", "show", "alice@example.test"),
                ("accounts", "add", "bob@example.test", "--password-env", "PW"),
                ("accounts", "set", "alice@example.test", "enabled=no"), ("accounts", "default", "alice@example.test"),
                ("register", "--account", "alice@example.test"),
                ("call", "sip:x@127.0.0.1:9", "--account", "alice@example.test"), ("call", "sip:x@127.0.0.1:9")]
    for args in commands:
        result = subprocess.run([SIPCLI, "--config-dir", str(config), *args], capture_output=True, text=True,
                                timeout=30, cwd=tmp_path, env={**os.environ, "PW": PASSWORD})
        assert result.returncode == 5, (args, result.returncode, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert "config.json" in lines[0] or "accounts/alice@example.test" in lines[0], (args, lines)
        summary = events(result)[-1]["data"]
        assert (summary["outcome"], summary["exit_code"]) == ("config", 5)
    assert path.read_text() == content
    assert (path.stat().st_mtime_ns, sorted(p.name for p in config.iterdir())) == before


def test_concurrent_adds_of_the_same_id_one_wins_the_other_is_told(tmp_path):
    """Two processes add the same account at once, 20 rounds: exactly one exits 0, the other exits 2 saying it
    already exists, and the stored account is the winner's (no lost update)."""
    for round_number in range(20):
        config = tmp_path / f"round{round_number}"
        processes = [subprocess.Popen([SIPCLI, "--config-dir", str(config), "accounts", "add", "alice@example.test",
                                       "--password-env", "PW", "--display-name", name], cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "PW": f"{PASSWORD}-{name}"})
                     for name in ("first", "second")]
        results = [(process.wait(30), process.stderr.read()) for process in processes]
        for process in processes:
            process.stdout.close()
            process.stderr.close()
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], (round_number, results)
        loser_stderr = next(stderr for code, stderr in results if code == 2)
        assert "already exists" in loser_stderr and len(loser_stderr.strip().splitlines()) == 1
        winner = ("first", "second")[[code for code, _ in results].index(0)]
        stored = json.loads((config / "config.json").read_text())["accounts"]["alice@example.test"]
        assert stored["display_name"] == winner and stored["auth"]["password"] == f"{PASSWORD}-{winner}"


def test_add_without_any_password_warns_on_stderr(run, config_dir):
    result = run("add", "nopw@example.test", stdin="", check=0)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "warning" in lines[0] and "no password" in lines[0], result.stderr
    with_password = run("add", "pw@example.test", "--password-env", "PW", env={"PW": PASSWORD}, check=0)
    assert "warning" not in with_password.stderr


def test_help_says_where_the_password_is_stored(run):
    text = " ".join(run("add", "--help", check=0).stdout.split())
    assert "stored in config.json (mode 0600" in text and "once" in text
