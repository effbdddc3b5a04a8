"""The one exception type every input-safety rule raises.

Entry points (REST routes, the Python API, the CLI) catch it and show `message`
to the caller as it is, so a message must never hold a server path, an
internal address or an exception repr; `status` is the HTTP status to answer with.
"""

from __future__ import annotations


class InputError(Exception):
    """A problem with the caller's input.

    `message` is safe to show to the user; `status` is the HTTP status.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status
