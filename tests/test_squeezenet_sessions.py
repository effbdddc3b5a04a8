"""The model's two ONNX Runtime sessions: several threads for a run while cores are free, one
thread for runs that start while the cores are taken by others."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from squeezenet_support import CONTRIB_DIR, ensure_built

ensure_built()

import inference  # noqa: E402

BAGEL = os.path.join(CONTRIB_DIR, "sample_data", "bagel.jpg")


class RecordingSession:
    """A real session that notes each run under `name`; a run can be held until released."""

    def __init__(self, session, name: str, runs: list[str]):
        self._session, self._name, self._runs = session, name, runs
        self.hold: threading.Event | None = None
        self.started = threading.Event()
        self.error: Exception | None = None

    def run(self, *args, **kwargs):
        self._runs.append(self._name)
        self.started.set()
        if self.hold is not None:
            assert self.hold.wait(timeout=30)
        if self.error is not None:
            raise self.error
        return self._session.run(*args, **kwargs)


@pytest.fixture
def model(monkeypatch):
    """The fp32 model on 2 cores, its sessions recording which one each run took."""
    monkeypatch.setattr(inference, "CORES", 2)
    model = inference.Model("fp32")
    model.runs = []
    model.session = RecordingSession(model.session, "multi", model.runs)
    model.session_when_busy = RecordingSession(model.session_when_busy, "single", model.runs)
    return model


def test_the_sessions_have_the_thread_counts_they_are_named_for():
    model = inference.Model("fp32")
    assert model.session.get_session_options().intra_op_num_threads == inference.INTRA_OP_THREADS
    assert model.session_when_busy.get_session_options().intra_op_num_threads == 1


def test_a_run_on_free_cores_takes_the_multithreaded_session(model):
    assert model.infer(BAGEL)[0]["label"] == "bagel, beigel"
    assert model.infer(BAGEL)[0]["label"] == "bagel, beigel"
    assert model.runs == ["multi", "multi"]


def test_a_run_while_another_holds_the_cores_takes_the_single_threaded_session(model):
    model.session.hold = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(model.infer, BAGEL)
        assert model.session.started.wait(timeout=30)
        second = model.infer(BAGEL)  # while the first run is held in its session
        model.session.hold.set()
        assert first.result(timeout=30) == second
    assert model.runs == ["multi", "single"]
    model.infer(BAGEL)  # both runs are over: the cores are free again
    assert model.runs[-1] == "multi"


def test_a_failed_run_gives_its_cores_back(model):
    model.session.error = RuntimeError("the run failed")
    with pytest.raises(RuntimeError):
        model.infer(BAGEL)
    model.session.error = None
    model.infer(BAGEL)
    assert model.runs == ["multi", "multi"]
