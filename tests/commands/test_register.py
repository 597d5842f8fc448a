"""`sipcli register` as a user runs it (a subprocess) against a real kamailio on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.kamailio import registrar
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

SIPCLI = [sys.executable, "-m", "sipcli.commands"]
PASSWORD = "alice-secret"


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 / example.test, made with the openssl CLI."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    quiet = {"check": True, "capture_output": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=sipcli test CA", "-keyout", ca_key, "-out", ca_cert], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=example.test",
                    "-keyout", key, "-out", csr], **quiet)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:example.test\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", directory / "san.ext", "-out", cert], **quiet)
    return ca_cert, cert, key


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory, tls_files):
    _, cert, key = tls_files
    server = registrar(tmp_path_factory.mktemp("kamailio"), tls_cert=cert, tls_key=key)
    yield server
    server.stop()


@pytest.fixture
def config_dir(tmp_path):
    return tmp_path / "config"


def sipcli(config_dir: Path, *args: str, password: str | None = PASSWORD, timeout: float = 30,
           log_file: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(config_dir), "TEST_PASSWORD": password or ""}
    prefix = ["--log-file", str(log_file), "-vv"] if log_file else []
    result = subprocess.run([*SIPCLI, *prefix, "register", *args], capture_output=True, text=True, env=env,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode not in (134, -6), f"aborted:\n{result.stderr}"
    return result


def adhoc(kamailio, transport: str = "udp", user: str = "alice") -> list[str]:
    return ["--from", f"{user}@example.test", "--password-env", "TEST_PASSWORD", "--proxy", kamailio.proxy(transport)]


def events(result: subprocess.CompletedProcess) -> list[dict]:
    """Every stdout line is one JSON object (anything else fails the test), the last one SIPCLIDidEnd."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and lines[-1]["name"] == "SIPCLIDidEnd", result.stdout + result.stderr
    assert all({"v", "time", "name", "sender", "data"} <= line.keys() for line in lines)
    return lines


def named(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line["name"] == name]


def assert_no_password(result: subprocess.CompletedProcess, *extra: str, password: str = PASSWORD) -> None:
    for text in (result.stdout, result.stderr, *extra):
        assert password not in text


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_and_unregister(kamailio, tls_files, config_dir, tmp_path, transport):
    ca_cert = tls_files[0]
    log_file = tmp_path / "sipcli.log"
    args = adhoc(kamailio, transport) + (["--tls-ca", str(ca_cert)] if transport == "tls" else [])
    result = sipcli(config_dir, *args, "--trace", log_file=log_file)
    assert result.returncode == 0, result.stderr
    lines = events(result)
    succeeded = named(lines, "SIPAccountRegistrationDidSucceed")
    assert len(succeeded) == 1
    data = succeeded[0]["data"]
    assert data["code"] == 200 and data["expires"] > 0 and data["registration"].startswith("registration/")
    assert data["contact_uri"] in data["contact_uri_list"]
    assert f"transport={transport}" in data["contact_uri"] or transport == "udp"
    ended = named(lines, "SIPAccountRegistrationDidEnd")
    assert ended and ended[0]["data"]["code"] == 200
    traces = named(lines, "SIPEngineSIPTrace")
    assert any(t["data"]["direction"] == "outgoing" and t["data"]["data"].startswith("REGISTER ") for t in traces)
    assert any(t["data"]["direction"] == "incoming" and t["data"]["data"].startswith("SIP/2.0 401") for t in traces)
    assert all(t["data"]["transport"] == transport for t in traces)
    assert lines[-1]["data"] == {"outcome": "ok", "exit_code": 0, "reason": "registered and unregistered",
                                 "registrations": 1}
    assert "alice@example.test" not in kamailio.location()
    assert_no_password(result, log_file.read_text())
    assert not config_dir.exists() or "alice" not in "".join(p.read_text() for p in config_dir.glob("*"))


def test_tls_verification_is_on_by_default(kamailio, config_dir):
    result = sipcli(config_dir, *adhoc(kamailio, "tls"))
    assert result.returncode == 4, result.stderr
    failed = named(events(result), "SIPAccountRegistrationDidFail")
    assert failed and "code" not in failed[0]["data"]
    assert failed[0]["data"]["next_route"] is None and failed[0]["data"]["delay"] > 0


def test_wrong_password_is_refused(kamailio, config_dir):
    result = sipcli(config_dir, *adhoc(kamailio), password="not-the-password")
    assert result.returncode == 1, result.stderr
    lines = events(result)
    assert named(lines, "SIPAccountRegistrationDidFail")[0]["data"]["code"] == 401
    assert lines[-1]["data"]["code"] == 401
    assert_no_password(result, password="not-the-password")


