"""FileStorage and MemoryStorage: format, permissions, atomicity (kill -9 mid-save), corrupt files left alone."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from sipcli.configuration import ConfigurationError, SettingsStore
from sipcli.configuration.storage import CONFIG_FILENAME, FileStorage, MemoryStorage


def test_missing_file_loads_empty_and_save_creates_private_files(tmp_path):
    directory = tmp_path / "new" / "sipcli"
    storage = FileStorage(directory)
    assert storage.load() == {}
    storage.save({"general": {"user_agent": "ü"}})
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(storage.path.stat().st_mode) == 0o600
    text = storage.path.read_text(encoding="utf-8")
    assert text.endswith("\n") and '"user_agent": "ü"' in text  # human readable, indented, not escaped
    assert json.loads(text) == {"general": {"user_agent": "ü"}, "version": 1}
    assert storage.load()["general"] == {"user_agent": "ü"}
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


def test_save_keeps_0600_even_if_file_was_wider(tmp_path):
    storage = FileStorage(tmp_path)
    storage.save({})
    storage.path.chmod(0o644)
    storage.load()
    storage.save({"a": 1})
    assert stat.S_IMODE(storage.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b'{"version": 99}'])
def test_corrupt_file_is_reported_and_never_overwritten(tmp_path, content):
    path = tmp_path / CONFIG_FILENAME
    path.write_bytes(content)
    storage = FileStorage(tmp_path)
    with pytest.raises(ConfigurationError, match=str(path)):
        storage.load()
    with pytest.raises(ConfigurationError):
        storage.save({"general": {}})
    with pytest.raises(ConfigurationError):
        SettingsStore(storage)
    assert path.read_bytes() == content


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_reported(tmp_path):
    path = tmp_path / CONFIG_FILENAME
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(ConfigurationError, match="cannot read"):
        FileStorage(tmp_path).load()


def test_unreadable_path_is_reported(tmp_path):
    (tmp_path / CONFIG_FILENAME).mkdir()  # a directory where the file should be: reading fails for root too
    with pytest.raises(ConfigurationError, match="cannot read"):
        FileStorage(tmp_path).load()


def test_unwritable_directory_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="cannot"):
        FileStorage(blocker / "sub").save({})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_directory_is_a_configuration_error(tmp_path):
    storage = FileStorage(tmp_path)
    storage.save({"a": 1})
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="cannot write"):
            storage.save({"a": 2})
    finally:
        tmp_path.chmod(0o700)
    assert storage.load() == {"a": 1, "version": 1}


def test_memory_storage_is_isolated_and_json_strict():
    storage = MemoryStorage({"a": {"b": 1}})
    data = storage.load()
    data["a"]["b"] = 2
    assert storage.load() == {"a": {"b": 1}}
    with pytest.raises(TypeError):
        storage.save({"x": object()})
    with storage.lock():
        storage.save({"c": [1]})
    assert storage.load() == {"c": [1]}


WRITER = textwrap.dedent("""
    import sys
    from sipcli.configuration import SettingsStore
    from sipcli.configuration.storage import FileStorage

    storage = FileStorage(sys.argv[1])
    store = SettingsStore(storage)
    generation = storage.load().get("bulk", {}).get("generation", 0)  # each writer goes on from the last save
    while True:
        generation += 1
        print(f"saving {generation}", flush=True)
        store.commit(("bulk",), {"generation": generation, "items": [generation] * 300000})
        print(f"saved {generation}", flush=True)
""")


def _wait_for_temp_file(directory, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if any(name.endswith(".tmp") for name in os.listdir(directory)):
                return True
    return False


def test_kill_9_during_save_leaves_a_complete_previous_version(tmp_path):
    """SIGKILL a real writer while its temp file is being written (a ~2.7 MB config), several times."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    config_dir = tmp_path / "cfg"
    last_generation = 0
    killed_mid_write = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(config_dir)], stdout=subprocess.PIPE, text=True)
        try:
            saved = 0
            for line in proc.stdout:
                word, number = line.split()
                if word == "saved":
                    saved = int(number)
                elif saved and _wait_for_temp_file(config_dir, time.monotonic() + 5):
                    proc.send_signal(signal.SIGKILL)
                    killed_mid_write += 1
                    break
        finally:
            proc.kill()
            proc.wait(timeout=10)
            # a starved test may not have read every line the writer printed before it died: read them now
            saved = max([saved] + [int(number) for word, number in map(str.split, proc.stdout) if word == "saved"])
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        data = FileStorage(config_dir).load()  # parses: never a torn file
        generation = data["bulk"]["generation"]
        assert generation in (saved, saved + 1)  # the last complete save, or the one that won the race
        assert generation >= last_generation
        assert data["bulk"]["items"] == [generation] * 300000
        last_generation = generation
        for leftover in config_dir.glob("*.tmp"):
            leftover.unlink()
    assert killed_mid_write == 4
