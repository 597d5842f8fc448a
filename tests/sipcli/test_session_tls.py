"""The library's side of sessions over TLS: a session whose first hop needs TLS, on an engine without a TLS
transport, is refused at connect() with a reason that says so (not pjsip's PJSIP_EUNSUPTRANSPORT later)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LIBRARY_CALLER = """
import asyncio, json
from sipcli.account import BonjourAccount
from sipcli.application import SIPApplication
from sipcli.configuration import MemoryStorage
from sipcli.session import Session, SessionError

async def main():
    await SIPApplication().start(MemoryStorage(), engine_options={"local_ip": "127.0.0.1", "tls_port": None},
                                 accounts=["bonjour@local"])
    account = BonjourAccount()
    while account.pj_account is None:
        await asyncio.sleep(0.01)
    refused = []
    for uri in ("sips:bob@127.0.0.1:9", "sip:bob@127.0.0.1:9;transport=tls"):
        try:
            Session(account).connect(uri)
        except SessionError as error:
            refused.append(str(error))
    await SIPApplication().stop()
    print(json.dumps(refused))

asyncio.run(main())
"""


def test_connect_over_tls_without_a_tls_transport_is_refused_at_once():
    pytest.importorskip("pjsua2")
    done = subprocess.run([sys.executable, "-c", LIBRARY_CALLER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    refused = json.loads(done.stdout.splitlines()[-1])
    assert len(refused) == 2
    assert all("needs a TLS transport and the engine has none" in reason for reason in refused)
