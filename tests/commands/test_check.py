"""`sipcli check FILE` and --junit: checks against kamailio, SIPp and sipcli listeners, JUnit files that a JUnit
XML schema accepts, several writers appending to one file, and bad check files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.audio import sine_wav
from tests.support.kamailio import USERS, registrar
from tests.support.sipp import start_sipp

SCHEMA = Path(__file__).parent.parent / "support" / "junit.xsd"
SIPCLI = [sys.executable, "-P", "-m", "sipcli.commands"]


def validate(path: Path) -> ET.Element:
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(path))
    return ET.parse(path).getroot()


def sipcli(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path / "config"), **(env or {})}
    return subprocess.run([*SIPCLI, *args], capture_output=True, text=True, env=environ, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and records[-1]["name"] == "SIPCLIDidEnd", result.stdout + result.stderr
    return records


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    server = registrar(tmp_path_factory.mktemp("kamailio"))
    yield server
    server.stop()


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in root.iter("testcase")}


@pytest.mark.peers
def test_check_file_with_five_checks_against_kamailio_sipp_and_sipcli(kamailio, tmp_path):
    pytest.importorskip("pjsua2")
    from tests.support.sipcli import SIPCLIProcess

    busy = start_sipp("uas_busy", tmp_path / "sipp")
    tone = sine_wav(tmp_path / "tone.wav", 1000, seconds=1, rate=8000)
    listener = SIPCLIProcess(tmp_path / "config", "listen", "--local-ip", "127.0.0.1", "--codec", "PCMU",
                             "--auto-answer", "--count", "2", "--play", str(tone))
    try:
        listener_uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
        (tmp_path / "checks.toml").write_text("""
[defaults]
timeout = 60

[[check]]
name = "register alice"
command = "register"
options = { from = "${ALICE}@example.test", password-env = "ALICE_PW", proxy = "${PROXY}" }

[[check]]
name = "a wrong password is refused"
command = "register"
options = { from = "${ALICE}@example.test", password-env = "WRONG_PW", proxy = "${PROXY}" }
exit_code = 1

[[check]]
name = "bob is busy"
command = "call"
args = ["${BUSY}"]
options = { local-ip = "127.0.0.1", expect-code = 486 }

[[check]]
name = "tone in PCMU"
command = "call"
args = ["${LISTENER}"]
[check.options]
local-ip = "127.0.0.1"
codec = ["PCMU"]
duration = 2
expect-codec = "PCMU"
expect-mos = 4
expect-max-loss = "1%"

[[check]]
name = "GSM expected"
command = "call"
args = ["${LISTENER}"]
options = { local-ip = "127.0.0.1", codec = "PCMU", duration = 0.5, expect-codec = "GSM" }
""")
        env = {"ALICE": "alice", "ALICE_PW": USERS["alice"], "WRONG_PW": "not-it", "PROXY": kamailio.proxy(),
               "BUSY": busy.uri, "LISTENER": listener_uri}
        junit = tmp_path / "reports" / "junit.xml"
        junit.parent.mkdir()
        result = sipcli(tmp_path, "check", str(tmp_path / "checks.toml"), "--parallel", "3", "--junit", str(junit),
                        env=env, cwd=tmp_path / "reports")
        assert listener.wait() == 0, listener.stderr()[-2000:]
    finally:
        listener.stop()
        busy.stop()
    assert result.returncode == 6, result.stderr[-3000:]
    records = lines(result)
    summary = records[-1]["data"]
    assert summary["checks"] == 5 and summary["passed"] == 4 and summary["failed"] == ["GSM expected"]
    ended = {r["data"]["check"]: r["data"] for r in records if r["name"] == "SIPCLICheckDidEnd"}
    assert set(ended) == {"register alice", "a wrong password is refused", "bob is busy", "tone in PCMU",
                          "GSM expected"}
    assert ended["a wrong password is refused"]["exit_code"] == 1 and ended["a wrong password is refused"]["passed"]
    assert ended["tone in PCMU"]["quality"]["codec"] == "PCMU" and ended["tone in PCMU"]["quality"]["mos"] >= 4
    assert ended["GSM expected"]["exit_code"] == 6 and not ended["GSM expected"]["passed"]
    relayed = [r for r in records if "check" in r]  # each check's own lines, prefixed by its name
    assert {r["check"] for r in relayed} == set(ended)
    assert any(r["check"] == "register alice" and r["name"] == "SIPAccountRegistrationDidSucceed" for r in relayed)
    assert USERS["alice"] not in result.stdout + result.stderr + junit.read_text()
    for name in ended:
        assert name in result.stderr  # the summary table (stderr: stdout is JSON lines)
    root = validate(junit)
    suite = root.find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "0")
    by_name = cases(root)
    failure = by_name["GSM expected"].find("failure")
    assert failure is not None and failure.get("type") == "media"
    assert "--expect-codec GSM" in failure.get("message") and "the codec was PCMU" in failure.get("message")
    assert "SIPSessionDidStart" in failure.text and "SIPCLIDidEnd" in failure.text  # the key events
    assert by_name["bob is busy"].find("failure") is None
    assert by_name["tone in PCMU"].get("classname") == "sipcli.check.call"
    assert not list(junit.parent.glob(".junit.xml.*"))  # no temporary file left


@pytest.mark.peers
def test_junit_on_register_adds_one_testcase_per_run(kamailio, tmp_path):
    pytest.importorskip("pjsua2")
    junit = tmp_path / "junit.xml"
    base = ["register", "--from", "alice@example.test", "--password-env", "PW", "--proxy", kamailio.proxy(),
            "--junit", str(junit)]
    ok = sipcli(tmp_path, *base, env={"PW": USERS["alice"]})
    refused = sipcli(tmp_path, *base, env={"PW": "wrong"})
    assert ok.returncode == 0 and refused.returncode == 1, ok.stderr + refused.stderr
    root = validate(junit)
    testcases = list(root.iter("testcase"))
    assert len(testcases) == 2 and all(case.get("classname") == "sipcli.register" for case in testcases)
    assert testcases[0].find("failure") is None and "SIPAccountRegistrationDidSucceed" in \
        testcases[0].findtext("system-out")
    failure = testcases[1].find("failure")
    assert failure is not None and failure.get("message").startswith("exit 1 (refused): registration failed: 401")
    assert "SIPAccountRegistrationDidFail" in failure.text
    assert float(testcases[1].get("time")) > 0
    assert USERS["alice"] not in junit.read_text()


def test_junit_parallel_writers_all_land_in_one_valid_file(tmp_path):
    junit = tmp_path / "junit.xml"
    writer = ("import sys; from pathlib import Path; from sipcli.commands.junit import TestCase, add_testcases\n"
              "n = int(sys.argv[1])\n"
              "for i in range(5):\n"
              "    add_testcases(Path(sys.argv[2]), [TestCase(f'w{n}-{i}', 'sipcli.call', 0.1, i % 2, 'media', "
              "'expectation failed', 'SIPSessionDidEnd \\x00 <&>')])\n")
    writers = [subprocess.Popen([sys.executable, "-c", writer, str(n), str(junit)]) for n in range(8)]
    assert all(process.wait(60) == 0 for process in writers)
    root = validate(junit)
    assert len(cases(root)) == 40
    assert root.get("tests") == "40" and root.get("failures") == "16"
    assert not list(tmp_path.glob(".junit.xml.*"))


def test_junit_foreign_file_is_a_usage_error_and_left_untouched(tmp_path):
    junit = tmp_path / "notes.xml"
    junit.write_text("not xml at all")
    result = sipcli(tmp_path, "register", "--from", "alice@example.test", "--proxy", "sip:127.0.0.1:9",
                    "--junit", str(junit))
    assert result.returncode == 2 and "--junit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert junit.read_text() == "not xml at all"


def test_check_text_format_prefixes_lines_and_prints_the_table(tmp_path):
    (tmp_path / "checks.toml").write_text("""
