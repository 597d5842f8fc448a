"""Session.connect(uri, routes): the INVITE goes along the routes (not a Route header pjsip ignores), each one
tried in order on a transport failure (RFC 3263 section 4.3). Real peers: kamailio, library-driven processes
(tests/support/peer.py), and the loopback DNS responder (tests/support/dns.py)."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.dns import DNSServer
from tests.support.kamailio import USERS, registrar
from tests.support.peer import LibraryPeer
from tests.support.ports import free_port

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    server = registrar(tmp_path_factory.mktemp("kamailio"))
    yield server
    server.stop()


def _account_peer(config_dir, user: str, proxy: str, *args: str) -> LibraryPeer:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.json"
    path.write_text(json.dumps({"accounts": {f"{user}@example.test": {
        "auth": {"password": USERS[user]}, "sip": {"outbound_proxy": proxy, "register_interval": 60}}}}))
    os.chmod(path, 0o600)
    return LibraryPeer(config_dir, "--account", f"{user}@example.test", *args)


def test_a_call_to_a_domain_tries_its_srv_routes_in_order(tmp_path, kamailio):
    dead = free_port("tcp")  # nothing listens: connection refused
    records = {("_sip._tcp.example.test", "SRV"): [f"10 0 {dead} dead.example.test.",
                                                    f"20 0 {kamailio.tcp_port} proxy.example.test."],
               ("dead.example.test", "A"): ["127.0.0.1"], ("proxy.example.test", "A"): ["127.0.0.1"]}
    bob = _account_peer(tmp_path / "bob", "bob", kamailio.proxy("udp"), "--auto-answer")
    alice = _account_peer(tmp_path / "alice", "alice", kamailio.proxy("udp"))
    try:
        with DNSServer(records) as dns:
            bob.wait_for("SIPAccountRegistrationDidSucceed")
            alice.wait_for("SIPAccountRegistrationDidSucceed")
            alice.run("from sipcli.lookup import DNSLookup\n"
                      f"routes = DNSLookup([{dns.nameserver!r}]).lookup_sip_proxy('sip:example.test', ('tcp',))")
            alice.run("assert [(r.port, r.transport) for r in routes] == "
                      f"[({dead}, 'tcp'), ({kamailio.tcp_port}, 'tcp')], routes")
            mark = alice.mark()
            alice.run("session = Session(account); result = session.connect('sip:bob@example.test', routes)")
            started = alice.wait_for("SIPSessionDidStart", start=mark)
            assert started["data"]["streams"] == ["audio"]
            bob.wait_for("SIPSessionDidStart")
            alice.run(f"assert session.route == routes[1] and session.route.port == {kamailio.tcp_port}")
            assert not alice.find("SIPSessionDidFail", start=mark)
            alice.run("result = session.end()")
            bob.wait_for("SIPSessionDidEnd")
    finally:
        assert alice.stop() == 0
        assert bob.stop() == 0


def test_the_route_is_where_the_invite_goes(tmp_path):
    """The request URI names a host where nothing listens; the route names the callee: the call gets there."""
    callee = LibraryPeer(tmp_path / "callee", "--auto-answer")
    caller = LibraryPeer(tmp_path / "caller")
    try:
        address = callee.wait_for("SIPEngineDidStart")["data"]["transports"]["udp"]
        host, port = address.rsplit(":", 1)
        callee.wait_for("SIPAccountDidActivate")
        caller.wait_for("SIPAccountDidActivate")
        nowhere = free_port("udp")
        caller.run(f"session = Session(account); result = session.connect('sip:bob@127.0.0.1:{nowhere}', "
                   f"[Route({host!r}, {port})])")
        caller.wait_for("SIPSessionDidStart")
        callee.wait_for("SIPSessionDidStart")
        caller.run("result = session.end()")
        callee.wait_for("SIPSessionDidEnd")
    finally:
        assert caller.stop() == 0
        assert callee.stop() == 0
