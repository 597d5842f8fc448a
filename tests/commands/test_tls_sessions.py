"""Sessions over TLS (issue 10 item 3): calls and chats to ``sips:`` and ``;transport=tls`` URIs open a TLS
transport, verified as register's is (CA from --tls-ca, verification on by default), and ``listen`` accepts TLS
with a certificate; against kamailio over TLS and between two sipcli processes."""

from __future__ import annotations

import pytest

from tests.commands.test_register import make_tls_files
from tests.support.kamailio import USERS, Kamailio, registrar_config, start_kamailio
from tests.support.ports import free_port
from tests.support.sipcli import SIPCLIProcess

pytest.importorskip("pjsua2")

LOOPBACK = ("--local-ip", "127.0.0.1")
# P2P callers (no account) reach bob through kamailio without credentials: an INVITE for a registered user is
# proxied to where the user registered.
PROXY_TO_REGISTERED = """    if (is_method("INVITE") && $rU == "bob" && lookup("location")) {
        record_route(); t_relay(); exit;
    }
"""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """(CA, certificate and key in one PEM) for 127.0.0.1 / example.test."""
    directory = tmp_path_factory.mktemp("tls")
    ca_cert, cert, key = make_tls_files(directory)
    combined = directory / "server-with-key.pem"
    combined.write_text(cert.read_text() + key.read_text())
    return ca_cert, combined


@pytest.fixture(scope="module")
def kamailio_tls(tmp_path_factory, tls_files):
    _, combined = tls_files
    workdir = tmp_path_factory.mktemp("kamailio")
    k = Kamailio(workdir, free_port(), free_port("tcp"), free_port("tcp"), dict(USERS))
    server = start_kamailio(workdir, registrar_config(k, combined, combined, extra_routes=PROXY_TO_REGISTERED), k)
    yield server
    server.stop()


def registered_listener(run, kamailio, *args: str) -> SIPCLIProcess:
    """bob, registered at kamailio over UDP, answering one call."""
    listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
                   kamailio.proxy("udp"), "--auto-answer", "--count", "1", *args, env={"TEST_PASSWORD": "bob-secret"})
    listener.wait_for("SIPCLIListenDidStart", timeout=15)
    return listener


def invites(process: SIPCLIProcess) -> list[dict]:
    return [t["data"] for t in process.find("SIPEngineSIPTrace")
            if t["data"]["direction"] == "outgoing" and t["data"]["data"].startswith("INVITE ")]


def test_call_to_a_transport_tls_uri_goes_over_tls_verified_with_the_ca(run, kamailio_tls, tls_files):
    """The issue's `call sip:bob@host:port;transport=tls` (no proxy): PJSIP_EUNSUPTRANSPORT before."""
    ca_cert, _ = tls_files
    listener = registered_listener(run, kamailio_tls)
    target = f"sip:bob@127.0.0.1:{kamailio_tls.tls_port};transport=tls"
    caller = run("call", target, *LOOPBACK, "--tls-ca", str(ca_cert), "--duration", "1", "--trace")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    assert caller.wait_for("SIPEngineDidStart")["data"]["transports"]["tls"]
    sent = invites(caller)
    assert sent and {i["transport"] for i in sent} == {"tls"}
    assert all(i["destination"] == f"127.0.0.1:{kamailio_tls.tls_port}" for i in sent)
    connections = caller.find("SIPEngineTLSConnectionDidStart")
    assert [c["data"]["remote"] for c in connections] == [f"127.0.0.1:{kamailio_tls.tls_port}"]
    assert listener.find("SIPSessionDidStart") and caller.find("SIPSessionDidStart")


def test_sips_uri_without_the_ca_fails_verification_and_sends_nothing(run, kamailio_tls):
    """Verification is on by default, as for register: the test CA is not among the system's."""
    caller = run("call", f"sips:bob@127.0.0.1:{kamailio_tls.tls_port}", *LOOPBACK, "--duration", "1", "--trace")
    assert caller.wait(30) == 4, caller.stderr()[-2000:]
    failure = caller.find("SIPSessionDidFail")[0]["data"]
    assert failure["originator"] == "local"
    assert "PJSIP_TLS_ECERTVERIF" in failure["reason"], failure
    assert caller.summary["exit_code"] == 4 and "certificate verification" in caller.summary["reason"]
    # the connection never came up: nothing was answered, no TLS connection reported
    assert not [t for t in caller.find("SIPEngineSIPTrace") if t["data"]["direction"] == "incoming"]
    assert not caller.find("SIPEngineTLSConnectionDidStart")


@pytest.mark.full_engine("tls:TLSv1.3")
def test_p2p_call_and_chat_over_tls_between_two_sipcli_processes(run, tls_files):
    """listen takes TLS with --tls-certificate; call and chat reach it by ;transport=tls and sips: (both sides'
    Contacts are sips: on TLS, as RFC 5630 wants). The PyPI wheel's TLS listener never completes a handshake
    (measured, see README)."""
    ca_cert, combined = tls_files
    listener = run("listen", *LOOPBACK, "--tls-certificate", str(combined), "--auto-answer", "--chat", "--echo",
                   "--count", "2")
    uris = listener.wait_for("SIPCLIListenDidStart", timeout=15)["data"]["uris"]
    tls_uri = uris["tls"]
    assert tls_uri.endswith(";transport=tls")
    caller = run("call", tls_uri, *LOOPBACK, "--tls-ca", str(ca_cert), "--duration", "1", "--trace")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert {i["transport"] for i in invites(caller)} == {"tls"}
    sips = "sips:" + tls_uri[len("sip:"):].split(";")[0]
    chat = run("chat", sips, *LOOPBACK, "--tls-ca", str(ca_cert), "--message", "over TLS", "--trace",
               "--expect-messages", "1")  # stay for the echo
    assert chat.wait(30) == 0, chat.stderr()[-2000:]
    assert {i["transport"] for i in invites(chat)} == {"tls"}
    assert all(i["data"].startswith("INVITE sips:") and "Contact: <sips:" in i["data"] for i in invites(chat))
    assert [e["data"]["content"] for e in chat.find("SIPSessionGotMessage")] == ["over TLS"]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    assert listener.summary["sessions"] == 2
    accepted = listener.find("SIPEngineTLSConnectionDidStart")
    assert len(accepted) == 2 and all(c["data"]["local"].startswith("127.0.0.1:") for c in accepted)


def test_listen_without_a_certificate_opens_no_tls_listener(run):
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1")
    uris = listener.wait_for("SIPCLIListenDidStart", timeout=15)["data"]["uris"]
    assert set(uris) == {"udp", "tcp"}
    assert "tls" not in listener.wait_for("SIPEngineDidStart")["data"]["transports"]
