"""RFC 3263 lookups against a DNS responder on loopback (never the system resolver)."""

import pytest

from sipcli.lookup import DNSLookup, DNSLookupError
from sipcli.uri import Route
from tests.support.dns import DNSServer

ZONE = {
    ("example.test", "NAPTR"): ['20 10 "s" "SIP+D2U" "" _sip._udp.example.test.',
                                '10 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
                                '15 10 "s" "SIP+D2T" "" _sip._tcp.example.test.'],
    ("_sips._tcp.example.test", "SRV"): ["10 0 5061 tls1.example.test."],
    ("_sip._tcp.example.test", "SRV"): ["20 0 5070 b.example.test.", "10 0 5060 a.example.test."],
    ("_sip._udp.example.test", "SRV"): ["10 0 5060 a.example.test."],
    ("tls1.example.test", "A"): ["127.0.0.3"],
    ("a.example.test", "A"): ["127.0.0.1"],
    ("b.example.test", "A"): ["127.0.0.2"],
    ("srvonly.test", "A"): ["127.0.0.9"],
    ("_sip._tcp.srvonly.test", "SRV"): ["10 0 5080 b.example.test."],
    ("plain.test", "A"): ["127.0.0.7", "127.0.0.8"],
}


@pytest.fixture(scope="module")
def dns_server():
    with DNSServer(ZONE) as server:
        yield server


@pytest.fixture
def lookup(dns_server):
    dns_server.queries.clear()
    return DNSLookup([dns_server.nameserver], timeout=2)


def test_naptr_then_srv_then_a_in_order(lookup):
    routes = lookup.lookup_sip_proxy("sip:example.test")
    assert routes == [Route("127.0.0.3", 5061, "tls"), Route("127.0.0.1", 5060, "tcp"),
                      Route("127.0.0.2", 5070, "tcp"), Route("127.0.0.1", 5060, "udp")]


def test_naptr_entries_for_disabled_transports_are_skipped(lookup):
    routes = lookup.lookup_sip_proxy("sip:example.test", supported=("udp",))
    assert routes == [Route("127.0.0.1", 5060, "udp")]


def test_srv_without_naptr(lookup):
    assert lookup.lookup_sip_proxy("sip:srvonly.test") == [Route("127.0.0.2", 5080, "tcp")]


def test_a_records_with_default_port_when_no_naptr_or_srv(lookup):
    # the order of A records within one answer is the server's: compare as sets
    assert set(lookup.lookup_sip_proxy("sip:plain.test")) == {Route("127.0.0.7", 5060, "udp"),
                                                              Route("127.0.0.8", 5060, "udp")}


def test_explicit_transport_uses_its_srv_only(lookup, dns_server):
    assert lookup.lookup_sip_proxy("sip:example.test;transport=tcp")[0] == Route("127.0.0.1", 5060, "tcp")
    assert ("example.test", "NAPTR") not in dns_server.queries


def test_explicit_port_skips_naptr_and_srv(lookup, dns_server):
    assert set(lookup.lookup_sip_proxy("sip:plain.test:5099;transport=tcp")) == {Route("127.0.0.7", 5099, "tcp"),
                                                                                 Route("127.0.0.8", 5099, "tcp")}
    assert all(rdtype == "A" for _, rdtype in dns_server.queries)


def test_ip_literal_asks_nothing(lookup, dns_server):
    assert lookup.lookup_sip_proxy("sip:127.0.0.1:5070;transport=tcp") == [Route("127.0.0.1", 5070, "tcp")]
    assert lookup.lookup_sip_proxy("sips:127.0.0.1") == [Route("127.0.0.1", 5061, "tls")]
    assert dns_server.queries == []


def test_unknown_domain_fails_clearly(lookup):
    with pytest.raises(DNSLookupError, match=r"nowhere\.test"):
        lookup.lookup_sip_proxy("sip:nowhere.test")
