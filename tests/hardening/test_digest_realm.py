"""A hostile registrar, proxy or callee challenging for its own realm gets no digest response from sipcli.

Credentials answer only the account's realm (auth.realm, by default the domain): a challenge for another realm
fails the request with a reason that names both realms, and no Authorization/Proxy-Authorization header is
ever sent to it. A registrar of the right realm (kamailio) still registers.
"""

from __future__ import annotations

import pytest

from tests.support.kamailio import Kamailio, registrar_config, start_kamailio
from tests.support.ports import free_port

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
PASSWORD = {"TEST_PASSWORD": "alice-secret"}
HOSTILE = "attacker.invalid"


def adhoc(port: int) -> tuple[str, ...]:
    return ("--from", "alice@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
            f"sip:127.0.0.1:{port}")


def received(messages: str, method: str) -> list[str]:
    """The requests of this method that SIPp received (its -trace_msg log)."""
    blocks = messages.split("----------------------------------------------- ")
    return [b for b in blocks if "message received" in b[:200] and f"\n{method} sip:" in b]


def assert_no_credentials(sipp, method: str) -> None:
    sipp.wait(10)  # it waits out its 1.5 s for a retry with credentials
    requests = received(sipp.messages(), method)
    assert len(requests) == 1, requests
    assert "authorization:" not in sipp.messages().lower()
    assert "alice-secret" not in sipp.messages()


def test_register_refuses_a_foreign_realm_challenge(run, sipp):
    hostile = sipp("uas_challenge_register", extra=["-key", "realm", HOSTILE])
    job = run("register", *adhoc(hostile.port), "--timeout", "10", env=PASSWORD)
    assert job.wait(20) == 1, job.stderr()[-2000:]
    summary = job.summary
    assert summary["exit_code"] == 1 and summary["code"] == 401
    assert f'"{HOSTILE}"' in summary["reason"] and '"example.test"' in summary["reason"], summary
    assert "not answered" in summary["reason"]
    failed = job.find("SIPAccountRegistrationDidFail")[0]["data"]
    assert failed["code"] == 401 and HOSTILE in failed["reason"]
    assert_no_credentials(hostile, "REGISTER")


def configured_account(run, *settings: str) -> None:
    """alice@example.test in the test's configuration, with these KEY=VALUE settings."""
    added = run("accounts", "add", "alice@example.test", "--password-env", "TEST_PASSWORD", env=PASSWORD)
    assert added.wait(10) == 0, added.stderr()
    changed = run("accounts", "set", "alice@example.test", *settings)
    assert changed.wait(10) == 0, changed.stderr()


def test_call_refuses_a_foreign_realm_challenge(run, sipp):
    hostile = sipp("uas_challenge_invite", extra=["-key", "realm", HOSTILE])
    configured_account(run, "registration.enabled=false")  # the INVITE goes straight to the callee's URI
    job = run("call", f"sip:bob@127.0.0.1:{hostile.port}", "--account", "alice@example.test", *LOOPBACK,
              "--timeout", "10")
    assert job.wait(20) == 1, job.stderr()[-2000:]
    failed = job.find("SIPSessionDidFail")[0]["data"]
    assert failed["code"] == 407 and f'"{HOSTILE}"' in failed["reason"], failed
    assert job.summary["exit_code"] == 1 and HOSTILE in job.summary["reason"]
    assert_no_credentials(hostile, "INVITE")


@pytest.fixture
def corp_registrar(tmp_path):
    """kamailio for example.test users whose digest realm is "corp.realm" (not the domain)."""
    k = Kamailio(tmp_path / "kamailio", free_port(), free_port("tcp"), None, {"alice": "alice-secret"})
    k.workdir.mkdir()
    config = registrar_config(k).replace('pv_www_authenticate("$td"', 'pv_www_authenticate("corp.realm"')
    config = config.replace('www_challenge("$td"', 'www_challenge("corp.realm"')
    server = start_kamailio(k.workdir, config, k)
    yield server
    server.stop()


def test_configured_realm_registers_and_the_default_realm_does_not_answer(run, corp_registrar):
    configured_account(run, f"sip.outbound_proxy={corp_registrar.proxy('udp')}")

    refused = run("register", "--account", "alice@example.test", "--timeout", "10")
    assert refused.wait(20) == 1, refused.stderr()[-2000:]
    assert '"corp.realm"' in refused.summary["reason"] and "auth.realm" in refused.summary["reason"]
    assert "alice" not in corp_registrar.location()

    realm = run("accounts", "set", "alice@example.test", "auth.realm=corp.realm")
    assert realm.wait(10) == 0, realm.stderr()
    job = run("register", "--account", "alice@example.test", "--timeout", "10")
    assert job.wait(20) == 0, job.stderr()[-2000:]
    assert job.find("SIPAccountRegistrationDidSucceed"), job.names()
