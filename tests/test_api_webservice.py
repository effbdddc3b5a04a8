"""The production server on a loopback port, called over real HTTP."""

from __future__ import annotations

import http.client
import io
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from mockmodels.single import inference as single
from PIL import Image

from modelhubapi import ModelHubRESTAPI, webservice
from modelhubapi.settings import Settings


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 2), value).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def served(mock_package, tmp_path):
    """The single-input mock package behind the real server on 127.0.0.1."""
    rest_api = ModelHubRESTAPI(single.Model(), mock_package("single"))
    rest_api.working_folder = str(tmp_path / "working")
    rest_api.api.output_folder = str(tmp_path / "output")
    with webservice.BackgroundServer(rest_api.app) as server, requests.Session() as session:
        yield server, session, rest_api


def test_predict_over_http(served):
    server, session, _ = served
    response = session.post(f"{server.url}/api/predict", files={"file": ("a.png", png_bytes(255))})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    result = response.json()
    mask_url = result["output"][1]["prediction"]
    assert mask_url.startswith(f"{server.url}/api/output/")
    assert session.get(mask_url).status_code == 200


def test_concurrent_uploads_each_get_their_own_answer(served):
    server, _, rest_api = served
    values = list(range(0, 256, 16))

    def classify(value: int) -> float:
        with requests.Session() as session:
            response = session.post(
                f"{server.url}/api/predict", files={"file": ("x.png", png_bytes(value))}
            )
        return response.json()["output"][0]["prediction"][0]["probability"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(classify, values))
    assert answers == pytest.approx([value / 255 for value in values], abs=1e-4)
    assert os.listdir(rest_api.working_folder) == []


