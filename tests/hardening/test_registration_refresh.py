"""Registration refreshes and retries, counted at the registrar: one REGISTER per refresh interval, and after an
outage the registrar is registered with again within the documented retry cap."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

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