def test_unknown_user_is_refused(kamailio, config_dir):
    result = sipcli(config_dir, *adhoc(kamailio, user="carol"))
    assert result.returncode == 1
    assert named(events(result), "SIPAccountRegistrationDidFail")[0]["data"]["code"] == 404


def test_registrar_that_never_answers_times_out(config_dir):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        port = black_hole.getsockname()[1]
        started = time.monotonic()
        result = sipcli(config_dir, "--from", "alice@example.test", "--password-env", "TEST_PASSWORD",
                        "--proxy", f"sip:127.0.0.1:{port}", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert events(result)[-1]["data"]["outcome"] == "timeout"
    assert elapsed < 5


def test_connection_refused_is_a_network_failure(config_dir):
    port = free_port("tcp")
    result = sipcli(config_dir, "--from", "alice@example.test", "--password-env", "TEST_PASSWORD",
                    "--proxy", f"sip:127.0.0.1:{port};transport=tcp")
    assert result.returncode == 4, result.stderr
    failed = named(events(result), "SIPAccountRegistrationDidFail")[0]["data"]
    assert "code" not in failed and failed["reason"]


def test_refresh_with_short_expires(kamailio, config_dir):
    result = sipcli(config_dir, *adhoc(kamailio, "tcp"), "--expires", "2", "--duration", "4.5")
    assert result.returncode == 0, result.stderr
    succeeded = named(events(result), "SIPAccountRegistrationDidSucceed")
    assert len(succeeded) >= 2
    assert all(line["data"]["expires"] <= 2 for line in succeeded)


def test_sigint_while_registered_unregisters_and_exits_130(kamailio, config_dir):
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(config_dir), "TEST_PASSWORD": PASSWORD}
    process = subprocess.Popen([*SIPCLI, "register", *adhoc(kamailio, "tcp"), "--duration", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stdout:
            if json.loads(line)["name"] == "SIPAccountRegistrationDidSucceed":
                break
        assert "alice@example.test" in kamailio.location() or "AoR: alice" in kamailio.location()
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    lines = [json.loads(line) for line in rest.splitlines()]
    assert named(lines, "SIPAccountRegistrationDidEnd")[0]["data"]["code"] == 200
    assert lines[-1]["name"] == "SIPCLIDidEnd" and lines[-1]["data"]["exit_code"] == 130
    assert "AoR: alice" not in kamailio.location()


@pytest.mark.parametrize("args, message", [
    (["--from", "not-an-address"], "--from"),
    (["--from", "alice@example.test", "--proxy", "sip:127.0.0.1;transport=sctp"], "--proxy"),
    (["--account", "a@b.test", "--from", "alice@example.test"], "exclusive"),
])
def test_usage_errors_are_one_line(config_dir, args, message):
    result = sipcli(config_dir, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert [(e["name"], e["data"]["exit_code"]) for e in events(result)] == [("SIPCLIDidEnd", 2)]  # nothing started


def test_unknown_account_is_a_config_error(config_dir):
    result = sipcli(config_dir, "--account", "nobody@example.test")
    assert result.returncode == 5
    assert events(result)[-1]["data"]["outcome"] == "config"
    assert len(result.stderr.strip().splitlines()) == 1 and "nobody@example.test" in result.stderr


def test_corrupt_config_is_a_config_error(config_dir):
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{not json")
    result = sipcli(config_dir, "--account", "alice@example.test")
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr


def test_configured_account(kamailio, config_dir):
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(config_dir), "TEST_PASSWORD": PASSWORD}
    subprocess.run([*SIPCLI, "accounts", "add", "alice@example.test", "--password-env", "TEST_PASSWORD",
                    "--proxy", kamailio.proxy("udp")], check=True, capture_output=True, env=env, timeout=30)
    result = sipcli(config_dir, "--account", "alice@example.test")
    assert result.returncode == 0, result.stderr
    assert named(events(result), "SIPAccountRegistrationDidSucceed")
    assert_no_password(result)


def test_without_pjsua2_one_line_and_exit_4(config_dir, tmp_path):
    (tmp_path / "pjsua2.py").write_text("raise ImportError('no wheel for this platform')\n")
    env = {**os.environ, "SIPCLI_CONFIG_DIR": str(config_dir), "TEST_PASSWORD": PASSWORD,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([*SIPCLI, "register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD",
                             "--proxy", "sip:127.0.0.1:9"], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "pjsua2" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["data"]["outcome"] == "network"
