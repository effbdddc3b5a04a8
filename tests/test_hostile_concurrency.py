"""Many requests at once against the real service: 32 simultaneous uploads of 32 different
pictures each get their own answer (the one the same file gets alone), hostile requests
mixed in change nothing, the working folder is empty after every kind of request, a fault
inside the model is a generic 500, and - against `python -m modelhubapi serve` in a process
of its own - memory stays bounded over 1500 requests and the access log has exactly one
line per request and never a byte of an upload."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from hostile_support import (
    Answer,
    assert_json_error,
    assert_prediction,
    encode,
    photo,
    raw_exchange,
    sample_bytes,
    sample_names,
    serve_squeezenet,
)
from PIL import Image, ImageOps
from squeezenet_support import ServerProcess

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
    pytest.mark.usefixtures("clean_and_alive"),
]

CLIENTS = 32


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Served as in production (8 request threads), with a 1 MB upload limit."""
    with serve_squeezenet(tmp_path_factory, threads=8, max_upload_bytes=1024 * 1024) as service:
        yield service


@pytest.fixture(scope="module")
def pictures() -> list[tuple[str, bytes]]:
    """32 different pictures: the 16 samples as shipped, and each mirrored."""
    names = sample_names()
    assert len(names) == 16
    originals = [(name, sample_bytes(name)) for name in names]
    mirrored = [
        (f"mirrored-{name}", encode(ImageOps.mirror(photo(name)), "JPEG", quality=95))
        for name in names
    ]
    return originals + mirrored


@pytest.fixture(scope="module")
def sequential_answers(service, pictures) -> dict[str, list[dict]]:
    """Each picture's label list, asked for alone, one after the other."""
    return {name: assert_prediction(service.upload(content, name)) for name, content in pictures}


def _upload(url: str, name: str, content: bytes) -> requests.Response:
    with requests.Session() as session:
        return session.post(f"{url}/api/predict", files={"file": (name, content)}, timeout=120)


def _get(url: str, path: str) -> requests.Response:
    """A GET on a connection of its own (a shared Session is not for concurrent use)."""
    return requests.get(f"{url}{path}", timeout=120)


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in a thread of its own, all released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(released, calls))


def _same_answer(got: list[dict], expected: list[dict]) -> bool:
    return [entry["label"] for entry in got] == [entry["label"] for entry in expected] and all(
        abs(a["probability"] - b["probability"]) <= 1e-5 for a, b in zip(got, expected, strict=True)
    )


def test_the_32_pictures_have_32_different_answers(sequential_answers):
    """So that any mix-up between concurrent requests would show in the next test."""
    assert len({json.dumps(answer) for answer in sequential_answers.values()}) == CLIENTS


def test_32_simultaneous_uploads_each_get_their_own_answer(service, pictures, sequential_answers):
    calls = [
        lambda name=name, content=content: _upload(service.url, name, content)
        for name, content in pictures
    ]
    responses = _all_at_once(calls)
    for (name, _), response in zip(pictures, responses, strict=True):
        assert _same_answer(assert_prediction(response), sequential_answers[name]), name


def _hostile_calls(service) -> list[tuple[Callable[[], Any], int]]:
    """Requests that must each be refused, with the status each must get."""
    too_small = encode(photo().resize((8, 8)), "PNG")
    bomb = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    bomb[6:10] = b"\x30\x75\x30\x75"
    truncated = encode(photo(), "PNG")[:5000]
    head = (
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 52428800\r\n\r\n"
    )

    def too_large() -> Answer:
        raw = raw_exchange(service.port, head + bytes(1024))
        return Answer.from_raw(raw)

    return [
        (lambda: _upload(service.url, "a.txt", b"plain text"), 400),
        (lambda: _upload(service.url, "b.gif", bytes(bomb)), 400),
        (lambda: _upload(service.url, "c.png", truncated), 400),
        (lambda: _upload(service.url, "d.png", b""), 400),
        (lambda: _upload(service.url, "e.png", too_small), 400),
        (lambda: _get(service.url, "/api/predict?fileurl=http://127.1/"), 400),
        (lambda: _get(service.url, "/api/predict?fileurl=file:///etc/passwd"), 400),
        (lambda: _get(service.url, "/api/samples/..%2Fmodel%2Fconfig.json"), 404),
        (lambda: _get(service.url, "/api/predict_sample?filename=../x"), 400),
        (too_large, 413),
    ]


def test_hostile_requests_mixed_into_concurrent_uploads_change_nothing(
    service, pictures, sequential_answers
):
    hostile = _hostile_calls(service)
    uploads = [
        lambda name=name, content=content: _upload(service.url, name, content)
        for name, content in pictures
    ]
    responses = _all_at_once(uploads + [call for call, _ in hostile])
    for (name, _), response in zip(pictures, responses[: len(uploads)], strict=True):
        assert _same_answer(assert_prediction(response), sequential_answers[name]), name
    for (_, status), response in zip(hostile, responses[len(uploads) :], strict=True):
        assert_json_error(response, status)


