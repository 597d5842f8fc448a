"""Account lifecycle as the reference specifies it, in a running library-driven process (tests/support/peer.py):
saving ``enabled`` / ``registration.enabled`` (de)activates and (un)registers, against a real kamailio registrar;
SIPAccountDidActivate comes when the account can place calls."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.kamailio import USERS, registrar
from tests.support.peer import LibraryPeer

pytestmark = pytest.mark.peers

pytest.importorskip("pjsua2")

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    server = registrar(tmp_path_factory.mktemp("kamailio"))
    yield server
    server.stop()


def _write_config(config_dir, accounts: dict) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.json"
    path.write_text(json.dumps({"accounts": accounts}))
    os.chmod(path, 0o600)


def test_saving_enabled_and_registration_enabled_activates_and_registers(tmp_path, kamailio):
    config = tmp_path / "alice"
    _write_config(config, {ALICE: {"enabled": False, "auth": {"password": USERS["alice"]},
                                   "sip": {"outbound_proxy": kamailio.proxy("udp"), "register_interval": 60}}})
    peer = LibraryPeer(config, "--all-accounts")
    try:
        peer.wait_for("SIPApplicationDidStart")
        assert not peer.find("SIPAccountDidActivate", sender=f"account/{ALICE}")
        assert "alice" not in kamailio.location()

        mark = peer.mark()
        peer.run(f"alice = AccountManager().get_account({ALICE!r}); alice.enabled = True; alice.save()")
        peer.wait_for("SIPAccountDidActivate", sender=f"account/{ALICE}", start=mark)
        peer.wait_for("SIPAccountRegistrationDidSucceed", start=mark)
        assert "alice" in kamailio.location()

        mark = peer.mark()
        peer.run("alice.registration.enabled = False; alice.save()")
        ended = peer.wait_for("SIPAccountRegistrationDidEnd", start=mark)
        assert ended["data"]["code"] == 200
        assert "alice" not in kamailio.location()
        assert not peer.find("SIPAccountDidDeactivate", start=mark)  # still active: it just does not register

        mark = peer.mark()
        peer.run("alice.registration.enabled = True; alice.save()")
        peer.wait_for("SIPAccountRegistrationDidSucceed", start=mark)
        assert "alice" in kamailio.location()

        mark = peer.mark()
        peer.run("alice.enabled = False; alice.save()")
        peer.wait_for("SIPAccountDidDeactivate", sender=f"account/{ALICE}", start=mark)
        peer.wait_for("SIPAccountRegistrationDidEnd", start=mark)
        assert "alice" not in kamailio.location()
    finally:
        assert peer.stop() == 0


def test_a_call_placed_from_the_activation_handler_works(tmp_path):
    callee = LibraryPeer(tmp_path / "callee", "--auto-answer")
    caller = LibraryPeer(tmp_path / "caller")
    try:
        address = callee.wait_for("SIPEngineDidStart")["data"]["transports"]["udp"]
        callee.wait_for("SIPApplicationDidStart")
        caller.wait_for("SIPAccountDidActivate")
        mark = caller.mark()
        caller.run("account.enabled = False; account.save()")
        caller.wait_for("SIPAccountDidDeactivate", start=mark)
        caller.run("class CallOnActivate:\n"
                   "    def handle_notification(self, notification):\n"
                   "        session = Session(notification.sender)\n"
                   f"        session.connect({f'sip:bob@{address}'!r}, audio=True)\n"
                   "from sipcli.notification import NotificationCenter\n"
                   "NotificationCenter().add_observer(CallOnActivate(), name='SIPAccountDidActivate')")
        mark = caller.mark()
        caller.run("account.enabled = True; account.save()")
        caller.wait_for("SIPAccountDidActivate", start=mark)
        started = caller.wait_for("SIPSessionDidStart", start=mark)
        assert not caller.find("SIPSessionDidFail", start=mark)
        assert started["data"]["streams"] == ["audio"]
        callee.wait_for("SIPSessionDidStart")
        caller.run("result = sessions[-1].end()")
        caller.wait_for("SIPSessionDidEnd", start=mark)
        # the same through the methods themselves (what the application does at start and stop)
        mark = caller.mark()
        caller.run("account.deactivate(); account.activate()")
        caller.wait_for("SIPSessionDidStart", start=mark)
        assert not caller.find("SIPSessionDidFail", start=mark)
        caller.run("result = sessions[-1].end()")
        caller.wait_for("SIPSessionDidEnd", start=mark)
    finally:
        assert caller.stop() == 0
        assert callee.stop() == 0
