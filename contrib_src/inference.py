"""SqueezeNet 1.0 as a ModelHub model: ONNX Runtime sessions shared by every request.

The sessions are created once, here, because creating one (graph optimisation, kernel set-up)
costs far more than one inference; ONNX Runtime's `run` is thread-safe, so the web service's
request threads all use them concurrently.

Session options, chosen for the 2-core machines this runs on:
- graph optimisation ORT_ENABLE_ALL (conv + ReLU fusion, constant folding, layout changes);
- sequential execution: SqueezeNet is a chain, parallel branches (the fire expands) are too
  small to pay for scheduling across operators;
- 2 intra-op threads with spinning off. Measured on this 2-core machine (ONNX Runtime alone,
  batch 1, configurations interleaved within each run; ratios, as absolute times drift):
  2 threads were 1.3-1.7x faster than 1 thread when the cores were free (spinning a little
  faster still); with the cores busy (load ~4), 2 spinning threads were 1.9x *slower* than
  1 thread while 2 non-spinning ones matched it.
- ...but only while there are cores to spare. Requests that run at the same time already
  keep every core busy, and splitting each of them across threads then only adds hand-offs:
  with 4 concurrent requests, a session of 1 thread gave 5-6 % more images/s (through the
  Python API and through the server alike) at the same single-request latency. So the model
  keeps a second session of 1 thread, and a request takes it when the requests already
  running would not leave it `INTRA_OP_THREADS` cores. The second session costs about
  19 MB and 0.01 s to create.

The model file is `model/model.onnx` (or a variant's file) when the init step built it; a
package fetched without that step builds the same model in memory from its checked weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator

import onnxruntime as ort

from modelhublib.model import ModelBase
from processing import ImageProcessor
from squeezenet.modelfiles import missing_model, model_path, requested_variant

logger = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_PATH = os.path.join(HERE, "model", "config.json")
INTRA_OP_THREADS = 2
_CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # "<quota> <period>", or "max <period>"


def usable_cores() -> int:
    """The cores this process may keep busy: its CPU affinity, capped by a container's CPU
    limit (a share of time that leaves every host core visible)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open(_CGROUP_CPU_MAX, encoding="ascii") as file:
            quota, period = file.read().split()[:2]
        cores = min(cores or 1, -(-int(quota) // int(period)))
    except (OSError, ValueError):  # no cgroup v2 limit ("max", or another system)
        pass
    return max(1, cores or 1)


CORES = usable_cores()


def session_options(intra_op_threads: int = INTRA_OP_THREADS) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: on 2 shared cores a spinning thread steals
    # the core the other one (or another request) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def model_source(variant: str) -> str | bytes:
    """The variant's model file, or, when it was not built, the model built in memory."""
    path = model_path(variant)
    if os.path.isfile(path):
        return path
    try:
        import build  # needs the `onnx` package, which serving from a built file does not
    except ImportError:  # a serving-only install: the file must be built elsewhere
        raise missing_model(variant) from None

    started = time.perf_counter()
    data = build.model_bytes(variant)
    logger.info(
        "model/%s not found: built the %s model from the weights in %.2f s",
        os.path.basename(path),
        variant,
        time.perf_counter() - started,
    )
    return data


def create_session(
    source: str | bytes, intra_op_threads: int = INTRA_OP_THREADS
) -> ort.InferenceSession:
    """The CPU session for a model file's path or a serialized model."""
    return ort.InferenceSession(
        source, sess_options=session_options(intra_op_threads), providers=["CPUExecutionProvider"]
    )


class Model(ModelBase):
    """`infer(path)` -> top-5 label list for the image at `path`."""

    def __init__(self, variant: str | None = None):
        super().__init__()
        with open(CONFIG_PATH, encoding="utf-8") as handle:
            config = json.load(handle)
        self._imageProcessor = ImageProcessor(config)
        self.variant = variant or requested_variant()
        source = model_source(self.variant)
        self.session = create_session(source)
        self.session_when_busy = create_session(source, intra_op_threads=1)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self._running = 0
        self._running_lock = threading.Lock()

    def infer(self, input):
        batch = self._imageProcessor.loadAndPreprocess(input)
        with self._session_for_one_run() as session:
            probabilities = session.run([self.output_name], {self.input_name: batch})[0]
        return self._imageProcessor.computeOutput(probabilities)

    @contextlib.contextmanager
    def _session_for_one_run(self) -> Iterator[ort.InferenceSession]:
        """The multi-threaded session if the runs already going leave it the cores it
        splits work across, else the single-threaded one (see the module's docstring)."""
        with self._running_lock:
            self._running += 1
            cores_to_spare = self._running * INTRA_OP_THREADS <= CORES
        try:
            yield self.session if cores_to_spare else self.session_when_busy
        finally:
            with self._running_lock:
                self._running -= 1
