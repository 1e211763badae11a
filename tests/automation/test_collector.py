"""The collector pause around program evaluation (automation/collector.py): off while any
evaluation holds it, restored to what it was by the last one out, even when a program raises;
the run's cyclic garbage freed once at the end."""

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from automation.collector import held, paused


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class Node:
    def __init__(self) -> None:
        self.me = self


def test_off_while_held_and_restored_after_even_on_an_exception(collector_enabled: None) -> None:
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused():
        assert not gc.isenabled()
        raise RuntimeError("the program failed")
    assert gc.isenabled()


def test_already_off_stays_off(collector_enabled: None) -> None:
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()


def test_overlapping_holds_restore_once_the_last_one_ends(collector_enabled: None) -> None:
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        with paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with paused():
        pass
    assert not gc.isenabled()  # the other evaluation still holds it
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_the_runs_cycles_are_freed_when_it_ends(collector_enabled: None) -> None:
    def program() -> weakref.ref[Node]:
        return weakref.ref(Node())  # a cycle: only the collector can free it

    with paused():
        ref = program()
        assert ref() is not None
    assert ref() is None
    assert held(lambda: gc.isenabled())() is False
