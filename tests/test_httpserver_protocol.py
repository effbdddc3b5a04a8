"""The HTTP/1.1 rules the engine's server applies itself (httptools only parses): when a
connection is kept or closed, how an answer is delimited, pipelined requests in order, and
what it does with an answer the app got wrong. Each test talks to a `BackgroundServer` on
loopback, with raw sockets where the bytes on the wire are the point."""

from __future__ import annotations

import http.client
import socket

import pytest
from hostile_support import Answer, assert_json_error

from modelhubapi import httpserver, webservice

BODY = b"twelve bytes"


def _echo(environ) -> tuple[str, list, list[bytes]]:
    """The method, path and every HTTP_ header the app was given, a line each."""
    lines = [f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"]
    lines += sorted(f"{key}={value}" for key, value in environ.items() if key.startswith("HTTP_"))
    body = "\n".join(lines).encode()
    return "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], [body]


def _failing_midway():
    yield b"x" * 300_000
    raise RuntimeError("the app's answer broke off")


PULLED: list[int] = []


def _endless():
    """Pieces for ever, each counted in PULLED."""
    while True:
        PULLED.append(1)
        yield BODY


class _FailingToClose:
    """A streamed answer (over one batch) whose close() raises."""

    def __iter__(self):
        return iter([b"y" * 300_000])

    def close(self) -> None:
        raise RuntimeError("the app could not close")


# Path -> (status, headers, body): answers the app gets right, then ones it gets wrong.
ANSWERS = {
    "/length": ("200 OK", [("Content-Length", str(len(BODY)))], [BODY]),
    "/stream": ("200 OK", [("Content-Type", "text/plain")], [BODY[:5], BODY[5:]]),
    "/short": ("200 OK", [("Content-Length", "100")], [BODY]),
    "/long": ("200 OK", [("Content-Length", "5")], [BODY]),
    "/bad-header": ("200 OK", [("X-Note", "a\r\nSet-Cookie: injected")], [b"no"]),
    "/own-framing": ("200 OK", [("Transfer-Encoding", "chunked")], [BODY]),
    "/bad-length": ("200 OK", [("Content-Length", "x")], [BODY]),
    "/informational": ("103 Early Hints", [], []),
    "/bad-status": ("abc", [], []),
    "/status-injection": ("200 OK\r\nSet-Cookie: injected", [], []),
    "/number-length": ("200 OK", [("Content-Length", 2)], [b"no"]),
    "/own-connection": ("200 OK", [("Connection", "keep-alive")], [BODY]),
    "/text-body": ("200 OK", [], ["text, not bytes"]),
    "/fails-midway": ("200 OK", [], _failing_midway),
    "/long-endless": ("200 OK", [("Content-Length", "5")], _endless),
    "/fails-to-close": ("200 OK", [], _FailingToClose),
}


def _app(environ, start_response):
    """The answer ANSWERS holds for the path, or an echo of the request."""
    status, headers, body = ANSWERS.get(environ["PATH_INFO"]) or _echo(environ)
    environ["wsgi.input"].read()
    start_response(status, headers)
    return body() if callable(body) else iter(body)


@pytest.fixture(scope="module")
def server():
    with webservice.BackgroundServer(_app) as running:
        yield running


def _exchange(port: int, *pieces: bytes, nodelay: bool = False) -> bytes:
    """Send `pieces` (with `nodelay`, each in a packet of its own, as `requests` sends),
    then read until the server closes the connection (at most 10 s). Unlike
    `hostile_support.raw_exchange`, a reset or a timeout fails the test: every answer here
    must arrive whole, a refusal's too (the server lingers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_an_http_1_0_request_is_answered_then_the_connection_closed(server):
    received = _exchange(server.port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close" in head and b"chunked" not in head
    assert body == BODY  # delimited by the close: HTTP/1.0 has no chunked coding


def test_connection_close_from_the_client_is_honoured(server):
    received = _exchange(
        server.port, b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert b"\r\nConnection: close" in received and received.endswith(b"\r\n\r\n" + BODY)


def test_an_answer_without_a_length_is_chunked_and_the_connection_kept(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/stream")
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == BODY
        sock = connection.sock
        connection.request("GET", "/length")
        assert connection.getresponse().read() == BODY
        assert connection.sock is sock  # the same connection served both
    finally:
        connection.close()


def test_head_gives_the_length_but_no_body_and_keeps_the_connection(server):
    pipelined = b"HEAD /length HTTP/1.1\r\nHost: x\r\n\r\n" + (
        b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = _exchange(server.port, pipelined)
    first, second = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert f"Content-Length: {len(BODY)}\r\n".encode() in first
    assert first.endswith(b"\r\n\r\n")  # the head only
    assert second.endswith(b"\r\n\r\n" + BODY)


def test_pipelined_requests_are_answered_in_their_order(server):
    paths = ["/one", "/two", "/three"]
    requests = [f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for path in paths]
    requests[-1] = requests[-1].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    received = _exchange(server.port, b"".join(requests))
    bodies = [answer.partition(b"\r\n\r\n")[2] for answer in received.split(b"HTTP/1.1 ")[1:]]
    assert [body.split(b"\n")[0] for body in bodies] == [f"GET {path}".encode() for path in paths]


def test_an_upgrade_request_is_answered_over_http_then_closed(server):
    received = _exchange(
        server.port,
        b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",  # the other protocol's: never parsed
    )
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(BODY)
    assert b"\r\nConnection: close\r\n" in received and received.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize(
    "head, status",
    [
        (b"POST /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
         b"Content-Length: 5\r\n\r\nhello", 400),  # its body would go to the new protocol
        (b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405),
        (b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", 400),  # HTTP/1.1 needs a Host
        (b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  # one Host, not two
        (b"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET /a HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
        (b"GET /a HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
        (b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /a\r\n\r\n", 505),  # HTTP/0.9
    ],
    ids=["upgrade with a body", "connect", "no host", "two hosts", "space in host",
         "two hosts in one", "userinfo in host", "http/2.0", "http/0.9"],
)  # fmt: skip
def test_requests_the_server_will_not_serve_are_json_errors(server, head, status):
    assert_json_error(Answer.from_raw(_exchange(server.port, head)), status)


def test_an_http_1_0_request_needs_no_host(server):
    assert _exchange(server.port, b"GET /length HTTP/1.0\r\n\r\n").endswith(BODY)


_CHUNKED = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_trailers_are_dropped_not_given_to_the_next_request(server):
    received = _exchange(
        server.port,
        _CHUNKED + b"3\r\nabc\r\n0\r\nX-Injected: evil\r\nHost: evil\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: victim\r\nConnection: close\r\n\r\n",
    )
    second = received.split(b"HTTP/1.1 200 OK\r\n")[2].partition(b"\r\n\r\n")[2]
    assert second == b"GET /b\nHTTP_CONNECTION=close\nHTTP_HOST=victim"


@pytest.mark.parametrize(
    "endless",
    [
        b"0\r\n" + b"X-A: b\r\n" * 30_000,  # trailers
        b"1;a=" + b"a" * 300_000,  # a chunk extension
        b"".join(b"1;%d\r\na\r\n" % n for n in range(30_000)),  # chunks mostly made of framing
        # a trailer as large as the body before it (httptools holds a field in memory)
        b"%x\r\n%b\r\n0\r\nX-T: %b\r\n\r\n" % (200_000, b"b" * 200_000, b"t" * 200_000),
    ],
    ids=["trailers", "chunk extension", "tiny chunks", "one large trailer"],
)
def test_a_request_whose_framing_runs_on_is_refused(server, endless):
    """Bounded like a head: at most MAX_HEAD_BYTES without progress, and what is not body
    at most MAX_HEAD_BYTES more than the body."""
    received = _exchange(server.port, _CHUNKED + endless)
    assert_json_error(Answer.from_raw(received), 400)


def test_header_values_lose_the_whitespace_around_them(server):
    received = _exchange(server.port, b"GET /e HTTP/1.1\r\nHost: x \r\nX-Pad:  v \t\r\n"
                         b"Connection: close\r\n\r\n")  # fmt: skip
    assert received.endswith(b"GET /e\nHTTP_CONNECTION=close\nHTTP_HOST=x\nHTTP_X_PAD=v")


def test_an_answer_shorter_than_its_length_closes_the_connection(server):
    """The client cannot tell where the answer ends, so it must not wait for more on a
    connection that stays open."""
    received = _exchange(server.port, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(BODY)


def test_an_answer_longer_than_its_length_is_cut_there_and_the_connection_closed(server):
    """Bytes past the Content-Length would be read as the start of a next answer."""
    received = _exchange(server.port, b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.endswith(b"\r\n\r\n" + BODY[:5])
    assert b"\r\nConnection: close\r\n" not in received  # decided after the head was sent


@pytest.mark.parametrize(
    "path",
    [
        "/bad-header",
        "/own-framing",
        "/bad-length",
        "/informational",
        "/bad-status",
        "/status-injection",
        "/number-length",
        "/own-connection",
        "/text-body",
    ],
)
def test_an_answer_the_server_cannot_frame_is_a_500_and_goes_nowhere(server, path, caplog):
    received = _exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert received.startswith(b"HTTP/1.1 500 ") and received.count(b"HTTP/1.1") == 1
    assert b"injected" not in received and BODY not in received
    assert "The app" in caplog.text  # logged for whoever runs it


def test_an_app_failing_midway_ends_the_connection_and_the_server_goes_on(server, caplog):
    received = _exchange(server.port, b"GET /fails-midway HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in received
    assert not received.endswith(b"0\r\n\r\n")  # no last chunk: the client sees it cut
    assert "The app failed during its answer" in caplog.text
    assert _exchange(server.port, b"GET /length HTTP/1.0\r\n\r\n").endswith(BODY)


def test_a_head_just_under_the_limit_is_served(server):
    """Heads up to `MAX_HEAD_BYTES` are read whole, however the reads split them (the
    431 above the limit is in test_hostile_uploads.py)."""
    padding = b"a" * (httpserver.MAX_HEAD_BYTES - 1024)
    received = _exchange(
        server.port,
        b"GET /length HTTP/1.1\r\nHost: x\r\nX-Padding: "
        + padding
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(BODY)


def test_a_cut_answer_stops_asking_the_app_for_more(server):
    PULLED.clear()
    received = _exchange(server.port, b"GET /long-endless HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.endswith(b"\r\n\r\n" + BODY[:5])
    assert len(PULLED) < 100_000  # one batch at most, not for ever


def test_an_app_failing_to_close_its_answer_ends_the_connection_after_it(server, caplog):
    received = _exchange(server.port, b"GET /fails-to-close HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.endswith(b"y" * 1000 + b"\r\n0\r\n\r\n")  # the answer went out whole
    assert "The app failed to close its answer" in caplog.text


def test_a_head_near_the_limit_before_a_chunked_body_is_served(server):
    """As requests sends it: the head, then each chunk's size line on its own."""
    padding = b"a" * (httpserver.MAX_HEAD_BYTES - 200)
    head = _CHUNKED.replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\nX-Pad: " + padding + b"\r\n\r\n"
    )
    chunk = [b"2000\r\n", b"c" * 0x2000, b"\r\n", b"0\r\n\r\n"]
    received = _exchange(server.port, head, *chunk, nodelay=True)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received[:200]
