"""`sipcli engine`: capabilities detected from the loaded pjsua2, and features that check them."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.engine import installed_capabilities
from tests.support.sipcli import SIPCLI


def test_engine_reports_capabilities_in_both_lines(run):
    process = run("engine")
    assert process.wait() == 0
    started = process.wait_for("SIPEngineDidStart")["data"]["capabilities"]
    summary = process.summary
    assert summary["exit_code"] == 0
    assert summary["capabilities"] == started
    assert started["pjproject"] == "2.15.1"
    assert started["max_calls"] >= 1 and started["conference_ports"] >= started["max_calls"]
    assert "PCMU/8000/1" in started["codecs"]
    assert "sdes" in started["srtp"]
    assert started["openssl"].startswith("OpenSSL ")
    assert started["sdp_buffer"] >= 512 and started["max_packet"] >= 1500


def test_text_format_shows_a_table(tmp_path):
    result = subprocess.run([*SIPCLI, "--format", "text", "engine"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SIPCLI_CONFIG_DIR": str(tmp_path)}, check=False)
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines()[-15:] if line[:1].isalpha())
    capabilities = installed_capabilities()
    assert rows["max_calls"].strip() == str(capabilities["max_calls"])
    assert rows["codecs"].strip() == ", ".join(capabilities["codecs"])
    assert rows["ipv6"].strip() == str(capabilities["ipv6"])


@pytest.mark.skipif(installed_capabilities().get("build") != "other" or
                    installed_capabilities().get("pjsua2") != "2.15.1.post1",
                    reason="asserts the PyPI wheel's measured limits")
def test_pypi_wheel_limits_are_detected(run):
    process = run("engine")
    assert process.wait() == 0
    capabilities = process.summary["capabilities"]
    # engine/README facts about pjsua2-python 2.15.1.post1, each read from the library, not from its version.
    assert capabilities["max_calls"] == 4
    assert capabilities["ipv6"] is False
    assert capabilities["tls_versions"] == ["TLSv1", "TLSv1.1", "TLSv1.2"]
    assert capabilities["openssl"].startswith("OpenSSL 1.0.2k")
    assert not any(codec.startswith("opus/") for codec in capabilities["codecs"])
    assert capabilities["srtp"] == ["sdes"]
    assert 1000 <= capabilities["sdp_buffer"] < 1024
    assert capabilities["max_packet"] == 4000
    assert capabilities["oversized_answers"] is False
    assert capabilities["chat_only_offers"] is False


@pytest.mark.full_engine("ipv6")
def test_sipcli_build_capabilities_are_detected(run):
    process = run("engine")
    assert process.wait() == 0
    capabilities = process.summary["capabilities"]
    # engine/config_site.h and engine/patches, as read back from the built library.
    assert capabilities["build"] == "sipcli"
    assert capabilities["pjsua2"] == "2.15.1.post1+sipcli"
    assert capabilities["max_calls"] == 256
    assert capabilities["conference_ports"] == 256 + 64
    assert capabilities["ipv6"] is True
    assert capabilities["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert capabilities["openssl"].startswith("OpenSSL 3.")
    assert "opus/48000/2" in capabilities["codecs"]
    assert capabilities["srtp"] == ["sdes", "dtls"]
    assert 16000 <= capabilities["sdp_buffer"] < 16384
    assert capabilities["max_packet"] == 32768
    assert capabilities["oversized_answers"] is True
    assert capabilities["ioqueue"] == "epoll"
    assert capabilities["chat_only_offers"] is True


@pytest.mark.skipif(installed_capabilities().get("ipv6", True), reason="the installed engine has IPv6")
def test_ipv6_without_the_capability_is_one_line_and_exit_2(run):
    process = run("listen", "--local-ip", "::1", "--port", "0")
    assert process.wait() == 2
    assert process.summary["missing_capability"] == "IPv6 (PJ_HAS_IPV6)"
    lines = process.stderr().strip().splitlines()
    assert lines == [f"sipcli: {process.summary['reason']}"]
    assert "needs IPv6" in lines[0] and "engine build" in lines[0]
