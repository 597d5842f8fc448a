"""The engine: one pjsua thread, commands in, plain data out, fast clean stop, stdout untouched."""

import asyncio
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from sipcli.notification import NotificationCenter
from sipcli.pjsua import Engine, EngineSettings, EngineStoppedError, SIPCoreError

pytest.importorskip("pjsua2")


class Recorder:
    def __init__(self):
        self.names = []

    def handle_notification(self, notification):
        if notification.name.startswith("SIPEngine"):
            self.names.append(notification.name)


@pytest.fixture
def recorder():
    recorder = Recorder()
    NotificationCenter().add_observer(recorder)
    yield recorder
    NotificationCenter().purge_observer(recorder)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_start_run_stop(recorder):
    async def scenario():
        engine = Engine()
        await engine.start(EngineSettings(local_ip="127.0.0.1", tls_port=None))
        assert engine.is_running
        assert set(engine.transports) == {"udp", "tcp"}
        assert all(host == "127.0.0.1" and port > 0 for host, port in engine.transports.values())
        thread_name = await engine.run(lambda: threading.current_thread().name)
        answer = await engine.run(lambda a, b: a + b, 2, 3)
        hooks = []
        engine.add_shutdown_hook(lambda: hooks.append(("first", threading.current_thread().name)))
        engine.add_shutdown_hook(lambda: hooks.append(("second", threading.current_thread().name)))
        started = time.monotonic()
        await engine.stop()
        return thread_name, answer, hooks, time.monotonic() - started

    thread_name, answer, hooks, stop_time = run(scenario())
    assert thread_name == "pjsua" and answer == 5
    assert hooks == [("second", "pjsua"), ("first", "pjsua")]  # LIFO, on the pjsua thread
    assert stop_time < 0.5
    assert recorder.names == ["SIPEngineWillStart", "SIPEngineDidStart", "SIPEngineWillEnd", "SIPEngineDidEnd"]
    assert not Engine().is_running


def test_errors_cross_back_to_the_loop():
    async def scenario():
        engine = Engine()
        await engine.start(EngineSettings(local_ip="127.0.0.1", tcp_port=None))
        with pytest.raises(ZeroDivisionError):
            await engine.run(lambda: 1 / 0)
        import pjsua2 as pj

        # Binding the port a socket already holds fails inside pjsip: pj.Error arrives as SIPCoreError.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            config = pj.TransportConfig()
            config.boundAddress, config.port = busy.getsockname()
            with pytest.raises(SIPCoreError) as failure:
                await engine.run(engine.endpoint.transportCreate, pj.PJSIP_TRANSPORT_UDP, config)
        assert failure.value.status != 0 and failure.value.reason
        await engine.stop()
        with pytest.raises(EngineStoppedError):
            await engine.run(lambda: None)

    run(scenario())


def test_command_round_trip_and_loop_lag_stay_small():
    async def scenario():
        engine = Engine()
        await engine.start(EngineSettings(local_ip="127.0.0.1", tcp_port=None))
        trips = []
        for _ in range(200):
            started = time.perf_counter()
            await engine.run(lambda: None)
            trips.append(time.perf_counter() - started)
        lags = []
        for _ in range(50):
            started = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - started - 0.002)
        await engine.stop()
        return statistics.median(trips), max(lags)

    median_trip, max_lag = run(scenario())
    assert median_trip < 0.002, f"command round trip {median_trip * 1000:.2f} ms"
    assert max_lag < 0.02, f"loop lag {max_lag * 1000:.2f} ms"


def test_nothing_reaches_stdout_and_exit_is_clean():
    script = (
        "import asyncio\n"
        "from sipcli.pjsua import Engine, EngineSettings\n"
        "async def main():\n"
        "    await Engine().start(EngineSettings(local_ip='127.0.0.1', tls_port=0, log_level=5, trace_sip=True))\n"
        "    await Engine().stop()\n"
        "asyncio.run(main())\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"


def test_exit_without_stop_does_not_abort():
    script = (
        "import asyncio\n"
        "from sipcli.pjsua import Engine, EngineSettings\n"
        "async def main():\n"
        "    await Engine().start(EngineSettings(local_ip='127.0.0.1'))\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_an_exception_on_the_pjsua_thread_ends_the_engine_through_did_fail():
    """Whatever breaks the pjsua thread's loop: SIPEngineDidFail, the engine stops (stop() returns), clean exit."""
    script = (
        "import asyncio\n"
        "from sipcli.notification import NotificationCenter\n"
        "from sipcli.pjsua import Engine, EngineSettings\n"
        "failed = None\n"
        "class Observer:\n"
        "    def handle_notification(self, n):\n"
        "        print(n.name, getattr(n.data, 'reason', ''), flush=True)\n"
        "        if n.name == 'SIPEngineDidFail':\n"
        "            failed.set()\n"
        "def boom(ms):\n"
        "    raise RuntimeError('forced')\n"
        "async def main():\n"
        "    global failed\n"
        "    failed = asyncio.Event()\n"
        "    NotificationCenter().add_observer(Observer(), sender=Engine())\n"
        "    engine = Engine()\n"
        "    await engine.start(EngineSettings(local_ip='127.0.0.1', tcp_port=None))\n"
        "    await engine.run(setattr, engine.endpoint, 'libHandleEvents', boom)\n"
        "    await asyncio.wait_for(failed.wait(), 10)\n"
        "    print('state', engine.state, flush=True)\n"
        "    await asyncio.wait_for(engine.stop(), 10)\n"
        "    print('state', engine.state)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["SIPEngineWillStart ", "SIPEngineDidStart "]
    assert lines[2].startswith("SIPEngineDidFail the pjsua thread failed: RuntimeError('forced')")
    assert lines[3:] == ["state stopping", "SIPEngineDidEnd ", "state stopped"]
    assert "RuntimeError: forced" in result.stderr  # logged with its traceback
