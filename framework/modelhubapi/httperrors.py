"""The REST API's error answers: every error is JSON `{"error": ...}`.

4xx for the caller's input and for a broken package (400, which ModelHub's clients
expect), 503 when the server is busy or shutting down, 500 with a generic message for a
fault inside the model, logged in full here and never shown to the caller.
"""

from __future__ import annotations

import errno
import logging

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from .concurrency import Busy
from .pythonapi import ConfigError, ModelError
from .safety.errors import InputError

logger = logging.getLogger("modelhubapi.restapi")

INTERNAL_ERROR = "Internal server error."
SHUTTING_DOWN = "The server is shutting down; try again."
_HTTP_MESSAGES = {
    404: "Not found.",
    405: "Method not allowed.",
    503: SHUTTING_DOWN,
}
# A model's own error message is shown only if it cannot leak a server path or run on.
_MAX_DETAIL_CHARS = 200


def register_error_handlers(app: Flask) -> None:
    """Answer every error `app` raises as JSON (see the module's docstring); a 413 names
    the app's `MAX_CONTENT_LENGTH`."""
    app.register_error_handler(InputError, _input_error)
    app.register_error_handler(ConfigError, _config_error)
    app.register_error_handler(ModelError, _model_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OSError, _os_error)
    app.register_error_handler(Exception, _internal_error)


def _presentable(text: str) -> str | None:
    """`text` if it can be shown to a caller: short, one line, no path separators."""
    if not text or len(text) > _MAX_DETAIL_CHARS or "/" in text or "\\" in text:
        return None
    return text if text.isprintable() else None


def error_answer(message: str, status: int) -> Response:
    """JSON `{"error": message}` with `status`."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _input_error(error: InputError) -> Response:
    response = error_answer(error.message, error.status)
    if isinstance(error, Busy):
        response.headers["Retry-After"] = "1"
    return response


def _config_error(error: ConfigError) -> Response:
    # A broken package is a server-side problem, but ModelHub answers it with 400 and its
    # clients and tests expect that.
    logger.error("The model package is broken: %s", error)
    return error_answer(str(error), 400)


def _model_error(error: ModelError) -> Response:
    """What the model raised, as an answer.

    - NotImplementedError: 400 naming it, as ModelHub answers a model (or a loader) that does
      not implement what the request needs; its clients look for that name.
    - OSError / ValueError: the model could not read or accept this input (ModelHub's
      loaders raise IOError for both), a 400 with its message if that is presentable.
    - Anything else is a fault inside the model: 500, generic, logged in full.
    """
    cause = error.__cause__
    if isinstance(cause, NotImplementedError):
        logger.warning("The model does not implement this request: %r", cause)
        return error_answer("NotImplementedError: the model does not support this request.", 400)
    if isinstance(cause, OSError | ValueError):
        logger.info("The model refused the input: %r", cause)
        detail = _presentable(str(cause))
        message = "The model could not process this input"
        return error_answer(f"{message}: {detail}" if detail else f"{message}.", 400)
    logger.error("Fault inside the model", exc_info=cause or error)
    return error_answer(INTERNAL_ERROR, 500)


def _http_error(error: HTTPException) -> Response:
    """Flask's own errors (unknown route, wrong method, body too large) as JSON, keeping
    their status and headers (e.g. `Allow`)."""
    status = error.code or 500
    message = _HTTP_MESSAGES.get(status, f"{error.name}.")
    if status == 413:
        message = too_large_message(current_app.config["MAX_CONTENT_LENGTH"])
    response = error_answer(message, status)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def too_large_message(limit: int) -> str:
    """The answer to a body over the upload limit of `limit` bytes (from Flask or from the
    server)."""
    return f"The request is too large: the limit is {limit // 2**20} MB."


def _os_error(error: OSError) -> Response:
    """The engine's own file operations failing: no room left for a request's files is
    temporary (503, try again); anything else is a fault (500)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        logger.error("No room for a request's files: %s", error)
        response = error_answer(
            "The server has no room for this request's files now; try again.", 503
        )
        response.headers["Retry-After"] = "10"
        return response
    return _internal_error(error)


def _internal_error(error: Exception) -> Response:
    logger.error("Unhandled error", exc_info=error)
    return error_answer(INTERNAL_ERROR, 500)
