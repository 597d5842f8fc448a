"""sipcli.bonjour: neighbour bookkeeping, find_neighbour, and real mDNS publishing/browsing in a private netns."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sipcli import bonjour
from sipcli.account import ContactURI
from sipcli.notification import NotificationCenter
from tests.support.netns import private_netns

pytestmark = pytest.mark.netns


class FakeAccount:
    """What BonjourServices reads from a BonjourAccount."""

    def __init__(self, user: str, transports: dict[str, int], display_name: str | None = None,
                 publish: bool = False, browse: bool = False) -> None:
        self.id = f"{user}@local"
        self.notification_id = f"account/{user}"
        self.contact = ContactURI(f"{user}@127.0.0.1", transports)
        self.display_name = display_name
        self.discovery = type("Discovery", (), {"publish": publish, "browse": browse})()


class Recorder:
    def __init__(self, sender: object) -> None:
        self.events: list[tuple[str, dict]] = []
        NotificationCenter().add_observer(self, sender=sender)

    def handle_notification(self, notification) -> None:
        self.events.append((notification.name, dict(vars(notification.data))))

    def close(self) -> None:
        NotificationCenter().purge_observer(self)


@pytest.fixture
def recorded():
    recorders: list[Recorder] = []

    def start(sender: object) -> Recorder:
        recorders.append(Recorder(sender))
        return recorders[-1]

    yield start
    for recorder in recorders:
        recorder.close()


def test_discovery_is_off_by_default():
    async def main() -> None:
        assert bonjour.activate(FakeAccount("quiet", {"udp": 5070})) is None
        assert bonjour.deactivate(FakeAccount("quiet", {"udp": 5070})) is None

    asyncio.run(main())


def test_neighbour_grouping_update_and_removal(recorded):
    async def main() -> None:
        account = FakeAccount("me", {"udp": 5070}, browse=True)
        services = bonjour.BonjourServices(account, publish=False, browse=True)
        events = recorded(account)
        udp, tcp = "alice._sipuri._udp.local.", "alice._sipuri._tcp.local."
        services._add(tcp, "abc@10.0.0.2", "alice", "Alice", "10.0.0.2", "tcp", "sip:abc@10.0.0.2:6001;transport=tcp")
        services._add(udp, "abc@10.0.0.2", "alice", "Alice", "10.0.0.2", "udp", "sip:abc@10.0.0.2:6000")
        services._add(udp, "abc@10.0.0.2", "alice", "Alice", "10.0.0.2", "udp", "sip:abc@10.0.0.2:6000")  # no change
        assert [name for name, _ in events.events] == ["BonjourAccountDidAddNeighbour",
                                                       "BonjourAccountDidUpdateNeighbour"]
        added, updated = (data for _, data in events.events)
        assert added["uri"] == "sip:abc@10.0.0.2:6001;transport=tcp" and added["display_name"] == "Alice"
        assert updated["uri"] == "sip:abc@10.0.0.2:6000" and set(updated["uris"]) == {"udp", "tcp"}
        services._service_changed("_sipuri._udp.local.", udp, "Removed")
        services._service_changed("_sipuri._tcp.local.", tcp, "Removed")
        names = [name for name, _ in events.events[2:]]
        assert names == ["BonjourAccountDidUpdateNeighbour", "BonjourAccountDidRemoveNeighbour"]
        assert events.events[-1][1] == {"neighbour": "abc@10.0.0.2", "name": "alice", "display_name": "Alice"}
        assert services.neighbours == {}

    asyncio.run(main())


def test_find_neighbour_now_later_or_never():
    async def main() -> None:
        account = FakeAccount("me2", {"udp": 5070})
        services = bonjour.BonjourServices(account, publish=False, browse=True)
        bonjour._active[account] = services
        try:
            services._add("bob._sipuri._udp.local.", "b@10.0.0.3", "bob", None, "10.0.0.3", "udp", "sip:b@10.0.0.3")
            assert (await bonjour.find_neighbour(account, "Bob", 0.1)).uri == "sip:b@10.0.0.3"
            later = asyncio.ensure_future(bonjour.find_neighbour(account, "Carol", 2))
            await asyncio.sleep(0.05)
            services._add("c._sipuri._udp.local.", "c@10.0.0.4", "c", "carol", "10.0.0.4", "udp", "sip:c@10.0.0.4")
            assert (await later).id == "c@10.0.0.4"
            assert await bonjour.find_neighbour(account, "dave", 0.1) is None
        finally:
            bonjour._active.pop(account)

    asyncio.run(main())


SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from sipcli import bonjour
    from sipcli.notification import NotificationCenter
    from tests.sipcli.test_bonjour import FakeAccount, Recorder

    async def until(predicate, timeout=8):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def main():
        alice = FakeAccount("alice1", {"udp": 5070, "tcp": 5071}, "alice", publish=True, browse=True)
        bob = FakeAccount("bob1", {"udp": 5080})
        seen_by_alice, seen_by_bob = Recorder(alice), Recorder(bob)
        published = bonjour.BonjourServices(alice, publish=True, browse=True)
        browser = bonjour.BonjourServices(bob, publish=False, browse=True)
        await asyncio.gather(published.start(), browser.start())
        await until(lambda: "tcp" in next(iter(browser.neighbours.values()), bonjour.Neighbour("", "", None, "")).uris)
        await published.stop()
        await until(lambda: not browser.neighbours)
        await browser.stop()
        print(json.dumps({"alice": seen_by_alice.events, "bob": seen_by_bob.events}))

    asyncio.run(main())
""")


def test_publish_browse_and_goodbye_on_loopback():
    pytest.importorskip("zeroconf")
    with private_netns() as prefix:
        result = subprocess.run([*prefix, sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30,
                                cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    alice_names = sorted(name for name, _ in events["alice"])  # publishing and browsing: never itself
    assert alice_names == ["BonjourAccountRegistrationDidEnd"] * 2 + ["BonjourAccountRegistrationDidSucceed"] * 2
    assert {data["uri"] for name, data in events["alice"] if name.endswith("DidSucceed")} == {
        "sip:alice1@127.0.0.1:5070", "sip:alice1@127.0.0.1:5071;transport=tcp"}
    bob_names = [name for name, _ in events["bob"]]
    assert bob_names[0] == "BonjourAccountDidAddNeighbour" and bob_names[-1] == "BonjourAccountDidRemoveNeighbour"
    added = events["bob"][0][1]
    assert added["neighbour"] == "alice1@127.0.0.1" and added["name"] == "alice" and added["host"] == "127.0.0.1"
    assert added["display_name"] == "alice"
