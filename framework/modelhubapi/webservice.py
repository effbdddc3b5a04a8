"""Serving the REST API in production with waitress (never Flask's development server).

Why waitress: the model is loaded once and shared by request threads (ONNX Runtime releases
the GIL while it computes, so threads use both cores), nothing forks, and waitress reads a
request's whole body before a thread takes it, so slow clients cannot tie up the threads
that run the model. It binds the settings' `host`:`port` with `server_threads` threads; the
app lets about as many of them run the model at once as there are cores (`concurrency`),
the rest stand by for requests held up behind slow ones.

waitress answers a few requests itself before the app runs: a body over the settings'
upload limit (refused from its Content-Length, before the body is read) and malformed
HTTP. Those answers are given the API's JSON error shape too.

`start` blocks and is what `run.py` and `python -m modelhubapi serve` call;
`create_server` builds a bound, not yet running server, and `BackgroundServer` runs one in a
thread for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from . import memory
from .concurrency import CHANNEL_TIMEOUT, CLEANUP_INTERVAL
from .httperrors import too_large_message
from .lifecycle import Draining
from .restapi import ModelHubRESTAPI, log_access
from .settings import Settings

logger = logging.getLogger(__name__)
# The most bytes one read of a connection takes (waitress reads 8 KiB).
_RECV_BYTES = 64 * 1024
# How long SIGTERM waits for the requests already received (`docker stop` waits 10 s).
_DRAIN_SECONDS = 6.0
# How long a refused body is read and thrown away before the connection is closed.
_LINGER_SECONDS = 10.0
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start(
    model: Any, contrib_src_dir: str, startNetron: bool = False, settings: Settings | None = None
) -> None:
    """Serve `model` (from the contributor package at `contrib_src_dir`) until stopped.

    The socket is bound first (a busy port fails at once), then the model answers a warm-up
    prediction, so the first user does not wait for lazy initialisation and /api/ready is
    true as soon as requests are taken.

    `startNetron` is ModelHub's switch for its Netron model viewer, which this engine does
    not include; it is accepted so that existing `run.py` files passing it work unchanged.
    `settings` are read from the environment here when not given. SIGTERM ends it after the
    requests already received are answered (see `_stop_gently_on_sigterm`).
    """
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    if startNetron:
        logger.info("The Netron model viewer is not part of this engine; not starting it.")
    settings = settings or Settings.from_environment()
    rest_api = ModelHubRESTAPI(model, contrib_src_dir, settings)
    server = create_server(rest_api.app, settings=settings)
    rest_api.warm_up()
    # What is alive now (the model, the app, every module) lives as long as the process, so
    # the garbage collector need never scan it again: a full collection of it pauses a
    # request for about 9 ms, every few hundred requests.
    gc.freeze()
    logger.info("Serving %s with %d threads", contrib_src_dir, settings.server_threads)
    server.print_listen("Serving on http://{}:{}")
    memory.give_back_when_idle(rest_api.draining)
    _stop_gently_on_sigterm(rest_api.draining)
    try:
        server.run()
    except _Stop:
        logger.info("Stopped")


def _stop_gently_on_sigterm(draining: Draining) -> None:
    """On SIGTERM (`docker stop`, which sends SIGKILL 10 s later) start draining (see
    `lifecycle`): /api/ready answers 503 at once, new requests a quick 503, and once the
    requests inside the app are answered (or `_DRAIN_SECONDS` have passed) the server loop
    ends, so the process exits normally, removing its files. A second SIGTERM ends it at
    once, still removing them.

    Only the main thread may set a signal handler; elsewhere SIGTERM keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, _exit_now)
        logger.info("SIGTERM: answering the requests inside, refusing new ones, then stopping")
        draining.begin()
        threading.Thread(target=_drain_then_exit, args=(draining,), name="drain").start()

    signal.signal(signal.SIGTERM, on_sigterm)


def _drain_then_exit(draining: Draining) -> None:
    if not draining.wait_quiet(_DRAIN_SECONDS):
        logger.warning("Requests still running after %.0f s; stopping all the same", _DRAIN_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)  # now `_exit_now`, in the main thread


class _Stop(BaseException):
    """Ends `server.run()` from the main thread's signal handler. Not SystemExit: waitress
    would answer that by waiting up to 5 s more for request threads, which may never end;
    they are daemon threads and end with the process."""


def _exit_now(signum: int, frame: Any) -> None:
    raise _Stop()


def create_server(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    threads: int | None = None,
    socket_map: dict | None = None,
    settings: Settings | None = None,
) -> Any:
    """A waitress server for the WSGI `app`, bound but not yet running (call `run()`).

    `host`, `port` and `threads` default to `settings`' (read from the environment when not
    given), which also set the upload limit and the connection limit. The sockets are bound
    here first, so a busy port fails before waitress starts any thread. Bodies larger than
    the upload limit are refused by waitress from their Content-Length before they are read.
    How many requests run the model at once is the app's concern (`concurrency`).
    """
    settings = settings or Settings.from_environment()
    options = {
        "threads": threads if threads is not None else settings.server_threads,
        "max_request_body_size": settings.max_upload_bytes + 1,
        "ident": "modelhub",
        # Slow and idle clients cost a socket, not a thread (see `concurrency`).
        "connection_limit": settings.max_connections,
        "channel_timeout": CHANNEL_TIMEOUT,
        "cleanup_interval": CLEANUP_INTERVAL,
        # A photo arrives in one read instead of one per 8 KiB, each a turn of the I/O
        # loop: measured, 10 % less of waitress's time per request (0.270 -> 0.244 ms).
        "recv_bytes": _RECV_BYTES,
    }
    sockets = _bind(
        host if host is not None else settings.host,
        port if port is not None else settings.port,
    )
    try:
        server = waitress.create_server(app, map=socket_map, sockets=sockets, **options)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    for listener in _listeners(server):
        listener.channel_class = _Channel
    return server


