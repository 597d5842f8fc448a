"""The notification bus: one rule per test."""

import logging
import threading
from datetime import UTC, datetime

import pytest

from sipcli.notification import Any, Notification, NotificationCenter, NotificationData, UnknownSender


class Recorder:
    def __init__(self, log: list | None = None, label: str = "") -> None:
        self.log = log if log is not None else []
        self.label = label

    def handle_notification(self, notification: Notification) -> None:
        self.log.append((self.label, notification.name, notification.sender))


class Sender:
    pass


@pytest.fixture
def center():
    """The shared center; every observer a test registers is purged afterwards."""
    nc = NotificationCenter()
    registered = []
    original = nc.add_observer

    def add_observer(observer, name=Any, sender=Any):
        registered.append(observer)
        original(observer, name, sender)

    nc.add_observer = add_observer
    yield nc
    del nc.add_observer
    for observer in registered:
        nc.purge_observer(observer)


def test_singleton():
    assert NotificationCenter() is NotificationCenter()


def test_notification_data_and_notification():
    data = NotificationData(code=200, reason="OK")
    assert data.code == 200 and data.reason == "OK"
    assert data == NotificationData(code=200, reason="OK")
    assert "code=200" in repr(data)
    notification = Notification("X", data=data)
    assert notification.sender is UnknownSender
    assert notification.timestamp.tzinfo is UTC
    assert abs((datetime.now(UTC) - notification.timestamp).total_seconds()) < 5


def test_post_defaults(center):
    rec = Recorder()
    sender = Sender()
    center.add_observer(rec, sender=sender)
    received = []
    rec.handle_notification = received.append
    center.post_notification("Plain", sender)
    assert received[0].data == NotificationData()


def test_delivery_in_registration_order(center):
    log = []
    sender = Sender()
    observers = [Recorder(log, str(i)) for i in range(5)]
    for observer in observers:
        center.add_observer(observer, sender=sender)
    center.post_notification("Ordered", sender)
    assert [entry[0] for entry in log] == ["0", "1", "2", "3", "4"]


def test_duplicate_registration_delivers_once(center):
    sender = Sender()
    rec = Recorder()
    center.add_observer(rec, sender=sender)
    center.add_observer(rec, sender=sender)
    center.post_notification("Once", sender)
    assert len(rec.log) == 1


def test_name_filter(center):
    sender = Sender()
    rec = Recorder()
    center.add_observer(rec, name="Wanted", sender=sender)
    center.post_notification("Other", sender)
    center.post_notification("Wanted", sender)
    assert [entry[1] for entry in rec.log] == ["Wanted"]


def test_sender_filter_and_any(center):
    a, b = Sender(), Sender()
    only_a, everything = Recorder(), Recorder()
    center.add_observer(only_a, sender=a)
    center.add_observer(everything, name="Ping")
    center.post_notification("Ping", a)
    center.post_notification("Ping", b)
    assert [entry[2] for entry in only_a.log] == [a]
    assert [entry[2] for entry in everything.log] == [a, b]


def test_observer_without_handler_is_rejected(center):
    with pytest.raises(TypeError):
        center.add_observer(object())


def test_remove_observer_and_keyerror(center):
    sender = Sender()
    rec = Recorder()
    center.add_observer(rec, name="N", sender=sender)
    with pytest.raises(KeyError):
        center.remove_observer(rec, name="Other", sender=sender)
    center.remove_observer(rec, name="N", sender=sender)
    with pytest.raises(KeyError):
        center.remove_observer(rec, name="N", sender=sender)
    center.post_notification("N", sender)
    assert rec.log == []


def test_discard_observer_is_silent(center):
    sender = Sender()
    rec = Recorder()
    center.discard_observer(rec, sender=sender)
    center.add_observer(rec, sender=sender)
    center.discard_observer(rec, sender=sender)
    center.post_notification("N", sender)
    assert rec.log == []


def test_purge_observer_removes_every_registration(center):
    sender = Sender()
    rec, other = Recorder(), Recorder()
    center.add_observer(rec, name="A", sender=sender)
    center.add_observer(rec, name="B", sender=sender)
    center.add_observer(other, sender=sender)
    center.purge_observer(rec)
    center.post_notification("A", sender)
    center.post_notification("B", sender)
    assert rec.log == []
    assert len(other.log) == 2


def test_raising_observer_is_logged_and_others_still_called(center, caplog):
    sender = Sender()
    log = []

    class Boom:
        def handle_notification(self, notification):
            raise RuntimeError("boom")

    center.add_observer(Recorder(log, "before"), sender=sender)
    center.add_observer(Boom(), sender=sender)
    center.add_observer(Recorder(log, "after"), sender=sender)
    with caplog.at_level(logging.ERROR, logger="sipcli.notification"):
        center.post_notification("Explode", sender)
    assert [entry[0] for entry in log] == ["before", "after"]
    assert any("Explode" in record.getMessage() and record.exc_info for record in caplog.records)


def test_post_inside_handler_is_delivered_after_current_delivery_fifo(center):
    sender = Sender()
    log = []

    class Reposter:
        def handle_notification(self, notification):
            log.append(("reposter", notification.name))
            if notification.name == "First":
                center.post_notification("Second", sender)
                center.post_notification("Third", sender)
                log.append(("reposter", "posted"))

    center.add_observer(Reposter(), sender=sender)
    center.add_observer(Recorder(log, "recorder"), sender=sender)
    center.post_notification("First", sender)
    assert log == [
        ("reposter", "First"), ("reposter", "posted"), ("recorder", "First", sender),
        ("reposter", "Second"), ("recorder", "Second", sender),
        ("reposter", "Third"), ("recorder", "Third", sender),
    ]


def test_observer_added_during_delivery_gets_later_notifications(center):
    sender = Sender()
    late = Recorder()

    class Adder:
        def handle_notification(self, notification):
            if notification.name == "One":
                center.add_observer(late, sender=sender)
                center.post_notification("Two", sender)

    center.add_observer(Adder(), sender=sender)
    center.post_notification("One", sender)
    assert [entry[1] for entry in late.log] == ["Two"]


def test_thread_safety_many_posters(center):
    sender = Sender()
    received = []
    lock = threading.Lock()

    class Counter:
        def handle_notification(self, notification):
            with lock:
                received.append(notification.data.seq)

    center.add_observer(Counter(), sender=sender)
    threads_count, per_thread = 8, 300
    barrier = threading.Barrier(threads_count)

    def worker(tid: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            center.post_notification("Tick", sender, NotificationData(seq=(tid, i)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(received) == sorted((t, i) for t in range(threads_count) for i in range(per_thread))
    for t in range(threads_count):  # each thread's posts arrive in the order it made them
        assert [i for tid, i in received if tid == t] == list(range(per_thread))