def test_every_kind_of_request_leaves_the_working_folder_empty(service, pictures):
    """Checked after each request, not only at the end of the test."""
    for call, status in _hostile_calls(service):
        assert call().status_code == status
        service.assert_clean()
    name, content = pictures[0]
    assert _upload(service.url, name, content).status_code == 200
    service.assert_clean()
    assert service.get("/api/predict_sample?filename=camel.jpeg").status_code == 200
    service.assert_clean()
    assert service.get("/api/get_model_files").status_code == 200
    service.assert_clean()


class _FaultyModel:
    """A model with a bug: what it raises names a server path and its exception class."""

    def infer(self, input):
        raise RuntimeError(f"cannot open {input}: see /work/main/contrib_src/secret.py")


def test_a_fault_inside_the_model_is_a_generic_500_leaving_nothing(
    service, monkeypatch, pictures, caplog
):
    monkeypatch.setattr(service.rest_api.api, "model", _FaultyModel())
    name, content = pictures[0]
    response = _upload(service.url, name, content)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "Internal server error."}
    service.assert_clean()
    # ... while the server log keeps the whole story.
    assert "secret.py" in caplog.text


# --- a server process of its own: memory and the access log ----------------------------------

ACCESS_LINE = re.compile(
    r"^\S+ \S+ INFO modelhubapi\.access: "
    r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) \d+\.\dms (?:\d+|-)$"
)
MARKER = "MARKER-7f3a9c-never-logged"


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """The service in a process of its own, with a URL-download slot for each of the 4
    clients: their refused `fileurl` requests arrive together, and with the default 2 slots
    a loaded machine answers some of them 503 (the gate's own rule, tested elsewhere)."""
    process = ServerProcess(
        str(tmp_path_factory.mktemp("process")),
        MODELHUB_MAX_UPLOAD_MB="1",
        MODELHUB_URL_DOWNLOADS="4",
    )
    try:
        yield process
    finally:
        process.stop()


def _mixed_requests(process: ServerProcess, small_picture: bytes) -> list[Callable[[], int]]:
    """One round of predictions and refusals of every kind; each call returns the status
    and asserts it is the one expected. Names change every round (unique 404 paths)."""
    text = b"plain text " + MARKER.encode()
    bomb = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    bomb[6:10] = b"\x30\x75\x30\x75"
    truncated = small_picture[: len(small_picture) // 2]
    too_large = (
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 52428800\r\n\r\n"
        + bytes(1024)
    )
    counter = iter(range(10**9))

    def expect(status: int, call: Callable[[requests.Session], Any]) -> Callable:
        def run(session: requests.Session) -> None:
            response = call(session)
            assert response.status_code == status, (response.status_code, response.text)

        return run

    url = process.url

    def post(content: bytes, name: str = "x.png"):
        return lambda session: session.post(
            f"{url}/api/predict", files={"file": (name, content)}, timeout=60
        )

    def get(path: str):
        return lambda session: session.get(f"{url}{path}", timeout=60)

    return [
        expect(200, post(small_picture)),
        expect(200, post(small_picture + MARKER.encode(), "with-marker.png")),
        expect(400, post(text, "marker.jpg")),
        expect(400, post(bytes(bomb))),
        expect(400, post(truncated)),
        expect(400, get("/api/predict?fileurl=http://0x7f000001/" + MARKER)),
        expect(404, lambda session: session.get(f"{url}/api/samples/nope-{next(counter)}.jpg")),
        expect(400, get("/api/predict_sample?filename=../model/config.json")),
        expect(200, get("/api/predict_sample?filename=camel.jpeg")),
        expect(413, lambda session: Answer.from_raw(raw_exchange(process.port, too_large))),
        expect(200, get("/api/get_config")),
        expect(200, get("/api/health")),
    ]


def _run_batch(process: ServerProcess, small_picture: bytes, rounds: int) -> int:
    """`rounds` rounds of the mixed requests from 4 clients; the number of requests sent."""
    calls = _mixed_requests(process, small_picture)

    def client(number: int) -> int:
        with requests.Session() as session:
            for _ in range(number, rounds, 4):
                for call in calls:
                    call(session)
        return len(range(number, rounds, 4)) * len(calls)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sum(pool.map(client, range(4)))


@pytest.fixture(scope="module")
def small_picture() -> bytes:
    return encode(photo().resize((64, 48)), "PNG")


def test_memory_stays_bounded_over_1500_requests(server_process, small_picture):
    warm_up = _run_batch(server_process, small_picture, rounds=25)
    before = server_process.rss_kib()
    sent = _run_batch(server_process, small_picture, rounds=100)
    after = server_process.rss_kib()
    assert warm_up + sent >= 1500
    assert after - before < 40 * 1024, f"RSS grew from {before} KiB to {after} KiB"
    assert os.listdir(server_process.working_folder) == []


def test_one_access_log_line_per_request_and_never_the_content(server_process, small_picture):
    already = len(server_process.access_lines())
    sent = _run_batch(server_process, small_picture, rounds=4)
    lines = server_process.access_lines()[already:]
    assert len(lines) == sent
    for line in lines:
        assert ACCESS_LINE.match(line), line
    statuses = {ACCESS_LINE.match(line)["status"] for line in lines}
    assert statuses == {"200", "400", "404", "413"}
    assert MARKER not in server_process.log()
    assert "Traceback" not in server_process.log()
