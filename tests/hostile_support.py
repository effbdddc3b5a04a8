"""Shared helpers of the hostile-input battery (tests/test_hostile_*.py): the real SqueezeNet
service behind the engine's server on 127.0.0.1, raw HTTP for requests a client library
would tidy up, and the checks every error answer must pass. (The remote side of `fileurl` is
played by loopback_servers.py; conftest.py has the after-test checks, `clean_and_alive`.)

The service runs in this process (a `webservice.BackgroundServer`), so tests can watch its
working folder, patch its DNS lookup, and swap its model for one that fails.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import select
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import requests
import squeezenet_support
from PIL import Image
from squeezenet_support import squeezenet_model

from modelhubapi import ModelHubRESTAPI, webservice
from modelhubapi.settings import Settings

# Generous bound for answers that refuse input without running the model: they take
# milliseconds, so only a real wait (a read of the whole body, a timeout) comes near it.
REFUSAL_SECONDS = 2.0
# What an error message must never contain: a traceback, a server path, an exception repr.
_LEAKS = re.compile(
    r"Traceback|File \"|/tmp|/work|/home|/usr|/etc|site-packages|contrib_src|tests/"
    r"|<class |<module |\w+Error\(|\w+Exception\(|Errno"
)


@dataclass
class Service:
    """The SqueezeNet REST API served over HTTP: its URL, its object, its scratch folder."""

    url: str
    port: int
    rest_api: ModelHubRESTAPI
    working_folder: str
    session: requests.Session

    def upload(self, content: bytes, name: str = "picture.png"):
        """POST `content` as the multipart field `file`."""
        return self.session.post(
            f"{self.url}/api/predict", files={"file": (name, content)}, timeout=60
        )

    def get(self, path: str, **kwargs: Any):
        return self.session.get(f"{self.url}{path}", timeout=60, **kwargs)

    def predict_url(self, url: str):
        return self.get("/api/predict", params={"fileurl": url})

    def raw_get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET with the request target sent exactly as given (no dot-segment clean-up)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.putrequest("GET", path, skip_accept_encoding=True)
            connection.endheaders()
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def assert_alive(self) -> None:
        started = time.monotonic()
        response = self.get("/api/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert time.monotonic() - started < REFUSAL_SECONDS

    def assert_clean(self) -> None:
        """Nothing of any request is left in the working folder."""
        assert os.listdir(self.working_folder) == []


@contextmanager
def serve_squeezenet(tmp_path_factory, threads: int = 8, **settings: Any) -> Iterator[Service]:
    """The SqueezeNet REST API behind the engine's server on 127.0.0.1 (a free port), app and server
    built with `Settings(**settings)` (e.g. max_upload_bytes=...; the built-in defaults
    otherwise), working and output folders of its own."""
    model = squeezenet_model()
    working = str(tmp_path_factory.mktemp("working"))
    output = str(tmp_path_factory.mktemp("output"))
    chosen = Settings(working_dir=working, output_dir=output, **settings)
    rest_api = ModelHubRESTAPI(model, squeezenet_support.CONTRIB_DIR, chosen)
    assert rest_api.working_folder == working
    assert rest_api.warm_up()
    with (
        webservice.BackgroundServer(rest_api.app, threads=threads, settings=chosen) as server,
        requests.Session() as session,
    ):
        yield Service(server.url, server.port, rest_api, working, session)


class Answer:
    """An HTTP answer read some other way than with `requests` (raw bytes, Flask's test
    client), with the parts of a `requests.Response` the assertions here use."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code = status_code
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.content = content
        self.text = content.decode("utf-8", errors="replace")

    @classmethod
    def from_raw(cls, raw: bytes) -> Answer:
        head, _, content = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        return cls(int(status_line.split()[1]), headers, content)

    @classmethod
    def from_flask(cls, response: Any) -> Answer:
        return cls(response.status_code, dict(response.headers), response.get_data())

    def json(self) -> Any:
        return json.loads(self.content)


def assert_json_error(response, status: int | None = None, message: str | None = None) -> str:
    """A 4xx (or `status`) answer `{"error": str}` as JSON that leaks nothing; its message."""
    if status is None:
        assert 400 <= response.status_code < 500, response.text
    else:
        assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, str) and error
    assert not _LEAKS.search(response.text), response.text
    assert squeezenet_support.REPO_DIR not in response.text
    if message is not None:
        assert error == message
    return error


def assert_fast_error(call: Callable[[], Any], status: int | None = None, message=None) -> str:
    """`call()` answers an error (see assert_json_error) well within REFUSAL_SECONDS."""
    started = time.monotonic()
    response = call()
    elapsed = time.monotonic() - started
    error = assert_json_error(response, status, message)
    assert elapsed < REFUSAL_SECONDS, f"{elapsed:.2f} s for {error!r}"
    return error


def assert_prediction(response) -> list[dict]:
    """A well-formed SqueezeNet answer; its label list (top 5, highest first)."""
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"output", "timestamp", "processing_time", "model"}
    assert result["model"]["name"] == "squeezenet"
    (output,) = result["output"]
    assert (output["name"], output["type"], output["shape"]) == (
        "probabilities",
        "label_list",
        [5],
    )
    labels = output["prediction"]
    assert len(labels) == 5
    probabilities = [entry["probability"] for entry in labels]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= value <= 1.0 for value in probabilities)
    assert sum(probabilities) <= 1.0 + 1e-4
    return labels


def top1(response) -> str:
    return assert_prediction(response)[0]["label"]


def sample_path(name: str) -> str:
    return os.path.join(squeezenet_support.CONTRIB_DIR, "sample_data", name)


def sample_bytes(name: str) -> bytes:
    with open(sample_path(name), "rb") as file:
        return file.read()


def sample_names() -> list[str]:
    squeezenet_support.ensure_built()
    return sorted(os.listdir(os.path.join(squeezenet_support.CONTRIB_DIR, "sample_data")))


def encode(image: Image.Image, pillow_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, pillow_format, **options)
    return buffer.getvalue()


def photo(name: str = "camel.jpeg") -> Image.Image:
    """A sample photo, decoded (RGB)."""
    with Image.open(sample_path(name)) as image:
        return image.convert("RGB")


def raw_exchange(port: int, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send `head` (request line, headers, maybe some body) on a raw socket, then the
    `body_chunks` one by one only while the server has not started answering; return all
    the server sent before closing. Shows whether an answer comes before a body is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            answering, _, _ = select.select([sock], [], [], 0)
            if answering:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        received = b""
        with suppress(ConnectionResetError, TimeoutError):
            while data := sock.recv(65536):
                received += data
        return received
