"""Setting value types: what they accept, how they normalize, and what they reject."""

import pytest

from sipcli.configuration.datatypes import (
    AudioCodecList,
    Hostname,
    IPAddress,
    MSRPTransport,
    NonNegativeInteger,
    Password,
    Path,
    Port,
    PortRange,
    SampleRate,
    SIPAddress,
    SIPProxyAddress,
    SIPTransportList,
    SRTPEncryption,
    from_text,
)


@pytest.mark.parametrize(("text", "username", "domain"), [
    ("alice@example.test", "alice", "example.test"),
    ("sip:bob@Example.TEST", "bob", "example.test"),
    ("carol+1@127.0.0.1", "carol+1", "127.0.0.1"),
    ("dave@[::1]", "dave", "::1"),
])
def test_sip_address(text, username, domain):
    address = SIPAddress(text)
    assert isinstance(address, str)
    assert (address.username, address.domain) == (username, domain)
    assert SIPAddress(address) == address


@pytest.mark.parametrize("text", ["alice", "a@", "@example.test", "a b@example.test", "a@exa mple", "a@-x.test", "",
                                  "a@b..c"])
def test_sip_address_rejects(text):
    with pytest.raises(ValueError, match="invalid SIP address"):
        SIPAddress(text)


def test_sip_address_rejects_non_string():
    with pytest.raises(ValueError):
        SIPAddress(42)


@pytest.mark.parametrize(("text", "canonical", "host", "port", "transport"), [
    ("sip:127.0.0.1:5060;transport=tcp", "sip:127.0.0.1:5060;transport=tcp", "127.0.0.1", 5060, "tcp"),
    ("127.0.0.1", "sip:127.0.0.1", "127.0.0.1", None, None),
    ("Proxy.Example.test:5080;lr", "sip:proxy.example.test:5080", "proxy.example.test", 5080, None),
    ("sips:proxy.example.test", "sip:proxy.example.test;transport=tls", "proxy.example.test", None, "tls"),
    ("[::1]:5070;transport=UDP", "sip:[::1]:5070;transport=udp", "::1", 5070, "udp"),
])
def test_proxy_address(text, canonical, host, port, transport):
    proxy = SIPProxyAddress(text)
    assert proxy == canonical
    assert (proxy.host, proxy.port, proxy.transport) == (host, port, transport)
    assert SIPProxyAddress(str(proxy)) == proxy


@pytest.mark.parametrize("text", ["", "sip:", "sip:host:99999", "sip:host;transport=sctp", "sip:user@host",
                                  "sip:host;maddr=x", "sips:host;transport=udp", "host:port"])
def test_proxy_address_rejects(text):
    with pytest.raises(ValueError):
        SIPProxyAddress(text)


def test_integers():
    assert Port(0) == 0 and Port("65535") == 65535
    for bad in (-1, 65536, "x", True, 1.5):
        with pytest.raises(ValueError):
            Port(bad)
    assert NonNegativeInteger(0) == 0
    with pytest.raises(ValueError, match="non-negative"):
        NonNegativeInteger(-3)
    assert SampleRate(48000) == 48000
    with pytest.raises(ValueError):
        SampleRate(12345)


def test_port_range():
    assert PortRange("50000:50100") == "50000:50100"
    assert PortRange("50000-50100").start == 50000
    assert PortRange([1, 2]).end == 2
    for bad in ("1", "5:4", "0:10", "a:b", "1:2:3", "1:70000"):
        with pytest.raises(ValueError):
            PortRange(bad)


def test_enumerations_and_lists():
    assert SRTPEncryption("MANDATORY") == "mandatory"
    assert MSRPTransport("tls") == "tls"
    with pytest.raises(ValueError, match="tcp, tls"):
        MSRPTransport("udp")
    assert SIPTransportList(["TCP", "udp"]) == ("tcp", "udp")
    for bad in ([], ["udp", "udp"], ["sctp"], "udp"):
        with pytest.raises(ValueError):
            SIPTransportList(bad)
    assert AudioCodecList(["pcmu", "g722"]) == ("PCMU", "G722")


def test_paths_addresses_passwords():
    assert Path("~/x").normalized.endswith("/x") and not Path("~/x").normalized.startswith("~")
    with pytest.raises(ValueError):
        Path("")
    assert IPAddress("127.0.0.1") == "127.0.0.1"
    with pytest.raises(ValueError):
        IPAddress("localhost")
    assert Hostname("[::1]").uri_form == "[::1]"
    assert "s3cret" not in repr(Password("s3cret"))


def test_from_text():
    assert from_text(bool, "Yes") is True and from_text(bool, "off") is False
    with pytest.raises(ValueError, match="boolean"):
        from_text(bool, "maybe")
    assert from_text(int, "12") == 12
    assert from_text(SIPTransportList, "tcp, tls") == ("tcp", "tls")
    assert from_text(Port, "5070") == 5070