def _bind(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address `host` resolves to (one for port 0, a free port), not
    yet listening; OSError (closing those made) if one cannot be bound."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = list(dict.fromkeys((info[0], info[4]) for info in infos))
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses[: 1 if port == 0 else None]:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class BackgroundServer:
    """A waitress server answering in a thread of its own, e.g. on 127.0.0.1 port 0 (a free
    port): for tests and benchmarks that need the real server. `url` is its base URL;
    `close()` (or leaving the `with` block) stops it and its threads. `settings` (read from
    the environment when not given) set its upload and connection limits."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 4,
        settings: Settings | None = None,
    ):
        self._map: dict = {}
        self._server = create_server(
            app, host, port, threads, socket_map=self._map, settings=settings
        )
        self.url = f"http://{host}:{self._server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="waitress", daemon=True)
        self._closed = False
        self._thread.start()

    def close(self) -> None:
        """End the request threads (which lets the handlers already running finish; queued
        requests are dropped), then close every connection; calling it again does nothing.
        An answer still being sent when the threads have ended may be cut short."""
        if self._closed:
            return
        self._closed = True
        self._server.task_dispatcher.shutdown()
        # The loop thread uses the sockets while it runs, so it only takes them out of its
        # map (which ends it); they are closed here once it has. Closing them in the thread
        # closed the wake-up pipe too, sometimes before pull_trigger had written its byte:
        # the write then failed, or could have reached a file that took the pipe's number.
        left: list = []
        self._server.trigger.pull_trigger(lambda: left.extend(self._take_all()))
        self._thread.join()
        for dispatcher in left + self._take_all():  # the map is left whole if the loop died
            dispatcher.close()

    def _take_all(self) -> list:
        """Empty the loop's map of sockets; what it held."""
        taken = list(self._map.values())
        self._map.clear()
        return taken

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _JSONErrorTask(ErrorTask):
    """waitress's own error answers, as JSON `{"error": ...}` with open CORS."""

    def execute(self) -> None:
        error = self.request.error
        if error.code == 413:
            message = too_large_message(self.request.max_upload_bytes)
        else:
            message = f"{error.reason}."
        body = json.dumps({"error": message}).encode("utf-8")
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(
            [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")]
        )
        self.set_close_on_finish()
        # A client may be sending the refused body still, and read only once it is sent.
        self.channel.linger = error.code == 413
        self.content_length = len(body)
        self.write(body)
        # A request line waitress could not parse leaves no `command` or `path` behind.
        method = getattr(self.request, "command", None) or "-"
        path = getattr(self.request, "path", None) or "-"
        log_access(method, path, error.code, 0.0, len(body))


class _UploadLimitedParser(HTTPRequestParser):
    """waitress's request parser, which keeps the upload limit (waitress's
    `max_request_body_size` less the byte that makes it refuse) for the 413's message, and
    closes the connection of an ambiguous request."""

    def __init__(self, adjustments: Any) -> None:
        super().__init__(adjustments)
        self.max_upload_bytes = adjustments.max_request_body_size - 1

    def parse_header(self, header_plus: bytes) -> None:
        """A request with both Transfer-Encoding and Content-Length is read as chunked and
        answered, then its connection is closed (RFC 9112 6.3): the length may have been
        meant to carry a second, smuggled request, which is never answered."""
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            self.headers["CONNECTION"] = "close"  # what waitress reads when it answers


class _Channel(HTTPChannel):
    """waitress's connection, with this server's parser and its JSON error answers."""

    error_task_class = _JSONErrorTask
    parser_class = _UploadLimitedParser
    linger = False  # set by a refusal whose body the client may still be sending
    _linger_deadline: float | None = None  # lingering until then, once the answer is sent

    def handle_close(self) -> None:
        """Close, or first linger: after a 413 the answer is sent, the sending side shut
        (the client reads the answer and an end), and what the client still sends is read
        and thrown away for up to `_LINGER_SECONDS`, as nginx does. Closing at once would
        make the kernel answer the unread bytes with a reset, and a client that sends the
        whole body before reading (Python's urllib) would see that instead of the 413."""
        if self.linger and self._linger_deadline is None and self.connected:
            self._linger_deadline = time.monotonic() + _LINGER_SECONDS
            self.will_close = False
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_WR)
            return
        super().handle_close()

    def readable(self) -> bool:
        return self._linger_deadline is not None or super().readable()

    def received(self, data: bytes) -> bool:
        if self._linger_deadline is None:
            return super().received(data)
        if time.monotonic() > self._linger_deadline:
            self.handle_close()
            return False
        return True  # thrown away

    def send_continue(self) -> None:
        """`Expect: 100-continue` on a request already refused from its headers (a
        Content-Length over the limit): waitress would invite the body and read it up to the
        limit before answering. The refusal is answered at once instead."""
        if self.request.error is None:
            super().send_continue()
        else:
            self.request.expect_continue = False


def _listeners(server: Any) -> list[BaseWSGIServer]:
    """The listening servers behind what `waitress.create_server` returned (one per address
    when the host name resolves to several)."""
    if isinstance(server, BaseWSGIServer):
        return [server]
    return [item for item in server.map.values() if isinstance(item, BaseWSGIServer)]
