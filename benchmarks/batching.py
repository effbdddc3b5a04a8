"""Dynamic batching of concurrent requests: a lever the benchmark measures (`--levers`).

`BatchingModel` wraps the package's `inference.Model`: each request still loads and
preprocesses its image in its own thread, then hands the tensor to one inference thread that
runs whatever has queued up as a single batch. A batch is run as soon as every request in
flight has queued its tensor (so a lone request never waits) or `max_batch` is reached, and
never later than `max_wait` seconds after its first tensor arrived.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from time import perf_counter
from typing import Any

import numpy as np


class Batcher:
    """One thread running `session` on batches of the [1, ...] tensors given to `run`."""

    def __init__(self, session: Any, max_batch: int = 8, max_wait: float = 0.005):
        self._session = session
        self._input = session.get_inputs()[0].name
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.Queue[tuple[np.ndarray, Future]] = queue.Queue()
        self._in_flight = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, name="batcher", daemon=True).start()

    def announce(self) -> None:
        """A request has started preprocessing: a batch forming now may wait for it."""
        with self._lock:
            self._in_flight += 1

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The session's output for one announced request's tensor (blocks until it ran)."""
        future: Future = Future()
        self._queue.put((tensor, future))
        return future.result()

    def withdraw(self) -> None:
        """An announced request ends (answered, or failed before reaching `run`)."""
        with self._lock:
            self._in_flight -= 1

    def _serve(self) -> None:
        while True:
            items = [self._queue.get()]
            deadline = perf_counter() + self._max_wait
            while len(items) < self._max_batch:
                with self._lock:
                    waiting_for_more = self._in_flight > len(items)
                remaining = deadline - perf_counter()
                if not waiting_for_more or remaining <= 0:
                    break
                try:
                    items.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            self._run_batch(items)

    def _run_batch(self, items: list[tuple[np.ndarray, Future]]) -> None:
        try:
            batch = np.concatenate([tensor for tensor, _ in items])
            output = self._session.run(None, {self._input: batch})[0]
        except Exception as error:
            for _, future in items:
                future.set_exception(error)
            return
        for index, (_, future) in enumerate(items):
            future.set_result(output[index : index + 1])


class BatchingModel:
    """The package's model with its inferences batched across concurrent requests."""

    def __init__(self, model: Any, max_batch: int = 8, max_wait: float = 0.005):
        self._model = model
        self._processor = model._imageProcessor
        self._batcher = Batcher(model.session, max_batch, max_wait)

    def infer(self, input: Any) -> Any:
        self._batcher.announce()
        try:
            tensor = self._processor.loadAndPreprocess(input)
            probabilities = self._batcher.run(tensor)
        finally:
            self._batcher.withdraw()
        return self._processor.computeOutput(probabilities)
