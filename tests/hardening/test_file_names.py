"""A caller chooses its From user: `listen --record DIR` must write inside DIR whatever that user says."""

from __future__ import annotations

import os

import pytest

from sipcli.filenames import MAX_TOKEN_LENGTH, path_in, safe_token

LOOPBACK = ("--local-ip", "127.0.0.1")
# From users a hostile caller may send (valid SIP URI user syntax, escapes included).
NASTY_USERS = ["../../../../elsewhere/evil", "/", "..", "....", "%2e%2e%2f%2e%2e%2fescaped", "%00nul%00",
               "a" * 300, "%C3%BCnic%C3%B8de-%E2%80%AE", ".hidden", "-rf"]


@pytest.mark.parametrize("value", [*NASTY_USERS, "\x00", "..\\..\\x", "ü", "日本語", " ", None, "", "a/../../b"])
def test_safe_token_names_only_a_plain_file(tmp_path, value):
    token = safe_token(value)
    assert token and len(token) <= MAX_TOKEN_LENGTH
    assert not token.startswith((".", "-")) and ".." not in token
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert os.path.dirname(path_in(tmp_path, f"x-{token}.wav")) == str(tmp_path)


def test_path_in_refuses_a_name_that_leaves_the_directory(tmp_path):
    for name in ("../x.wav", "a/b.wav", "/etc/x.wav", "..", ""):
        with pytest.raises(ValueError):
            path_in(tmp_path, name)


def test_listen_record_writes_every_caller_inside_its_directory(run, sipp, tmp_path):
    pytest.importorskip("pjsua2")
    base = tmp_path / "a" / "b" / "c" / "d"
    record_dir = base / "calls"
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", str(len(NASTY_USERS)), "--record",
                   str(record_dir))
    port = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"].rsplit(":", 1)[1]
    for user in NASTY_USERS:
        uac = sipp("uac_from_user", f"127.0.0.1:{port}", extra=["-key", "from_user", user])
        assert uac.wait(15) == 0, (user, uac.output()[-2000:])
    assert listener.wait(20) == 0, listener.stderr()[-2000:]
    recorded = [e["data"]["file_name"] for e in listener.find("SIPSessionDidStartRecordingAudio")]
    assert len(recorded) == len(NASTY_USERS), listener.names()
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".wav")
    assert files == sorted(record_dir.iterdir()), files  # nothing anywhere else, no subdirectory in DIR
    assert len(files) == len(NASTY_USERS)
    assert all(os.path.dirname(name) == str(record_dir) for name in recorded)
    assert all(len(p.name) <= MAX_TOKEN_LENGTH * 2 + 8 for p in files)
    assert not (tmp_path / "elsewhere").exists() and not (base.parent / "elsewhere").exists()
