"""Connection and thread attacks from one machine on loopback: slowloris headers, slow
bodies, idle keep-alive connections, pipelined downloads never read, slow `?fileurl=`
remotes, a Content-Length beside Transfer-Encoding. During each, a normal upload is
answered within 2 s; every attack is bounded in connections and time."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hostile_support import assert_prediction, encode, photo, serve_squeezenet
from loopback_servers import hang, serving

pytestmark = pytest.mark.usefixtures("clean_and_alive")

# The bound for a normal request during an attack (generous on a busy machine).
NORMAL_SECONDS = 2.0


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serve_squeezenet(
        tmp_path_factory, allow_private_urls=True, url_timeout=10
    ) as service:
        yield service


@pytest.fixture(scope="module")
def picture() -> bytes:
    return encode(photo().resize((320, 240)), "JPEG")


def _assert_normal_upload_answers(service, picture: bytes) -> None:
    started = time.monotonic()
    response = requests.post(
        f"{service.url}/api/predict", files={"file": ("camel.jpg", picture)}, timeout=30
    )
    elapsed = time.monotonic() - started
    assert_prediction(response)
    assert elapsed < NORMAL_SECONDS, f"{elapsed:.2f} s"


@contextlib.contextmanager
def _connections(port: int, count: int, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections, each having sent `first_bytes` and then nothing; all closed at
    the end."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(connection)
            if first_bytes:
                connection.sendall(first_bytes)
        yield sockets
    finally:
        for connection in sockets:
            connection.close()


def test_slowloris_headers_do_not_lock_out_a_normal_client(service, picture):
    with _connections(service.port, 200, b"GET /api/health HTTP/1.1\r\nHost: x\r\n") as held:
        _assert_normal_upload_answers(service, picture)
        for connection in held[:20]:  # still trickling: the server keeps them, harmlessly
            connection.sendall(b"X-Slow: 1\r\n")
        _assert_normal_upload_answers(service, picture)


def test_slow_bodies_do_not_lock_out_a_normal_client(service, picture):
    head = (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n"
    )
    with _connections(service.port, 100, head):
        _assert_normal_upload_answers(service, picture)


def test_idle_keep_alive_connections_do_not_lock_out_a_normal_client(service, picture):
    with _connections(service.port, 120, b"") as idle:
        for connection in idle:
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        for connection in idle:
            assert connection.recv(65536).startswith(b"HTTP/1.1 200")
        _assert_normal_upload_answers(service, picture)


def test_pipelined_model_downloads_never_read_do_not_hold_the_threads(service, picture):
    request = b"GET /api/get_model_files HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connections(service.port, 10, request * 5) as readers:
        for connection in readers:  # a small window: the server's sends stall at once
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _assert_normal_upload_answers(service, picture)
        # A client that does read still gets the model files, or a quick 503 while the
        # slots are held.
        answer = requests.get(f"{service.url}/api/get_model_files", timeout=30)
        assert answer.status_code in (200, 503)
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "1"


def test_slow_url_downloads_do_not_starve_uploads(service, picture):
    with serving({"/slow": hang}) as remote, ThreadPoolExecutor(16) as pool:
        slow_url = remote.url("/slow")
        slow = [
            pool.submit(
                requests.get, f"{service.url}/api/predict", params={"fileurl": slow_url}, timeout=30
            )
            for _ in range(16)
        ]
        # Wait until the remote holds every download the server lets run.
        deadline = time.monotonic() + 10
        while remote.contacts < service.rest_api.settings.url_downloads:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _assert_normal_upload_answers(service, picture)
        refused = [answer.result() for answer in slow if answer.done()]
        assert refused and all(answer.status_code == 503 for answer in refused)
        remote.stopping.set()
        statuses = {answer.result().status_code for answer in slow}
        assert statuses <= {400, 503}


def test_content_length_with_transfer_encoding_closes_the_connection(service):
    """RFC 9112 6.3: the length may cover a smuggled second request; the server must not
    answer it, and closes the connection after its answer to the first."""
    smuggled = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    head = (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as connection:
        connection.sendall(head + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400")
    assert received.count(b"HTTP/1.1 ") == 1
