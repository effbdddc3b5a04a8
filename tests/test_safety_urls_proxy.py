"""The init step's downloads go through the environment's proxy (http_proxy, https_proxy,
no_proxy), as pip and curl do: http by naming the whole URL to the proxy, https through a
CONNECT tunnel with TLS verified end to end. A caller's URL never does: the proxy would
resolve the name itself, past the address check. Loopback only: the "remote" host is a name
that does not resolve, so only a proxy can reach it."""

from __future__ import annotations

import io
import select
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from loopback_servers import answering, self_signed, serving, tls_context

from modelhubapi.safety import urls
from modelhubapi.safety.errors import InputError

HOST = "files.example.invalid"  # .invalid never resolves (RFC 2606)
BODY = b"weights" * 1000
TRUSTED = urls.Limits(max_bytes=1 << 20, deadline=None, wait=5, use_proxy=True)
CALLERS = urls.Limits(max_bytes=1 << 20, deadline=5, wait=5)


def fetch(url: str, limits: urls.Limits) -> bytes:
    with urls.open_url(url, limits) as body:
        out = io.BytesIO()
        body.copy_to(out)
        return out.getvalue()


class Proxy:
    """A loopback http proxy: answers GET of an absolute URL itself with BODY, and tunnels
    CONNECT to `tunnel_to` (a loopback address), recording every request line."""

    def __init__(self, tunnel_to: tuple[str, int] | None = None):
        self.lines: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.lines.append(self.requestline)
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

            def do_CONNECT(self) -> None:
                proxy.lines.append(self.requestline)
                if tunnel_to is None:
                    self.send_error(403)
                    return
                upstream = socket.create_connection(tunnel_to)
                self.send_response(200)
                self.end_headers()
                _pipe(self.connection, upstream)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with upstream:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)


@pytest.fixture
def use_proxy(monkeypatch) -> Iterator[Callable[..., Proxy]]:
    """`use_proxy(scheme, tunnel_to=...)`: a `Proxy` the environment names for `scheme`
    URLs, with no host exempted (either spelling of no_proxy); closed after the test."""
    made: list[Proxy] = []

    def use(scheme: str, tunnel_to: tuple[str, int] | None = None) -> Proxy:
        made.append(Proxy(tunnel_to))
        monkeypatch.setenv(f"{scheme}_proxy", made[-1].url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        return made[-1]

    yield use
    for proxy in made:
        proxy.close()


@pytest.fixture
def proxy(use_proxy) -> Proxy:
    return use_proxy("http")


def test_a_trusted_http_download_goes_through_the_proxy(proxy):
    assert fetch(f"http://{HOST}/weights.bin", TRUSTED) == BODY
    assert proxy.lines == [f"GET http://{HOST}/weights.bin HTTP/1.1"]


def test_a_callers_url_never_goes_through_the_proxy(proxy):
    with pytest.raises(InputError, match="could not be resolved"):
        fetch(f"http://{HOST}/weights.bin", CALLERS)
    assert proxy.lines == []


def test_no_proxy_names_a_host_reached_directly(proxy, monkeypatch):
    monkeypatch.setenv("no_proxy", HOST)
    with pytest.raises(InputError, match="could not be resolved"):
        fetch(f"http://{HOST}/weights.bin", TRUSTED)
    assert proxy.lines == []


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[tuple[str, int]]:
    """A loopback TLS server answering BODY, with a certificate for HOST that the client
    trusts (SSL_CERT_FILE), as a real server's would be."""
    cert, key = self_signed(str(tmp_path), HOST)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    with serving({"/weights.bin": answering(200, BODY)}, tls=tls_context(cert, key)) as server:
        yield ("127.0.0.1", server.port)


def test_a_trusted_https_download_tunnels_through_the_proxy(tls_server, use_proxy):
    proxy = use_proxy("https", tunnel_to=tls_server)
    assert fetch(f"https://{HOST}/weights.bin", TRUSTED) == BODY
    assert proxy.lines == [f"CONNECT {HOST}:443 HTTP/1.1"]


def test_a_refused_tunnel_is_a_network_error(use_proxy):
    use_proxy("https", tunnel_to=None)
    with pytest.raises(ConnectionError, match="HTTP 403"):
        fetch(f"https://{HOST}/weights.bin", TRUSTED)
