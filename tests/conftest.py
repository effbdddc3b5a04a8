"""Fixtures shared by the test modules: mock packages, REST clients, a loopback file server,
the private-URL switch and a public name routed to loopback (for the URL tests), and the
after-test checks of the hostile battery.

The engine under test is the installed one (`make install`: pip install -e ./framework). The
SqueezeNet package's folder is put first on sys.path here, as ModelHub runs a package (with its
folder as the working directory and import root), so its modules import each other by name.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hypothesis
import pytest
from loopback_servers import PUBLIC_IP, PUBLIC_NAME
from squeezenet_support import CONTRIB_DIR

from modelhubapi import ModelHubRESTAPI
from modelhubapi.safety import urls
from modelhubapi.settings import Settings

# CI is a gate: the same examples every run, so a red build always means a changed program.
# Elsewhere hypothesis explores new inputs each run, and a failure prints how to replay it.
# No per-example deadline: these tests assert behaviour, and a loaded machine is not a bug.
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
hypothesis.settings.register_profile("explore", print_blob=True, deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "explore")

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MOCKMODELS_DIR = os.path.join(TESTS_DIR, "mockmodels")
if CONTRIB_DIR not in sys.path:
    sys.path.insert(0, CONTRIB_DIR)


@pytest.fixture
def mock_package() -> Callable[[str], str]:
    """`mock_package("single")`: the folder of a mock contributor package in tests/mockmodels."""
    return lambda name: os.path.join(MOCKMODELS_DIR, name)


@dataclass
class RestClient:
    """A REST API under test: the object, its Flask test client, and its scratch folders."""

    rest_api: ModelHubRESTAPI
    client: Any
    working_folder: str
    output_folder: str


@pytest.fixture
def rest_client(tmp_path, mock_package) -> Callable[..., RestClient]:
    """`rest_client(model, "single", **settings)`: a ModelHubRESTAPI on a mock package, built
    with `Settings(**settings)` (the built-in defaults, whatever the environment says, unless
    given), with its working and output folders set after construction (as ModelHub's tests
    do) to empty folders."""

    def make(model: Any, package: str = "single", **settings: Any) -> RestClient:
        working = tmp_path / f"working-{package}"
        output = tmp_path / f"output-{package}"
        working.mkdir(exist_ok=True)
        output.mkdir(exist_ok=True)
        rest_api = ModelHubRESTAPI(model, mock_package(package), Settings(**settings))
        rest_api.working_folder = str(working)
        rest_api.api.output_folder = str(output)
        rest_api.app.config["TESTING"] = True
        return RestClient(rest_api, rest_api.app.test_client(), str(working), str(output))

    return make


@dataclass
class FileServer:
    """A loopback HTTP server answering GET /<name> with `files[name]` (404 otherwise)."""

    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A loopback file server (an app fetching from it needs `allow_private_urls`)."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            """Quiet: the engine's own access log is what tests look at."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval makes shutdown() quick; the server idles between polls.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield FileServer(f"http://127.0.0.1:{server.server_address[1]}", files)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def private_allowed() -> Settings:
    """Settings allowing URLs to private hosts, so the engine may fetch from loopback
    servers."""
    return Settings(allow_private_urls=True)


@pytest.fixture(scope="session", autouse=True)
def loopback_dns() -> Iterator[None]:
    """Tests never ask a real DNS (one lost packet is a 5 s retry, and the internet is not
    theirs): the URL rule's one lookup resolves address literals and localhost as the
    system does, and any other name fails at once, as an unknown name does. A test that
    wants a name to resolve patches `urls.resolve_host` over this."""
    real_resolve = urls.resolve_host

    def resolve(host: str, port: int) -> list[str]:
        if host.rstrip(".").lower() == "localhost":
            return real_resolve("localhost", port)
        try:
            socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real_resolve(host, port)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(urls, "resolve_host", resolve)
        yield


@pytest.fixture
def routed_public_name(monkeypatch) -> tuple[list[str], list[str]]:
    """`PUBLIC_NAME` resolves (through the URL rule's one lookup) to `PUBLIC_IP`, and
    connections to `PUBLIC_IP` are routed to loopback, so a loopback server passes for a
    public host. Returns the lists of every lookup and connection made, in order."""
    lookups: list[str] = []
    connections: list[str] = []
    real_resolve = urls.resolve_host
    real_connect = socket.create_connection

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [PUBLIC_IP] if host == PUBLIC_NAME else real_resolve(host, port)

    def connect(address, *args, **kwargs):
        connections.append(address[0])
        target = "127.0.0.1" if address[0] == PUBLIC_IP else address[0]
        return real_connect((target, address[1]), *args, **kwargs)

    monkeypatch.setattr(urls, "resolve_host", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    return lookups, connections


@pytest.fixture
def clean_and_alive(request, service) -> Iterator[None]:
    """For a hostile-battery module (`pytestmark` uses it; the module defines `service`, and
    may define `fetching_service`): whatever a test sent, nothing of it stays in the working
    folder and the servers it used live."""
    yield
    used = [service]
    if "fetching_service" in request.fixturenames:
        used.append(request.getfixturevalue("fetching_service"))
    for each in used:
        each.assert_clean()
        each.assert_alive()


@pytest.fixture
def closed_port_url():
    """A loopback URL nobody listens on (bound, never listening, so the port stays ours)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
