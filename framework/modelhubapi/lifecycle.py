"""Shutting down gently: the state a SIGTERM starts, shared by the app and the server.

From the moment draining begins, `/api/ready` answers 503 (a load balancer stops sending)
and every other request that reaches the app is refused with a quick 503 and `Retry-After`,
while the requests already inside the app run to their answer. The server ends once none is
left (or at a deadline), well inside the 10 s `docker stop` allows.
"""

from __future__ import annotations

import threading
import time


class Draining:
    """Whether the service is draining, and how many requests are inside the app now."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._inside = 0
        self._entered = 0  # requests that ever entered: tells a quiet moment from a busy one
        self.active = False

    @property
    def inside(self) -> int:
        """Requests inside the app now."""
        return self._inside

    @property
    def entered(self) -> int:
        """Requests that ever entered the app: a change tells of activity."""
        return self._entered

    def begin(self) -> None:
        """Start draining: from now on new requests are refused."""
        self.active = True

    def enter(self) -> None:
        """A request entered the app (pair with `leave`)."""
        with self._changed:
            self._inside += 1
            self._entered += 1

    def leave(self) -> None:
        """A request left the app."""
        with self._changed:
            self._inside -= 1
            self._changed.notify_all()

    def wait_quiet(self, timeout: float, quiet: float = 0.1) -> bool:
        """Wait until no request has been inside the app for `quiet` seconds (a request the
        server has read but not yet handed to the app gets its refusal in that time), or
        until `timeout`; True if it went quiet."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self._inside:
                    self._changed.wait(left)
                    continue
                entered = self._entered
                self._changed.wait(min(quiet, left))
                if not self._inside and self._entered == entered:
                    return True
