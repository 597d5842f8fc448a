"""The Singleton metaclass: one instance per class, initialised once, forgotten by reset_instance()."""

import threading

from sipcli.singleton import Singleton


class _Counter(metaclass=Singleton):
    created = 0

    def __init__(self, value: int = 0) -> None:
        type(self).created += 1
        self.value = value


def test_one_instance_initialised_once_until_reset():
    _Counter.reset_instance()
    _Counter.created = 0
    first = _Counter(1)
    assert _Counter(2) is first and first.value == 1 and _Counter.created == 1
    _Counter.reset_instance()
    assert _Counter(3) is not first and _Counter().value == 3 and _Counter.created == 2


def test_threads_racing_get_the_same_instance():
    _Counter.reset_instance()
    _Counter.created = 0
    barrier = threading.Barrier(8)
    seen = []

    def make() -> None:
        barrier.wait()
        seen.append(_Counter())

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(seen) == 8 and len({id(instance) for instance in seen}) == 1 and _Counter.created == 1


def test_a_subclass_has_its_own_instance():
    class Child(_Counter):
        pass

    assert Child() is not _Counter() and Child() is Child()


def test_a_class_reset_can_do_more_work():
    from sipcli.account import AccountManager
    from sipcli.notification import NotificationCenter

    manager = AccountManager()
    manager._started = True
    NotificationCenter().add_observer(manager, name="SIPSingletonTest")
    AccountManager.reset_instance()
    assert AccountManager() is not manager
    assert all(entry[0] is not manager for entry in NotificationCenter()._observers)
