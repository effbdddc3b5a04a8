"""The production server (waitress) on a loopback port, called over real HTTP."""

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
from waitress import wasyncore

from modelhubapi import ModelHubRESTAPI, webservice


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 2), value).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def served(mock_package, tmp_path):
    """The single-input mock package behind a real waitress server on 127.0.0.1."""
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


def test_waitress_refuses_a_body_over_the_limit_as_json(
    mock_package, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", "1")
    rest_api = ModelHubRESTAPI(single.Model(), mock_package("single"))
    rest_api.working_folder = str(tmp_path)
    with (
        caplog.at_level(logging.INFO, logger="modelhubapi.access"),
        webservice.BackgroundServer(rest_api.app) as server,
    ):
        response = requests.post(f"{server.url}/api/predict", data=bytes(2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json() == {"error": "The request is too large: the limit is 1 MB."}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST /api/predict 413" in caplog.text
    assert os.listdir(tmp_path) == []


def test_start_binds_warms_up_and_serves(mock_package, monkeypatch, tmp_path):
    """`start` blocks, so it runs in a thread; the server it makes is caught to stop it."""
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("MODELHUB_WORKING_DIR", str(tmp_path))
    socket_map: dict = {}
    servers = []
    bound = threading.Event()
    create_server = webservice.create_server

    def recording_create_server(app):
        servers.append(create_server(app, socket_map=socket_map))
        bound.set()
        return servers[0]

    monkeypatch.setattr(webservice, "create_server", recording_create_server)
    # The long-lived objects are frozen out of garbage collection once, before serving
    # (recorded here rather than freezing the test process).
    freezes = []
    monkeypatch.setattr(webservice.gc, "freeze", lambda: freezes.append(True))
    thread = threading.Thread(
        target=webservice.start, args=(single.Model(), mock_package("single")), daemon=True
    )
    thread.start()
    assert bound.wait(timeout=30)
    server = servers[0]
    try:
        response = requests.get(f"http://127.0.0.1:{server.effective_port}/api/ready", timeout=30)
        assert (response.status_code, response.json()) == (200, {"status": "ready"})
        assert freezes == [True]
    finally:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
        thread.join(timeout=30)
        server.task_dispatcher.shutdown()
    assert not thread.is_alive()


# --- the request threads ---------------------------------------------------------------------


class RecordingTask:
    """Stands in for a waitress task: records the thread that served it."""

    def __init__(self, work=lambda: None):
        self.thread: int | None = None
        self.done = threading.Event()
        self._work = work

    def service(self) -> None:
        self.thread = threading.get_ident()
        self._work()
        self.done.set()

    def cancel(self) -> None:
        pass


@pytest.fixture
def dispatcher(monkeypatch):
    """The thread pool of a bound (not running) server with 4 request threads on 2 cores."""
    monkeypatch.setattr(webservice.machine, "usable_cores", lambda: 2)
    socket_map: dict = {}
    server = webservice.create_server(lambda environ, start: [], "127.0.0.1", 0, 4, socket_map)
    yield server.task_dispatcher
    server.task_dispatcher.shutdown()
    wasyncore.close_all(socket_map)


def wait_until_all_idle(dispatcher) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with dispatcher.lock:
            if dispatcher.active_count == 0:
                return
        threading.Event().wait(0.001)
    raise AssertionError("the request threads did not become idle")


def test_requests_one_at_a_time_all_run_on_the_thread_that_finished_last(dispatcher):
    # waitress's own pool would take the four threads in turn.
    wait_until_all_idle(dispatcher)
    threads = []
    for _ in range(8):
        task = RecordingTask()
        dispatcher.add_task(task)
        assert task.done.wait(timeout=10)
        wait_until_all_idle(dispatcher)
        threads.append(task.thread)
    assert len(set(threads)) == 1


def test_requests_beyond_the_cores_wait_for_a_running_thread(dispatcher, monkeypatch):
    monkeypatch.setattr(webservice, "_PATIENCE_SECONDS", 60.0)
    wait_until_all_idle(dispatcher)
    release = threading.Event()
    started = [threading.Event() for _ in range(4)]
    tasks = [
        RecordingTask(lambda event=event: (event.set(), release.wait(timeout=10)))
        for event in started
    ]
    for task, event in zip(tasks[:2], started[:2], strict=True):
        dispatcher.add_task(task)
        assert event.wait(timeout=10)
    dispatcher.add_task(tasks[2])
    dispatcher.add_task(tasks[3])
    # Two threads are idle, but both cores are taken: the two requests wait...
    assert not started[2].wait(timeout=0.2) and not started[3].is_set()
    release.set()
    # ...and the threads that finish take them, without waking another.
    assert all(task.done.wait(timeout=10) for task in tasks)
    assert {tasks[2].thread, tasks[3].thread} <= {tasks[0].thread, tasks[1].thread}


def test_a_request_that_waits_too_long_gets_a_spare_thread(dispatcher, monkeypatch):
    monkeypatch.setattr(webservice, "_PATIENCE_SECONDS", 0.05)
    for _ in range(2):  # the second round is served by threads that were idle
        barrier = threading.Barrier(4)  # 4 requests that can only finish together
        tasks = [RecordingTask(lambda barrier=barrier: barrier.wait(timeout=10)) for _ in range(4)]
        for task in tasks:
            dispatcher.add_task(task)
        assert all(task.done.wait(timeout=10) for task in tasks)
        assert len({task.thread for task in tasks}) == 4
        wait_until_all_idle(dispatcher)


def test_requests_queued_one_after_another_each_get_a_spare_thread_in_time(dispatcher, monkeypatch):
    monkeypatch.setattr(webservice, "_PATIENCE_SECONDS", 0.05)
    barrier = threading.Barrier(4)  # 4 requests that can only finish together
    tasks = [RecordingTask(lambda: barrier.wait(timeout=10)) for _ in range(4)]
    for task in tasks:  # apart, as clients send them: each waits on its own
        dispatcher.add_task(task)
        threading.Event().wait(0.01)
    assert all(task.done.wait(timeout=10) for task in tasks)


def test_shutdown_ends_every_request_thread(dispatcher):
    wait_until_all_idle(dispatcher)
    dispatcher.shutdown()
    assert dispatcher.threads == set()


def test_tasks_added_from_many_threads_at_once_are_all_served(dispatcher):
    tasks = [[RecordingTask() for _ in range(250)] for _ in range(4)]

    def add_all(batch):
        for task in batch:
            dispatcher.add_task(task)

    with ThreadPoolExecutor(max_workers=4) as producers:
        list(producers.map(add_all, tasks))
    assert all(task.done.wait(timeout=10) for batch in tasks for task in batch)
    wait_until_all_idle(dispatcher)
    assert not dispatcher.queue


def test_a_server_that_cannot_bind_leaves_no_thread_and_no_open_file_behind():
    before = set(threading.enumerate())
    open_files = len(os.listdir("/proc/self/fd"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            webservice.create_server(
                lambda environ, start: [], "127.0.0.1", taken.getsockname()[1], 4, {}
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
def test_answers_are_whole_when_the_head_goes_with_the_first_chunk(status, chunks, length):
    app = _app_answering(status, chunks, length)
    with webservice.BackgroundServer(app) as server, requests.Session() as session:
        for _ in range(2):  # nothing of the first answer is left over for the second
            response = session.get(f"{server.url}/")
            assert response.status_code == int(status.split()[0])
            body = b"" if status.startswith("204") else b"".join(chunks)
            assert response.content == body


def test_the_head_and_a_whole_body_go_out_in_one_send(monkeypatch):
    queued = []
    write_soon = webservice.HTTPChannel.write_soon

    def record(channel, data):
        queued.append(bytes(data))
        return write_soon(channel, data)

    monkeypatch.setattr(webservice.HTTPChannel, "write_soon", record)
    with webservice.BackgroundServer(_app_answering("200 OK", [b"{}"], True)) as server:
        assert requests.get(f"{server.url}/").content == b"{}"
    assert len(queued) == 1
    assert queued[0].startswith(b"HTTP/1.1 200 OK\r\n") and queued[0].endswith(b"\r\n\r\n{}")


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
        answer = pool.submit(fetch, server._server.effective_port)
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
