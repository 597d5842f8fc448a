"""The installed SIP engine's capabilities, as `sipcli engine` reports them (asked once per test session)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile

from tests.support.sipcli import SIPCLI


@functools.cache
def installed_capabilities() -> dict:
    with tempfile.TemporaryDirectory() as config_dir:
        result = subprocess.run([*SIPCLI, "engine"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "SIPCLI_CONFIG_DIR": config_dir}, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        return {}
    return lines[-1]["data"].get("capabilities", {})


def missing(*requirements: str) -> list[str]:
    """Requirements like "ipv6", "chat_only_offers", "codec:opus", "tls:TLSv1.3", "calls:100", "max_packet:16384"
    the engine lacks."""
    capabilities = installed_capabilities()
    lacking = []
    for requirement in requirements:
        kind, _, value = requirement.partition(":")
        if kind == "codec":
            ok = any(codec.lower().startswith(value.lower() + "/") for codec in capabilities.get("codecs", ()))
        elif kind == "tls":
            ok = value in capabilities.get("tls_versions", ())
        elif kind == "calls":
            ok = capabilities.get("max_calls", 0) >= int(value)
        elif value:  # a size: "sdp_buffer:8192", "max_packet:16384"
            ok = capabilities.get(kind, 0) >= int(value)
        else:
            ok = bool(capabilities.get(kind))
        if not ok:
            lacking.append(requirement)
    return lacking
