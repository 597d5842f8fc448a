"""What sipcli's engine build (engine/build.py) unlocks, end to end; each test is skipped, with its reason, on an
engine that lacks what it needs (the PyPI wheel), and .ci/run runs them in a venv with the built engine."""

from __future__ import annotations

import contextlib
import re
import socket
import uuid

import pytest

from tests.support.audio import dominant_frequency, sine_wav
from tests.support.engine import installed_capabilities
from tests.support.sipcli import SIPCLIProcess

pytest.importorskip("pjsua2")

IPV6 = ("--local-ip", "::1")
LOOPBACK = ("--local-ip", "127.0.0.1")


def listen(run, *args: str) -> tuple[SIPCLIProcess, str]:
    listener = run("listen", *args)
    ready = listener.wait_for("SIPCLIListenDidStart")
    return listener, ready["data"]["uris"]["udp"]


def sipp_stats(process) -> dict[str, str]:
    header, *rows = (process.workdir / "stat.csv").read_text().strip().splitlines()
    return dict(zip(header.split(";"), rows[-1].split(";"), strict=False))


@pytest.mark.full_engine("calls:100")
def test_listen_takes_100_concurrent_calls_from_sipp(run, sipp, tmp_path):
    listener, uri = listen(run, *LOOPBACK, "--auto-answer", "--count", "100")
    port = uri.rsplit(":", 1)[1]
    # 100 calls at 50/s, each held 4 s: all 100 are up at once for about 2 s.
    stat = tmp_path / "sipp" / "stat.csv"
    uac = sipp("uac_hold", f"127.0.0.1:{port}", calls=100,
               extra=["-r", "50", "-l", "100", "-d", "4000", "-trace_stat", "-stf", str(stat)])
    assert uac.wait(60) == 0, uac.output()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    stats = sipp_stats(uac)
    assert (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (100, 0)
    assert int(stats["CurrentCall"]) == 0
    assert listener.summary["sessions"] == 100
    assert len(listener.find("SIPSessionDidStart")) == 100
    assert not listener.find("SIPSessionDidFail")


@pytest.mark.full_engine("ipv6")
def test_ipv6_call_and_chat_between_two_sipcli_processes(run, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 700, seconds=2)
    listener, uri = listen(run, *IPV6, "--auto-answer", "--chat", "--echo", "--count", "2", "--play", str(tone))
    assert re.fullmatch(r"sip:\w+@\[::1\]:\d+", uri), uri
    caller = run("call", uri, *IPV6, "--record", str(tmp_path / "heard.wav"), "--duration", "1.5", "--trace")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    invite = next(e["data"] for e in caller.find("SIPEngineSIPTrace") if e["data"]["data"].startswith("INVITE "))
    assert invite["destination"].startswith("[::1]:") and "c=IN IP6 ::1" in invite["data"]
    assert dominant_frequency(tmp_path / "heard.wav") == pytest.approx(700, abs=15)
    chat = run("chat", uri, *IPV6, "--message", "over IPv6", "--expect-messages", "1")  # stay for the echo
    assert chat.wait(30) == 0, chat.stderr()[-2000:]
    echoed = [e["data"]["content"] for e in chat.find("SIPSessionGotMessage")]
    assert echoed == ["over IPv6"]
    assert chat.summary["delivered"] == 1
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    assert listener.summary["sessions"] == 2


@pytest.mark.full_engine("ipv6")
def test_sipp_ipv6_offer_is_answered_with_an_ipv6_c_line(run, sipp):
    listener, uri = listen(run, *IPV6, "--auto-answer", "--count", "1")
    port = uri.rsplit(":", 1)[1]
    uac = sipp("uac_hold", f"[::1]:{port}", calls=1, address="::1", extra=["-d", "500"])
    assert uac.wait(30) == 0, uac.output()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    messages = uac.messages()
    offer, answer = messages.split("SIP/2.0 200 OK", 1)
    assert "c=IN IP6 ::1" in offer
    assert re.search(r"^c=IN IP6 ::1\s*$", answer, re.MULTILINE), answer[:1500]
    assert re.search(r"^m=audio [1-9]\d* RTP/AVP 0", answer, re.MULTILINE), answer[:1500]


@pytest.mark.full_engine("codec:opus")
def test_opus_call_between_two_sipcli_processes(run, tmp_path):
    tone = sine_wav(tmp_path / "tone.wav", 1000, seconds=2, rate=48000)
    listener, uri = listen(run, *LOOPBACK, "--auto-answer", "--count", "1", "--codec", "opus", "--play", str(tone))
    caller = run("call", uri, *LOOPBACK, "--codec", "opus", "--record", str(tmp_path / "heard.wav"),
                 "--duration", "1.5", "--trace", "--expect-audio")
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    traces = [e["data"]["data"] for e in caller.find("SIPEngineSIPTrace")]
    answer = next(t for t in traces if t.startswith("SIP/2.0 200") and "m=audio" in t)
    payload = re.search(r"^m=audio \d+ RTP/AVP (\d+)", answer, re.MULTILINE).group(1)
    assert re.search(rf"^a=rtpmap:{payload} opus/48000/2", answer, re.MULTILINE), answer
    assert dominant_frequency(tmp_path / "heard.wav") == pytest.approx(1000, abs=15)


@pytest.mark.skipif(any(c.lower().startswith("opus/") for c in installed_capabilities().get("codecs", ["opus/"])),
                    reason="the installed engine has Opus")
def test_codec_missing_from_the_engine_is_one_line_and_exit_2(run):
    caller = run("call", "sip:nobody@127.0.0.1:9", *LOOPBACK, "--codec", "opus")
    assert caller.wait(30) == 2
    assert caller.summary["missing_capability"] == "codec opus"
    assert caller.stderr().strip().splitlines() == [f"sipcli: {caller.summary['reason']}"]
    assert not caller.find("SIPSessionNewOutgoing")


@pytest.mark.full_engine("sdp_buffer:8192")
def test_chat_keeps_every_codec_and_srtp_when_the_sdp_buffer_is_large(run):
    codecs = ("G722", "PCMU", "PCMA", "speex", "GSM", "iLBC")
    listener, uri = listen(run, *LOOPBACK, "--auto-answer", "--chat", "--echo", "--count", "1")
    chat = run("chat", uri, *LOOPBACK, "--audio", "--srtp", "optional", *(f"--codec={c}" for c in codecs),
               "--message", "all codecs", "--expect-messages", "1", "--trace")  # stay for the echo
    assert chat.wait(30) == 0, chat.stderr()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    invite = next(e["data"]["data"] for e in chat.find("SIPEngineSIPTrace") if e["data"]["data"].startswith("INVITE "))
    # Not the fewer codecs that fit a 1 KB buffer (sipcli.pjsua.media.fit_codecs on the PyPI wheel):
    # every codec asked for, SDES keys, the chat line.
    assert "speex/16000" in invite and "GSM/8000" in invite and "iLBC/8000" in invite and "G722/8000" in invite
    assert "a=crypto:" in invite and re.search(r"^m=message [1-9]\d* TCP/MSRP \*", invite, re.MULTILINE)
    assert [e["data"]["content"] for e in chat.find("SIPSessionGotMessage")] == ["all codecs"]


@pytest.mark.full_engine("chat_only_offers")
def test_chat_only_offer_from_sipp_is_accepted_and_the_chat_works(run, sipp):
    """SIPp offers only an MSRP line (as SIP SIMPLE clients do for a plain chat) and the test speaks MSRP for it."""
    listener, uri = listen(run, *LOOPBACK, "--auto-answer", "--chat", "--echo", "--count", "1", "--trace")
    port = uri.rsplit(":", 1)[1]
    uac = sipp("uac_chat_only_accepted", f"127.0.0.1:{port}", calls=1, extra=["-d", "4000"])
    started = listener.wait_for("SIPSessionDidStart", timeout=15)
    assert started["data"]["streams"] == ["chat"]
    answer = next(e["data"]["data"] for e in listener.find("SIPEngineSIPTrace")
                  if e["data"]["direction"] == "outgoing" and e["data"]["data"].startswith("SIP/2.0 200"))
    assert not re.search(r"^m=audio", answer, re.MULTILINE)
    assert re.search(r"^m=message [1-9]\d* TCP/MSRP \*", answer, re.MULTILINE), answer
    assert "a=setup:passive" in answer  # SIPp's offer says active: the listener waits for the connection
    path = re.search(r"^a=path:(msrp://127\.0\.0\.1:(\d+)/\S+)", answer, re.MULTILINE)
    with socket.create_connection(("127.0.0.1", int(path.group(2))), timeout=10) as connection:
        connection.sendall(("MSRP tx1abc SEND\r\n"
                            f"To-Path: {path.group(1)}\r\n"
                            "From-Path: msrp://127.0.0.1:9/sipp1;tcp\r\n"
                            "Message-ID: msg1abc\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\n"
                            "hello\r\n-------tx1abc$\r\n").encode())
        received = b""
        while b"hello" not in received.partition(b" SEND\r\n")[2]:
            chunk = connection.recv(65536)
            assert chunk, received
            received += chunk
        # The connection stays up until SIPp hangs up: a chat-only session whose MSRP connection is lost ends.
        assert uac.wait(30) == 0, uac.output()[-2000:]
    assert received.startswith(b"MSRP tx1abc 200 OK\r\n"), received
    assert [e["data"]["content"] for e in listener.find("SIPSessionGotMessage")] == ["hello"]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    assert listener.find("SIPSessionDidEnd")[0]["data"]["originator"] == "remote"


@pytest.fixture(scope="module")
def kamailio_tls(tmp_path_factory):
    """A registrar with TLS 1.2 and 1.3 (Debian's kamailio 5.6 links OpenSSL 3; it has no 1.3-only method)."""
    from tests.commands.test_register import make_tls_files
    from tests.support.kamailio import registrar

    ca_cert, cert, key = make_tls_files(tmp_path_factory.mktemp("tls"))
    server = registrar(tmp_path_factory.mktemp("kamailio"), tls_cert=cert, tls_key=key)
    server.ca_cert = ca_cert
    yield server
    server.stop()


def tls_account(kamailio, user: str) -> tuple[str, ...]:
    return ("--from", f"{user}@example.test", "--password-env", "TEST_PASSWORD", "--proxy", kamailio.proxy("tls"),
            "--tls-ca", str(kamailio.ca_cert))


@pytest.mark.full_engine("tls:TLSv1.3")
def test_register_and_call_over_tls13_with_the_version_reported(run, kamailio_tls):
    # bob registers over UDP (a TLS listener would need its own certificate); alice reaches kamailio over TLS.
    listener = run("listen", *LOOPBACK, "--from", "bob@example.test", "--password-env", "TEST_PASSWORD", "--proxy",
                   kamailio_tls.proxy("udp"), "--auto-answer", "--count", "1", env={"TEST_PASSWORD": "bob-secret"})
    listener.wait_for("SIPCLIListenDidStart", timeout=15)
    caller = run("call", "bob@example.test", *LOOPBACK, *tls_account(kamailio_tls, "alice"), "--duration", "1",
                 "--trace", env={"TEST_PASSWORD": "alice-secret"})
    assert caller.wait(30) == 0, caller.stderr()[-2000:]
    assert listener.wait(30) == 0, listener.stderr()[-2000:]
    connections = caller.find("SIPEngineTLSConnectionDidStart")
    assert connections, caller.names()
    assert {c["data"]["tls_version"] for c in connections} == {"TLSv1.3"}
    assert all(c["data"]["remote"] == f"127.0.0.1:{kamailio_tls.tls_port}" for c in connections)
    assert all(c["data"]["cipher"].startswith("TLS_") for c in connections)  # a TLS 1.3 suite
    traces = caller.find("SIPEngineSIPTrace")
    assert any(t["data"]["transport"] == "tls" and t["data"]["data"].startswith("REGISTER ") for t in traces)
    assert any(t["data"]["transport"] == "tls" and t["data"]["data"].startswith("INVITE ") for t in traces)


@pytest.mark.skipif("TLSv1.3" in installed_capabilities().get("tls_versions", ["TLSv1.3"]),
                    reason="the installed engine has TLS 1.3")
def test_the_wheel_negotiates_tls12_with_the_same_registrar_and_reports_it(run, kamailio_tls):
    register = run("register", *tls_account(kamailio_tls, "alice"), env={"TEST_PASSWORD": "alice-secret"})
    assert register.wait(30) == 0, register.stderr()[-2000:]
    connections = register.find("SIPEngineTLSConnectionDidStart")
    assert connections and {c["data"]["tls_version"] for c in connections} == {"TLSv1.2"}


def options_over_tcp(port: int, padding: int) -> bytes:
    """Send one OPTIONS of about padding bytes over a new TCP connection; the response head (b"" if none in 3 s)."""
    tag = uuid.uuid4().hex
    request = (f"OPTIONS sip:x@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{tag}\r\n"
               f"From: <sip:t@127.0.0.1>;tag={tag}\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: {tag}\r\nCSeq: 1 OPTIONS\r\n"
               f"Max-Forwards: 70\r\nX-Padding: {'x' * padding}\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
        connection.sendall(request)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
    return received.partition(b"\r\n\r\n")[0]


def tcp_port(listener: SIPCLIProcess) -> int:
    return int(listener.find("SIPCLIListenDidStart")[0]["data"]["uris"]["tcp"].split(";")[0].rsplit(":", 1)[1])


@pytest.mark.full_engine("max_packet:16384")
def test_sip_messages_up_to_the_engine_limit_are_taken_over_tcp(run):
    listener, _ = listen(run, *LOOPBACK, "--auto-answer", "--count", "1")
    port = tcp_port(listener)
    assert options_over_tcp(port, 12000).startswith(b"SIP/2.0 200 ")  # three times the wheel's 4,000 bytes
    # above max_packet (32,768), headers included: refused (tests/hardening/test_oversized.py), the listener lives on
    assert options_over_tcp(port, 40000).startswith(b"SIP/2.0 513 ")
    assert options_over_tcp(port, 100).startswith(b"SIP/2.0 200 ")
    assert listener.process.poll() is None


@pytest.mark.skipif(installed_capabilities().get("max_packet", 0) >= 12000, reason="the engine takes 12 KB")
def test_the_wheel_drops_sip_messages_over_4000_bytes(run):
    listener, _ = listen(run, *LOOPBACK, "--auto-answer", "--count", "1")
    port = tcp_port(listener)
    assert options_over_tcp(port, 12000) == b""  # PJSIP_ERXOVERFLOW: dropped without an answer (documented)
    assert options_over_tcp(port, 100).startswith(b"SIP/2.0 200 ")
    assert listener.process.poll() is None
