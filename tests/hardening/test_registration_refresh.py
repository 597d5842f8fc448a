"""Registration refreshes and retries, counted at the registrar: one REGISTER per refresh interval, and after an
outage the registrar is registered with again within the documented retry cap."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

import pytest

from sipcli.registration_timers import FIRST_RETRY_DELAY, MAX_RETRY_DELAY
from tests.support.kamailio import USERS, Kamailio, registrar_config, start_kamailio
from tests.support.ports import free_port

pytest.importorskip("pjsua2")

PASSWORD = {"TEST_PASSWORD": "alice-secret"}


def register_times(messages: str) -> list[datetime]:
    """When SIPp received each REGISTER (its -trace_msg log)."""
    times = []
    for block in messages.split("----------------------------------------------- ")[1:]:
        stamp, _, rest = block.partition("\n")
        if "message received" in rest[:100] and "\nREGISTER sip:" in rest:
            times.append(datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f"))
    return times


def test_one_register_per_refresh_interval(run, sipp):
    """--expires 10: sipcli's timer and pjsip's both fell due at 5 s; two REGISTERs within 2 ms followed."""
    registrar = sipp("uas_registrar", calls=None, extra=["-key", "expires", "10"])
    job = run("register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
              f"sip:127.0.0.1:{registrar.port}", "--expires", "10", "--duration", "27.5", env=PASSWORD)
    assert job.wait(45) == 0, job.stderr()[-2000:]
    registrar.stop()
    times = register_times(registrar.messages())
    succeeded = job.find("SIPAccountRegistrationDidSucceed")
    assert len(succeeded) == 6, [e["time"] for e in succeeded]  # at 0 s, then refreshes at 5, 10, 15, 20, 25 s
    assert len(times) == len(succeeded) + 1, times  # and the unregistration
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(4.5 <= gap <= 5.5 for gap in gaps[:-1]), gaps
    assert job.summary["registrations"] == 6


@pytest.fixture
def restartable_registrar(tmp_path):
    """kamailio (registrar with digest auth) that the test can stop and start again on the same ports."""
    k = Kamailio(tmp_path / "kamailio", free_port(), free_port("tcp"), None, dict(USERS))
    k.workdir.mkdir()
    config = registrar_config(k)
    start_kamailio(k.workdir, config, k)
    yield k, lambda: start_kamailio(k.workdir, config, k)
    k.stop()


def test_reregisters_within_the_retry_cap_after_an_outage(run, restartable_registrar):
    """The registrar (TCP) goes away until the retry interval reaches its cap, then comes back: sipcli reports
    each failure, keeps retrying and registers again within MAX_RETRY_DELAY; the job ends 0."""
    kamailio, restart = restartable_registrar
    job = run("register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
              kamailio.proxy("tcp"), "--expires", "4", "--duration", "72", env=PASSWORD)
    job.wait_for("SIPAccountRegistrationDidSucceed", timeout=10)
    kamailio.stop()
    delays = []
    deadline = time.monotonic() + 60
    while MAX_RETRY_DELAY not in delays:  # 5, 10, 20, then the cap
        assert time.monotonic() < deadline and job.process.poll() is None, (delays, job.names())
        job.wait_for_count("SIPAccountRegistrationDidFail", len(delays) + 1, timeout=35)
        delays = [e["data"]["delay"] for e in job.find("SIPAccountRegistrationDidFail")]
    assert delays == [FIRST_RETRY_DELAY, 2 * FIRST_RETRY_DELAY, 4 * FIRST_RETRY_DELAY, MAX_RETRY_DELAY]
    restart()
    back = time.monotonic()
    job.wait_for_count("SIPAccountRegistrationDidSucceed", 2, timeout=MAX_RETRY_DELAY + 3)
    assert time.monotonic() - back <= MAX_RETRY_DELAY + 3
    assert "alice" in kamailio.location()
    assert job.wait(30) == 0, job.stderr()[-2000:]
    assert job.summary["exit_code"] == 0


def test_retry_after_is_honoured_and_a_failure_during_the_duration_is_not_fatal(run, sipp):
    registrar = sipp("uas_registrar_retry_after", calls=None)
    job = run("register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
              f"sip:127.0.0.1:{registrar.port}", "--expires", "4", "--duration", "6", env=PASSWORD)
    assert job.wait(20) == 0, job.stderr()[-2000:]
    registrar.stop()
    (failed,) = job.find("SIPAccountRegistrationDidFail")
    assert failed["data"]["code"] == 503 and failed["data"]["delay"] == 2
    times = register_times(registrar.messages())
    assert (times[2] - times[1]).total_seconds() == pytest.approx(2, abs=0.3), times  # not the 5 s backoff
    assert len(job.find("SIPAccountRegistrationDidSucceed")) >= 2