def test_the_server_refuses_a_body_over_the_limit_as_json(mock_package, tmp_path, caplog):
    limited = Settings(max_upload_bytes=1024 * 1024)
    rest_api = ModelHubRESTAPI(single.Model(), mock_package("single"), limited)
    rest_api.working_folder = str(tmp_path)
    with (
        caplog.at_level(logging.INFO, logger="modelhubapi.access"),
        webservice.BackgroundServer(rest_api.app, settings=limited) as server,
    ):
        response = requests.post(f"{server.url}/api/predict", data=bytes(2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json() == {"error": "The request is too large: the limit is 1 MB."}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST /api/predict 413" in caplog.text
    assert os.listdir(tmp_path) == []


def test_start_binds_warms_up_and_serves(mock_package, monkeypatch, tmp_path):
    """`start` blocks, so it runs in a thread; the server it makes is caught to stop it."""
    settings = Settings(host="127.0.0.1", port=0, working_dir=str(tmp_path))
    servers = []
    bound = threading.Event()
    create_server = webservice.create_server

    def recording_create_server(app, settings):
        servers.append(create_server(app, settings=settings))
        bound.set()
        return servers[0]

    monkeypatch.setattr(webservice, "create_server", recording_create_server)
    # The long-lived objects are frozen out of garbage collection once, before serving
    # (recorded here rather than freezing the test process).
    freezes = []
    monkeypatch.setattr(webservice.gc, "freeze", lambda: freezes.append(True))
    thread = threading.Thread(
        target=webservice.start,
        args=(single.Model(), mock_package("single")),
        kwargs={"settings": settings},
        daemon=True,
    )
    thread.start()
    assert bound.wait(timeout=30)
    server = servers[0]
    try:
        response = requests.get(f"http://127.0.0.1:{server.port}/api/ready", timeout=30)
        assert (response.status_code, response.json()) == (200, {"status": "ready"})
        assert freezes == [True]
    finally:
        server.stop(grace=0)
        thread.join(timeout=30)
    assert not thread.is_alive()


# --- the request threads ---------------------------------------------------------------------


class CountingModel(single.Model):
    """Records how many of its runs overlap; each waits (bounded) for company."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.company = threading.Condition(self.lock)

    def infer(self, input):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.company.notify_all()
            # Wait until a second run joins (or 2 s pass): overlaps become certain.
            self.company.wait_for(lambda: self.running >= 2, timeout=2)
        try:
            return super().infer(input)
        finally:
            with self.lock:
                self.running -= 1


def test_about_as_many_requests_run_the_model_at_once_as_there_are_cores(
    mock_package, monkeypatch, tmp_path
):
    monkeypatch.setattr("modelhubapi.machine.usable_cores", lambda: 2)
    model = CountingModel()
    rest_api = ModelHubRESTAPI(model, mock_package("single"))
    rest_api.working_folder = str(tmp_path)
    with webservice.BackgroundServer(rest_api.app, threads=8) as server:

        def classify(value: int) -> int:
            files = {"file": ("x.png", png_bytes(value))}
            return requests.post(f"{server.url}/api/predict", files=files, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(classify, range(0, 240, 20)))
    assert statuses == [200] * 12
    assert model.most == 2


def test_a_server_that_cannot_bind_leaves_no_thread_and_no_open_file_behind():
    before = set(threading.enumerate())
    open_files = len(os.listdir("/proc/self/fd"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            webservice.create_server(
                lambda environ, start: [], "127.0.0.1", taken.getsockname()[1], 4
            )
    started = [thread for thread in threading.enumerate() if thread not in before]
    for thread in started:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in started)
    assert len(os.listdir("/proc/self/fd")) == open_files


def _app_answering(status: str, chunks: list[bytes], length: bool):
    def app(environ, start_response):
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", str(sum(map(len, chunks)))))
        start_response(status, headers)
        return iter(chunks)

    return app


@pytest.mark.parametrize(
    "status, chunks, length",
    [
        ("200 OK", [b"one piece"], True),
        ("200 OK", [b"first, ", b"second"], True),
        ("200 OK", [b"no ", b"length"], False),  # chunked
        ("200 OK", [], True),
        ("204 No Content", [], False),
    ],
)
def test_answers_are_whole_whatever_their_framing(status, chunks, length):
    app = _app_answering(status, chunks, length)
    with webservice.BackgroundServer(app) as server, requests.Session() as session:
        for _ in range(2):  # nothing of the first answer is left over for the second
            response = session.get(f"{server.url}/")
            assert response.status_code == int(status.split()[0])
            body = b"" if status.startswith("204") else b"".join(chunks)
            assert response.content == body


def test_close_lets_a_running_request_finish_and_leaves_nothing_open():
    open_files = len(os.listdir("/proc/self/fd"))
    started, release = threading.Event(), threading.Event()

    def slow_app(environ, start_response):
        started.set()
        release.wait(10)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    def fetch(port: int) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/")
            return connection.getresponse().read()
        finally:
            connection.close()

    server = webservice.BackgroundServer(slow_app)
    with ThreadPoolExecutor(2) as pool:
        answer = pool.submit(fetch, server.port)
        assert started.wait(10)
        closing = pool.submit(server.close)
        # close() waits for the request: the connections stay open meanwhile.
        server._thread.join(timeout=0.5)
        assert server._thread.is_alive() and not closing.done()
        release.set()
        assert answer.result() == b"done"
        closing.result()
    server.close()  # again: nothing left to do
    assert not server._thread.is_alive()
    assert len(os.listdir("/proc/self/fd")) == open_files


def test_an_app_that_fails_is_a_json_500_and_the_server_goes_on(caplog):
    calls = []

    def failing_app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        if len(calls) == 1:
            raise RuntimeError("a fault inside the app")
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with webservice.BackgroundServer(failing_app) as server:
        response = requests.get(f"{server.url}/first", timeout=10)
        assert response.status_code == 500
        assert response.json() == {"error": "Internal Server Error."}
        assert requests.get(f"{server.url}/second", timeout=10).content == b"ok"
    assert "a fault inside the app" in caplog.text  # logged, never shown


def test_a_connection_over_the_limit_is_a_json_503():
    """Connections are bounded (MODELHUB_MAX_CONNECTIONS): one more is answered at once and
    closed; once one of the others closes, a new one is served again."""
    app = _app_answering("200 OK", [b"ok"], True)
    with webservice.BackgroundServer(app, settings=Settings(max_connections=3)) as server:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in "abc"]
        try:
            for connection in held:  # served: the server has taken each of them
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert connection.recv(4096).startswith(b"HTTP/1.1 200")
            response = requests.get(f"{server.url}/", timeout=10)
            assert response.status_code == 503
            assert response.json() == {"error": "Service Unavailable."}
            held.pop().close()
            deadline = time.monotonic() + 10
            while (answer := requests.get(f"{server.url}/", timeout=10)).status_code == 503:
                assert time.monotonic() < deadline
                time.sleep(0.01)  # the poll's pace; the deadline bounds it
            assert answer.content == b"ok"
        finally:
            for connection in held:
                connection.close()