[[check]]
name = "accounts"
command = "accounts"
args = ["list"]

[[check]]
name = "expected to fail"
command = "accounts"
args = ["show", "nobody@example.test"]
exit_code = 5
""")
    result = sipcli(tmp_path, "check", str(tmp_path / "checks.toml"), "--format", "text", "--parallel", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[accounts] " in out and "[expected to fail] " in out
    assert "SIPCLICheckDidEnd" in out and "check" in out and "result" in out  # the table's header
    assert "done: ok: " in out.strip().splitlines()[-1]  # the human view's summary (issue 8 item 7)


@pytest.mark.parametrize(("content", "env", "message"), [
    ('[[check]]\nname = "x"\ncommand = "call"\nargs = ["${NOT_SET_ANYWHERE}"]\n', {}, "NOT_SET_ANYWHERE is not set"),
    ("[[check]\n", {}, "not valid TOML"),
    ('[[check]]\nname = "x"\ncommand = "rm"\n', {}, "command must be one of"),
    ('[[check]]\nname = "x"\ncommand = "check"\n', {}, "command must be one of"),
    ('[[check]]\ncommand = "accounts"\noptions = { "--evil" = 1 }\n', {}, "is not an option name"),
    ('[[check]]\nname = "a"\ncommand = "accounts"\n[[check]]\nname = "a"\ncommand = "accounts"\n', {},
     "two checks have this name"),
    ("title = 'no checks'\n", {}, "expected [[check]] entries"),
    ('[[check]]\ncommand = "accounts"\ntimeout = -1\n', {}, "must not be negative"),
])
def test_bad_check_files_are_configuration_errors(tmp_path, content, env, message):
    (tmp_path / "checks.toml").write_text(content)
    result = sipcli(tmp_path, "check", str(tmp_path / "checks.toml"), env=env)
    assert result.returncode == 5, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert lines(result)[-1]["data"]["outcome"] == "config"


def test_missing_check_file_is_a_configuration_error(tmp_path):
    result = sipcli(tmp_path, "check", str(tmp_path / "absent.toml"))
    assert result.returncode == 5 and "absent.toml" in result.stderr


@pytest.mark.peers
def test_sigint_interrupts_the_running_checks_first(run, tmp_path):
    pytest.importorskip("pjsua2")
    (tmp_path / "checks.toml").write_text("""
[[check]]
name = "waits"
command = "listen"
options = { local-ip = "127.0.0.1", auto-answer = true }
""")
    check = run("check", str(tmp_path / "checks.toml"))
    check.wait_for("SIPCLIListenDidStart")
    check.signal()
    assert check.wait() == 130
    child_end = [e for e in check.find("SIPCLIDidEnd") if e.get("check") == "waits"]
    assert child_end and child_end[0]["data"]["outcome"] == "interrupted"  # the check tore down first
    assert check.summary["outcome"] == "interrupted"
