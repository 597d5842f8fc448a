"""RFC 4976 relay client: digest helpers, and two clients talking through a real kamailio msrp relay."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipcli.msrp.aio import connect_relay
from sipcli.msrp.connection import MessageDelivered, MessageReceived
from sipcli.msrp.message import MSRPFrame
from sipcli.msrp.relay import (
    RelayAuthenticated,
    RelayAuthFailed,
    RelayClient,
    RelayError,
    digest_authorization,
    digest_params,
)
from sipcli.msrp.uri import MSRPURI
from tests.sipcli.msrp.test_transport import Collector
from tests.support.kamailio import USERS, Kamailio
from tests.support.msrp_relay import msrp_relay

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]
RELAY = MSRPURI.parse("msrp://relay.example.test:2855;tcp")
ME = MSRPURI.parse("msrp://127.0.0.1:9/abc;tcp")


def test_digest_matches_rfc2617_example() -> None:
    challenge = digest_params('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                              'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = digest_authorization(challenge, "Mufasa", "Circle Of Life", "/dir/index.html", method="GET",
                                 cnonce="0a4f113b", nc=1)
    assert 'response="6629fae49393a05397450978507c4ef1"' in value


def test_client_answers_challenge_then_learns_use_path() -> None:
    client = RelayClient(RELAY, ME, "alice", "pw", expires=600, clock=lambda: 100.0)
    first = client.auth_request()
    assert first.method == "AUTH" and "Authorization" not in first.headers and first.headers["Expires"] == "600"
    challenge = MSRPFrame(first.transaction_id, code=401, comment="Unauthorized",
                          headers={"WWW-Authenticate": 'Digest realm="r", nonce="n1", qop="auth"'})
    assert client.owns(challenge)
    second = client.handle_response(challenge)
    assert isinstance(second, MSRPFrame) and 'username="alice"' in second.headers["Authorization"]
    ok = MSRPFrame(second.transaction_id, code=200, comment="OK",
                   headers={"Use-Path": "msrp://relay.example.test:2855/s1;tcp", "Expires": "600"})
    outcome = client.handle_response(ok)
    assert outcome == RelayAuthenticated([MSRPURI.parse("msrp://relay.example.test:2855/s1;tcp")], 600)
    assert client.refresh_at == 100.0 + 600 * 0.8
    again = client.handle_response(MSRPFrame(client.auth_request().transaction_id, code=401, comment="Unauthorized",
                                             headers={"WWW-Authenticate": 'Digest realm="r", nonce="n2"'}))
    assert isinstance(again, MSRPFrame)  # a new nonce after a grant is answered once more


def test_client_gives_up_when_credentials_are_refused() -> None:
    client = RelayClient(RELAY, ME, "alice", "wrong")
    header = {"WWW-Authenticate": 'Digest realm="r", nonce="n1"'}
    retry = client.handle_response(MSRPFrame(client.auth_request().transaction_id, code=401, headers=header))
    assert isinstance(retry, MSRPFrame)
    outcome = client.handle_response(MSRPFrame(retry.transaction_id, code=401, comment="Unauthorized", headers=header))
    assert outcome == RelayAuthFailed(401, "Unauthorized")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Kamailio]:
    if not shutil.which("kamailio"):
        pytest.skip("kamailio is not installed")
    k = msrp_relay(tmp_path)
    yield k
    k.stop()


def test_two_clients_exchange_messages_through_kamailio_relay(relay: Kamailio) -> None:
    async def run() -> None:
        relay_uri = MSRPURI("127.0.0.1", relay.tcp_port)
        alice_events, bob_events = Collector(), Collector()
        alice = await connect_relay(relay_uri, MSRPURI.new("127.0.0.1", 9), "alice", USERS["alice"],
                                    on_event=alice_events, expires=2)
        bob = await connect_relay(relay_uri, MSRPURI.new("127.0.0.1", 9), "bob", USERS["bob"], on_event=bob_events)
        alice_path, bob_path = alice.connection.local_path, bob.connection.local_path
        assert len(alice_path) == 2 and alice_path[0].port == relay.tcp_port
        # What each side learns from the other's a=path in SDP:
        alice.connection.remote_path = bob_path
        bob.connection.remote_path = alice_path
        sent = alice.send_message(b"hello via relay", success_report=True)
        await bob_events.wait(lambda: bool(bob_events.of(MessageReceived)))
        assert bob_events.of(MessageReceived)[0].body == b"hello via relay"
        await alice_events.wait(lambda: any(e.message_id == sent for e in alice_events.of(MessageDelivered)))
        await asyncio.sleep(2.0)  # past 80 % of Expires: 2 the client has re-authenticated
        bob.send_message(b"reply")
        await alice_events.wait(lambda: bool(alice_events.of(MessageReceived)))
        assert alice_events.of(MessageReceived)[0].body == b"reply"
        assert relay.log().count("msrp AUTH ok for alice") >= 2
        await alice.close()
        await bob.close()

    asyncio.run(run())


def test_wrong_password_is_refused_by_kamailio_relay(relay: Kamailio) -> None:
    async def run() -> None:
        with pytest.raises(RelayError) as refused:
            await connect_relay(MSRPURI("127.0.0.1", relay.tcp_port), MSRPURI.new("127.0.0.1", 9), "alice", "nope")
        assert refused.value.code == 401

    asyncio.run(run())


def test_client_never_answers_a_challenge_for_another_realm() -> None:
    client = RelayClient(RELAY, ME, "alice", "pw", realm="example.test")
    first = client.auth_request()
    hostile = {"WWW-Authenticate": 'Digest realm="attacker.invalid", nonce="n1", qop="auth"'}
    outcome = client.handle_response(MSRPFrame(first.transaction_id, code=401, comment="Unauthorized",
                                               headers=hostile))
    assert isinstance(outcome, RelayAuthFailed) and outcome.code == 401
    assert '"attacker.invalid"' in outcome.comment and '"example.test"' in outcome.comment
    own = {"WWW-Authenticate": 'Digest realm="Example.Test", nonce="n2"'}
    answer = client.handle_response(MSRPFrame(client.auth_request().transaction_id, code=401, headers=own))
    assert isinstance(answer, MSRPFrame) and 'realm="Example.Test"' in answer.headers["Authorization"]
