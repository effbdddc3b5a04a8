"""Loopback HTTP servers playing the remote side of a URL the engine downloads, for the URL
rule's own tests and the hostile `fileurl` tests: a route table maps a path to a function
answering it, the server counts the connections it accepts and records each request, and
`stopping` ends the handlers that would otherwise wait (hanging, dripping, endless ones)
as the server stops. Also the public-looking name the `routed_public_name` fixture
(conftest.py) routes to these servers."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A globally routable address and a name resolving to it, routed to loopback in tests.
PUBLIC_IP = "93.184.215.14"
PUBLIC_NAME = "public.example"
# Long enough for an idle server's wait, short enough to end a forgotten one.
PATIENCE = 30
# Locations a public host may redirect to that lead back to a loopback server's {port}.
LOOPBACK_LOCATIONS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://2130706433:{port}/",
]

Route = Callable[["Handler"], None]


class Server(ThreadingHTTPServer):
    """A loopback HTTP server that counts the connections it accepts and records each
    request as (path, Host header)."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = routes
        self.contacts = 0
        self.requests: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def get_request(self):
        request = super().get_request()
        self.contacts += 1
        return request

    def handle_error(self, request, client_address) -> None:
        """A client giving up mid-answer is what many tests are about: not an error."""


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host")))
        route = self.server.routes.get(self.path.split("?")[0], not_found)
        with suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            route(self)

    def log_message(self, *args: object) -> None:
        """Quiet: the tests assert on what matters."""

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        """Answer `status`, `body` and `headers` (underscores in their names become dashes)."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    """A `Server` for `routes` (over TLS with `tls`), running until the block ends."""
    server = Server(routes)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # A short poll interval makes shutdown() quick; the server idles between polls.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick for a throwaway socket)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed(folder: str, name: str) -> tuple[str, str]:
    """(certificate, key) files in `folder`, self-signed for host `name` (the openssl
    command); a client trusts it through SSL_CERT_FILE."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}", "-keyout", key, "-out", cert,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context for `serving(..., tls=...)`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# --- routes -------------------------------------------------------------------------------


def answering(status: int, body: bytes = b"", **headers: str) -> Route:
    """A route answering every request alike (see `Handler.answer`)."""
    return lambda handler: handler.answer(status, body, **headers)


def redirect_to(location: str, status: int = 302) -> Route:
    return answering(status, Location=location)


not_found = answering(404, b"no such thing")


def hang(handler: Handler) -> None:
    """Never answers (until the server stops)."""
    handler.server.stopping.wait(PATIENCE)


def endless(handler: Handler) -> None:
    """200 with no length, then data until the client goes away."""
    handler.send_response(200)
    handler.end_headers()
    chunk = bytes(64 * 1024)
    while not handler.server.stopping.is_set():
        handler.wfile.write(chunk)


def huge_length(handler: Handler) -> None:
    """Declares 10 GiB, then sends nothing: only refusing on the header is quick."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(10 * 1024**3))
    handler.end_headers()
    handler.wfile.flush()
    handler.server.stopping.wait(PATIENCE)
