"""Registration refreshes and retries, counted at the registrar: one REGISTER per refresh interval, and after an
outage the registrar is registered with again within the documented retry cap."""

from __future__ import annotations

import itertools
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


def event_times(events: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(event["time"]) for event in events]


def test_retry_delay_reaches_its_cap_through_an_outage(run, restartable_registrar):
    """The registrar (TCP, refusing at once while down) stays away until the retry interval reaches its cap: each
    failure is reported with the delay before the next attempt (5, 10, 20, then 30 s, where the old backoff went
    on to 40 s and more), each attempt comes when announced, and the job lives on through the outage.
    (That the announced delay ends in a registration once the registrar is back: the next test.)"""
    kamailio, _ = restartable_registrar
    job = run("register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
              kamailio.proxy("tcp"), "--expires", "4", "--duration", "120", env=PASSWORD)
    job.wait_for("SIPAccountRegistrationDidSucceed", timeout=10)
    kamailio.stop()
    delays: list[float] = []
    while MAX_RETRY_DELAY not in delays:  # 5, 10, 20, then the cap: 35 s of outage
        assert len(delays) < 4 and job.process.poll() is None, (delays, job.names())
        failed = job.wait_for_count("SIPAccountRegistrationDidFail", len(delays) + 1, timeout=MAX_RETRY_DELAY)
        delays = [e["data"]["delay"] for e in failed]
    assert delays == [FIRST_RETRY_DELAY, 2 * FIRST_RETRY_DELAY, 4 * FIRST_RETRY_DELAY, MAX_RETRY_DELAY]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(event_times(failed))]
    assert all(delay - 0.2 <= gap <= delay + 3 for delay, gap in zip(delays[:-1], gaps, strict=True)), gaps
    assert job.process.poll() is None  # still within its duration: every failure was retried, none fatal
    job.signal()
    assert job.wait(15) == 130, job.stderr()[-2000:]


def test_reregisters_when_the_announced_retry_delay_ends_after_an_outage(run, restartable_registrar):
    """The registrar (TCP) goes away, is back before the announced retry: sipcli registers with it again when
    that delay ends (the new kamailio knows the contact), and the job ends 0."""
    kamailio, restart = restartable_registrar
    job = run("register", "--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
              kamailio.proxy("tcp"), "--expires", "4", "--duration", "14", env=PASSWORD)
    job.wait_for("SIPAccountRegistrationDidSucceed", timeout=10)
    kamailio.stop()
    failed = job.wait_for("SIPAccountRegistrationDidFail", timeout=10)
    delay = failed["data"]["delay"]
    assert delay == FIRST_RETRY_DELAY
    restart()
    succeeded = job.wait_for_count("SIPAccountRegistrationDidSucceed", 2, timeout=delay + 5)
    back_after = (event_times(succeeded)[1] - event_times([failed])[0]).total_seconds()
    assert delay - 0.2 <= back_after <= delay + 3, back_after
    assert "alice" in kamailio.location()
    assert job.wait(20) == 0, job.stderr()[-2000:]
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
