"""The shared state of a gentle shutdown (`lifecycle.Draining`) and the bounded slots of the
concurrency policy (`concurrency.Gate`)."""

from __future__ import annotations

import threading

import pytest

from modelhubapi.concurrency import Busy, Gate
from modelhubapi.lifecycle import Draining


def test_quiet_only_once_no_request_is_inside():
    draining = Draining()
    draining.enter()
    assert not draining.wait_quiet(timeout=0.2, quiet=0.05)  # one is still inside
    leaving = threading.Timer(0.05, draining.leave)
    leaving.start()
    assert draining.wait_quiet(timeout=5, quiet=0.05)
    leaving.join()
    assert (draining.inside, draining.entered) == (0, 1)


def test_a_request_entering_during_the_quiet_moment_restarts_the_wait():
    draining = Draining()
    arrivals = threading.Timer(0.02, lambda: (draining.enter(), draining.leave()))
    arrivals.start()
    assert draining.wait_quiet(timeout=5, quiet=0.1)
    arrivals.join()
    assert draining.entered == 1


def test_a_gate_refuses_one_more_than_its_slots_and_frees_them():
    gate = Gate(2, "things")
    with gate.slot(), gate.slot():
        with pytest.raises(Busy) as refused:
            gate.enter()
        assert refused.value.status == 503
        assert refused.value.message == "Too many things are running; try again shortly."
    with gate.slot():  # free again
        pass
