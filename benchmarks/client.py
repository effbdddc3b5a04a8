"""The benchmark's HTTP client: one keep-alive connection POSTing photos to /api/predict."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence

REQUEST_TIMEOUT = 30.0


class Client:
    """One keep-alive HTTP/1.1 connection POSTing samples to /api/predict (reconnects on error).

    A raw socket rather than http.client, whose header parsing (email.parser) costs about
    0.17 ms per response: that is the client's work, and it would be counted as the server's
    latency. Each request gets a fresh multipart boundary, as browsers and `requests` do: the
    server's form parser then sees what it sees in use.
    """

    def __init__(self, port: int, paths: Sequence[str]):
        self._port = port
        self._files = []
        for path in paths:
            with open(path, "rb") as handle:
                self._files.append((os.path.basename(path), handle.read()))
        self._socket: socket.socket | None = None

    def __call__(self, count: int) -> tuple[int, bool]:
        try:
            if self._socket is None:
                self._socket = socket.create_connection(
                    ("127.0.0.1", self._port), timeout=REQUEST_TIMEOUT
                )
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket.sendall(self._request(*self._files[count % len(self._files)]))
            status, body = self._response()
        except (OSError, ValueError):
            self.close()
            return 1, False
        return 1, status == 200 and b'"output"' in body

    def _request(self, name: str, data: bytes) -> bytes:
        boundary = uuid.uuid4().hex
        body = b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                "\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        head = (
            "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _response(self) -> tuple[int, bytes]:
        """The status and body of one response (ValueError if it is not what the server
        sends: a status line, headers with Content-Length, the body)."""
        received = b""
        while (end := received.find(b"\r\n\r\n")) < 0:
            received += self._receive()
        head, body = received[:end].decode("latin-1"), received[end + 4 :]
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip().lower()
        if "content-length" not in headers:
            raise ValueError("no Content-Length")
        while len(body) < int(headers["content-length"]):
            body += self._receive()
        if headers.get("connection") == "close":
            self.close()
        return int(status_line.split()[1]), body

    def _receive(self) -> bytes:
        data = self._socket.recv(65536)
        if not data:
            raise ValueError("connection closed")
        return data

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
