"""Serving the REST API in production (never Flask's development server).

The server is `httpserver`: httptools to parse HTTP/1.1, asyncio for the connections, a pool
of request threads for the app. The model is loaded once and shared by the request threads
(ONNX Runtime releases the GIL while it computes, so threads use both cores), nothing forks,
and a request's whole body is read before a thread takes it, so slow clients cannot tie up
the threads that run the model. It binds the settings' `host`:`port` with `server_threads`
threads; the app lets about as many of them run the model at once as there are cores
(`concurrency`), the rest stand by for requests held up behind slow ones.

The server answers a few requests itself before the app runs, in the API's JSON error
shape: a body over the settings' upload limit (refused from its Content-Length, before the
body is read), malformed HTTP, and a connection over the settings' `max_connections`.

`start` blocks and is what `run.py` and `python -m modelhubapi serve` call;
`create_server` builds a bound, not yet running server, and `BackgroundServer` runs one in a
thread for tests and benchmarks.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
from typing import Any

from . import machine, memory
from .concurrency import CALL_PATIENCE, CHANNEL_TIMEOUT
from .httperrors import too_large_message
from .httpserver import HTTPServer, Limits
from .lifecycle import Draining
from .restapi import ModelHubRESTAPI, log_access
from .settings import Settings

logger = logging.getLogger(__name__)
# How long SIGTERM waits for the requests already received (`docker stop` waits 10 s).
DRAIN_SECONDS = 6.0
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
    logger.info("Serving on http://%s:%d", settings.host, server.port)
    memory.give_back_when_idle(rest_api.draining)
    _stop_gently_on_sigterm(rest_api.draining, server)
    server.run()
    logger.info("Stopped")


def _stop_gently_on_sigterm(draining: Draining, server: HTTPServer) -> None:
    """On SIGTERM (`docker stop`, which sends SIGKILL 10 s later) start draining (see
    `lifecycle`): /api/ready answers 503 at once, new requests a quick 503, and once the
    requests inside the app are answered (or `DRAIN_SECONDS` have passed) the server loop
    ends, so the process exits normally, removing its files. A second SIGTERM ends it at
    once, still removing them.

    Only the main thread may set a signal handler; elsewhere SIGTERM keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop(grace=0))
        logger.info("SIGTERM: answering the requests inside, refusing new ones, then stopping")
        draining.begin()
        threading.Thread(target=_drain_then_stop, args=(draining, server), name="drain").start()

    signal.signal(signal.SIGTERM, on_sigterm)


def _drain_then_stop(draining: Draining, server: HTTPServer) -> None:
    if not draining.wait_quiet(DRAIN_SECONDS):
        logger.warning("Requests still running after %.0f s; stopping all the same", DRAIN_SECONDS)
    server.stop(grace=0)


def create_server(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    threads: int | None = None,
    settings: Settings | None = None,
) -> HTTPServer:
    """A server for the WSGI `app`, bound but not yet running (call `run()`).

    `host`, `port` and `threads` default to `settings`' (read from the environment when not
    given), which also set the upload limit and the connection limit. The sockets are bound
    here first, so a busy port fails before any thread starts. Bodies larger than the upload
    limit are refused from their Content-Length before they are read. How many requests run
    the model at once is the app's concern (`concurrency`).
    """
    settings = settings or Settings.from_environment()
    message = too_large_message(settings.max_upload_bytes)
    limits = Limits(
        max_body=settings.max_upload_bytes,
        max_connections=settings.max_connections,
        timeout=CHANNEL_TIMEOUT,
        linger=_LINGER_SECONDS,
        refused=lambda status, reason: message if status == 413 else f"{reason}.",
        log=log_access,
        running=machine.usable_cores(),
        patience=CALL_PATIENCE,
    )
    sockets = _bind(
        host if host is not None else settings.host,
        port if port is not None else settings.port,
    )
    threads = threads if threads is not None else settings.server_threads
    return HTTPServer(app, sockets, threads, limits)


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
    """A server answering in a thread of its own, e.g. on 127.0.0.1 port 0 (a free port):
    for tests and benchmarks that need the real server. `url` is its base URL;
    `close()` (or leaving the `with` block) stops it. `settings` (read from the environment
    when not given) set its upload and connection limits."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 4,
        settings: Settings | None = None,
    ):
        self._server = create_server(app, host, port, threads, settings=settings)
        self.port = self._server.port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._closed = False
        self._thread.start()

    def close(self) -> None:
        """Stop taking connections, let the requests running finish (up to
        `CHANNEL_TIMEOUT` s), then close every connection; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._server.stop(grace=CHANNEL_TIMEOUT)
        self._thread.join()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
