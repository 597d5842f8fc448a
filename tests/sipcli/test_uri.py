"""SIPURI parsing and rendering, Route."""

import pytest

from sipcli.uri import SIPURI, Route


def test_parse_full_uri():
    uri = SIPURI.parse("<sip:alice@127.0.0.1:5070;transport=TCP;lr>")
    assert (uri.user, uri.host, uri.port, uri.transport) == ("alice", "127.0.0.1", 5070, "tcp")
    assert uri.parameters == {"transport": "tcp", "lr": None}
    assert str(uri) == "sip:alice@127.0.0.1:5070;transport=tcp;lr"


def test_defaults_and_sips():
    assert SIPURI.parse("sip:example.test").transport == "udp"
    uri = SIPURI.parse("sips:bob@example.test")
    assert uri.secure and uri.transport == "tls" and uri.address == "bob@example.test"


def test_ipv6_host():
    uri = SIPURI.parse("sip:[::1]:5060")
    assert (uri.host, uri.port) == ("[::1]", 5060)


def test_password_is_never_rendered():
    assert str(SIPURI.parse("sip:alice:secret@example.test")) == "sip:alice@example.test"


@pytest.mark.parametrize("text, message", [
    ("alice@example.test", "not a SIP URI"),
    ("sip:", "malformed"),
    ("sip:alice@exa mple.test", "malformed"),
    ("sip:127.0.0.1:70000", "port out of range"),
    ("sip:127.0.0.1;transport=sctp", "unsupported transport"),
])
def test_malformed_uris_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        SIPURI.parse(text)


def test_route_renders_a_loose_route():
    route = Route("127.0.0.1", 5061, "tls")
    assert str(route.uri) == "sip:127.0.0.1:5061;transport=tls;lr"
    assert str(route) == "127.0.0.1:5061;transport=tls"
    with pytest.raises(ValueError):
        Route("127.0.0.1", 5060, "sctp")


def test_route_port_defaults_as_in_the_reference():
    assert Route("1.2.3.4") == Route("1.2.3.4", 5060, "udp")  # the reference's Route("1.2.3.4")
    assert Route("1.2.3.4", transport="tcp").port == 5060
    assert Route("1.2.3.4", transport="tls").port == 5061
    assert str(Route("1.2.3.4").uri) == "sip:1.2.3.4:5060;transport=udp;lr"
