"""The server's concurrency policy, in one place.

The server (`httpserver`) reads every request whole before a thread takes it, and holds up
to the settings' `max_connections` connections (one silent for `CHANNEL_TIMEOUT` seconds is
closed), so slow or idle clients cost a socket, not a thread. What can still hold a
request thread for long is bounded here, by refusing the excess at once (503 with
`Retry-After`) rather than queueing it behind the threads that uploads need:

- URL downloads (`?fileurl=` and multi-input URLs): each may take the settings' `url_timeout`
  seconds on a slow remote; at most `url_downloads` run at once.
- Model-file downloads (`/api/get_model_files`, megabytes): a client that does not read
  holds its slot (not a thread: the server sends) until the connection times out; at most
  `MODEL_FILE_DOWNLOADS` at once.

And about as many requests run at once as there are cores: more only take turns on the same
cores, each finishing later. The server starts about that many app calls at once, the next
one when one ends, on the thread that just finished (a call that has waited
`CALL_PATIENCE` seconds, say behind slow URL downloads, takes one of the spare threads of
the settings' `server_threads`); and inside the app, the model's runs (decode, pre-process,
infer) take turns (`model_runs`) whichever server runs it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from . import machine
from .safety.errors import InputError

# Seconds a connection may stay silent (no byte read or sent) before the server closes it.
CHANNEL_TIMEOUT = 30
# Seconds an app call waits for a core before it takes a spare request thread.
CALL_PATIENCE = 0.1
MODEL_FILE_DOWNLOADS = 2


class Busy(InputError):
    """Every slot of a `Gate` is taken: try again shortly (503, `Retry-After`)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Too many {what} are running; try again shortly.", 503)


class Gate:
    """At most `slots` holders at once; one more is refused (`Busy`), never queued."""

    def __init__(self, slots: int, what: str) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._what = what

    def enter(self) -> None:
        """Take a slot or raise `Busy`; pair with `leave`."""
        if not self._slots.acquire(blocking=False):
            raise Busy(self._what)

    def leave(self) -> None:
        self._slots.release()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """A slot for the `with` block."""
        self.enter()
        try:
            yield
        finally:
            self.leave()


def model_runs() -> threading.BoundedSemaphore:
    """The turns at the model: one per usable core (a container's CPU limit counts)."""
    return threading.BoundedSemaphore(machine.usable_cores())
