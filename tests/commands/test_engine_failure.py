"""The pjsua thread never dies silently: a failure on it ends the command through SIPEngineDidFail, exit 4."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")

# Loaded by the sipcli process (PYTHONPATH): once the trigger file exists, the pjsua thread's event loop raises.
SITECUSTOMIZE = '''
import os
import pathlib

from sipcli.pjsua import engine as _engine

_trigger = pathlib.Path(os.environ["SIPCLI_TEST_BREAK_ENGINE"])
_serve = _engine.Engine._serve


def _breaking_serve(self):
    endpoint = self.endpoint
    handle_events = endpoint.libHandleEvents

    def handle(ms):
        if _trigger.exists():
            del endpoint.libHandleEvents  # the shutdown that follows pumps events normally
            raise RuntimeError("forced by the test")
        return handle_events(ms)

    endpoint.libHandleEvents = handle
    _serve(self)


_engine.Engine._serve = _breaking_serve
'''


def test_listen_exits_4_with_sip_engine_did_fail_when_the_pjsua_thread_breaks(run, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    trigger = tmp_path / "break-now"
    env = {"PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
           "SIPCLI_TEST_BREAK_ENGINE": str(trigger)}
    listener = run("listen", *LOOPBACK, env=env)
    listener.wait_for("SIPCLIListenDidStart", 15)
    trigger.touch()
    code = listener.wait(15)
    names = listener.names()
    assert code == 4, listener.stderr()[-2000:]
    failure = listener.wait_for("SIPEngineDidFail", 0)["data"]
    assert failure["reason"] == "the pjsua thread failed: RuntimeError('forced by the test')"
    assert names.index("SIPEngineDidFail") < names.index("SIPApplicationDidEnd") < names.index("SIPCLIDidEnd")
    assert listener.summary["exit_code"] == 4 and "forced by the test" in listener.summary["reason"]
    assert "Assert" not in listener.stderr() and "core dumped" not in listener.stderr()
