"""The HTTP/1.1 rules the engine's server applies itself (httptools only parses): when a
connection is kept or closed, how an answer is delimited, pipelined requests in order, and
what it does with an answer the app got wrong. Each test talks to a `BackgroundServer` on
loopback, with raw sockets where the bytes on the wire are the point."""

from __future__ import annotations

import http.client
import socket

import pytest

from modelhubapi import httpserver, webservice

BODY = b"twelve bytes"


def _app(environ, start_response):
    """/length: BODY with its Content-Length; /stream: BODY in two pieces without one;
    /short: a Content-Length larger than the body; /bad-header: a header with a line break;
    anything else: the path and method."""
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([BODY[:5], BODY[5:]])
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [BODY]
    if path == "/bad-header":
        start_response("200 OK", [("X-Note", "a\r\nSet-Cookie: injected"), ("Content-Length", "2")])
        return [b"no"]
    body = BODY if path == "/length" else f"{environ['REQUEST_METHOD']} {path}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def server():
    with webservice.BackgroundServer(_app) as running:
        yield running


def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes the connection (at most 10 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
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
    assert bodies == [f"GET {path}".encode() for path in paths]


def test_an_upgrade_request_is_answered_over_http_then_closed(server):
    received = _exchange(
        server.port,
        b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(BODY)


def test_an_answer_shorter_than_its_length_closes_the_connection(server):
    """The client cannot tell where the answer ends, so it must not wait for more on a
    connection that stays open."""
    received = _exchange(server.port, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(BODY)


def test_a_header_from_the_app_with_a_line_break_is_a_500_and_goes_nowhere(server):
    received = _exchange(server.port, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 500 ")
    assert b"injected" not in received


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
