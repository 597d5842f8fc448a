"""P2P discovery through the CLI: `listen --advertise`, `neighbours`, `call bonjour:NAME` in a private netns."""

from __future__ import annotations

import signal

import pytest

from tests.support.netns import private_netns
from tests.support.sipcli import SIPCLIProcess

pytestmark = [pytest.mark.peers, pytest.mark.netns]

pytest.importorskip("pjsua2")
pytest.importorskip("zeroconf")

LOOPBACK = ("--local-ip", "127.0.0.1")


@pytest.fixture
def run(tmp_path):
    """Start sipcli processes inside one private network namespace; stopped before it is deleted."""
    processes: list[SIPCLIProcess] = []
    with private_netns() as prefix:

        def start(*args: str) -> SIPCLIProcess:
            process = SIPCLIProcess(tmp_path / "config", *args, prefix=prefix)
            processes.append(process)
            return process

        try:
            yield start
        finally:
            for process in processes:
                process.stop()


def test_advertised_listener_is_found_called_and_removed(run):
    browser = run("neighbours", *LOOPBACK, "--timeout", "20")
    browser.wait_for("SIPApplicationDidStart")
    listener = run("listen", *LOOPBACK, "--advertise", "alice", "--auto-answer", "--count", "1")
    uris = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]
    added = browser.wait_for("BonjourAccountDidAddNeighbour")["data"]
    assert added["name"] == "alice" and added["display_name"] == "alice" and added["host"] == "127.0.0.1"
    assert added["uri"] in uris.values()  # udp or tcp, whichever service was resolved first
    listener.wait_for("BonjourAccountRegistrationDidSucceed")

    caller = run("call", "bonjour:alice", *LOOPBACK, "--timeout", "5", "--duration", "0.5")
    assert caller.wait() == 0, caller.stderr()
    assert listener.wait() == 0, listener.stderr()
    caller.wait_for("SIPSessionDidStart")
    listener.wait_for("SIPSessionDidStart")
    assert {e["data"]["transport"] for e in listener.find("BonjourAccountRegistrationDidEnd")} == {"udp", "tcp"}

    removed = browser.wait_for("BonjourAccountDidRemoveNeighbour", timeout=5)["data"]
    assert removed["neighbour"] == added["neighbour"]
    both = [e["data"] for e in browser.events if e["name"] in ("BonjourAccountDidAddNeighbour",
                                                                "BonjourAccountDidUpdateNeighbour")
            and e["data"]["uris"] == uris]
    assert both and both[0]["uri"] == uris["udp"], browser.events  # one neighbour, both transports, udp preferred
    browser.signal(signal.SIGINT)
    assert browser.wait() == 130
    assert browser.summary["neighbours"] == 0 and browser.summary["seen"] == 1


def test_neighbours_expect(run):
    listener = run("listen", *LOOPBACK, "--advertise", "bob")
    listener.wait_for("BonjourAccountRegistrationDidSucceed")
    found = run("neighbours", *LOOPBACK, "--expect", "1", "--timeout", "5")
    assert found.wait() == 0, found.stderr()
    assert [e["data"]["name"] for e in found.find("BonjourAccountDidAddNeighbour")] == ["bob"]
    assert found.summary["neighbours"] == 1
    # long enough to find bob even on a loaded machine (it was 1.5 s: bob was missed beside a CPU hog)
    missing = run("neighbours", *LOOPBACK, "--expect", "2", "--timeout", "5")
    assert missing.wait() == 3
    assert missing.summary["exit_code"] == 3 and missing.summary["neighbours"] == 1


def test_unknown_neighbour_exits_3(run):
    listener = run("listen", *LOOPBACK, "--advertise", "alice")
    listener.wait_for("BonjourAccountRegistrationDidSucceed")
    caller = run("call", "bonjour:nobody", *LOOPBACK, "--timeout", "1.5")
    assert caller.wait() == 3
    assert "nobody" in caller.summary["reason"] and not caller.find("SIPSessionNewOutgoing")
    assert not listener.find("SIPSessionNewIncoming")


def test_plain_p2p_call_does_not_browse(run):
    """An ordinary P2P call and listen never start mDNS: no Bonjour notification at all."""
    listener = run("listen", *LOOPBACK, "--auto-answer", "--count", "1")
    uri = listener.wait_for("SIPCLIListenDidStart")["data"]["uris"]["udp"]
    caller = run("call", uri, *LOOPBACK, "--duration", "0.2")
    assert caller.wait() == 0 and listener.wait() == 0
    for process in (caller, listener):
        assert not [name for name in process.names() if name.startswith("Bonjour")]


@pytest.mark.parametrize("args", [("call", "bonjour:", *LOOPBACK),
                                  ("call", "bonjour:alice", "--from", "a@example.test"),
                                  ("listen", "--advertise", "x", "--from", "a@example.test"),
                                  ("listen", "--advertise", "x" * 64)])
def test_usage_errors(tmp_path, args):
    process = SIPCLIProcess(tmp_path / "config", *args)
    assert process.wait() == 2
    assert len(process.stderr().strip().splitlines()) == 1, process.stderr()
    process.stop()
