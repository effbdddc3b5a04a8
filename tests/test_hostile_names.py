"""Names picked by the caller, against the real service over HTTP: `/api/samples/<name>`,
`/api/thumbnail/<name>`, `/api/output/<name>` and `predict_sample?filename=`. Request targets
are sent byte for byte (no client-side clean-up of `..`). Anything but a plain name of a file
in the route's own folder is refused with one answer, the same whether the file it points at
exists or not."""

from __future__ import annotations

import os

import pytest
from hostile_support import assert_fast_error, assert_json_error, serve_squeezenet, top1

pytestmark = pytest.mark.usefixtures("clean_and_alive")

CAMEL = "Arabian camel, dromedary, Camelus dromedarius"
# Each shape of a hostile name, with {target} standing for something that exists (or not)
# outside the route's folder.
SHAPES = [
    "..%2F{target}",
    "..%2f..%2f{target}",
    "%2E%2E%2F{target}",
    "%2e%2e%2f{target}",
    "..%5C{target}",
    "..\\{target}",
    "%2e%2e%5c{target}",
    "%252e%252e%252f{target}",
    "..%252f{target}",
    "%C0%AE%C0%AE%2F{target}",
    "%EF%BC%8E%EF%BC%8E%2F{target}",
    "....%2F%2F{target}",
    ".%2F..%2F{target}",
    "{target}%00",
    "{target}%00.jpeg",
    "%00{target}",
    "{target}%0A",
    ".{target}",
    "{target}%2F",
    "{target}%2F.",
    "%2F{target}",
    "~%2F{target}",
    "..;%2F{target}",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serve_squeezenet(tmp_path_factory) as service:
        output = service.rest_api.api.output_folder
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "result.h5"), "wb") as file:
            file.write(b"\x89HDF\r\n\x1a\n")
        # Beside the output folder: reachable only by walking out of it.
        with open(os.path.join(os.path.dirname(output), "secret.h5"), "wb") as file:
            file.write(b"secret")
        yield service


# route -> (a plain name that is served, an existing target outside, a missing one beside it)
ROUTES = {
    "/api/samples/": ("camel.jpeg", "model%2Fconfig.json", "model%2Fnope.json"),
    "/api/thumbnail/": ("thumbnail.jpg", "inference.py", "nope.py"),
    "/api/output/": ("result.h5", "secret.h5", "nope.h5"),
}


@pytest.mark.parametrize("route", ROUTES)
def test_plain_names_are_served(service, route):
    """The routes work: the refusals below are the name rule, not a dead route."""
    status, _, body = service.raw_get(route + ROUTES[route][0])
    assert status == 200
    assert body


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("route", ROUTES)
def test_hostile_names_are_404_alike_whether_or_not_the_target_exists(service, route, shape):
    _, existing, missing = ROUTES[route]
    answers = []
    for target in (existing, missing):
        status, headers, body = service.raw_get(route + shape.format(target=target))
        assert status == 404, (route, shape, body)
        assert headers["Content-Type"] == "application/json"
        answers.append(body)
    assert answers[0] == answers[1]
    assert answers[0] in {b'{"error":"File not found."}\n', b'{"error":"Not found."}\n'}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "%2E%2E",
        "%2e",
        ".hidden",
        ".git",
        "%00",
        "a" * 255,
        "a" * 256,
        "a" * 5000,
        "caf%C3%A9.jpeg",
        "camel%E2%80%AE.jpeg",
        "%FF%FE",
        "CAMEL.JPEG",
        "camel.jpeg%20",
        "%20camel.jpeg",
        "*",
        "camel.jpe%3F",
        "..%00",
    ],
)
def test_other_odd_names_are_404(service, route, name):
    assert_fast_error(lambda: service.get(route + name), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/api/samples//etc/passwd",
        "/api/samples/../../etc/passwd",
        "//etc/passwd",
        "/api/samples//camel.jpeg",
        "/api/thumbnail//thumbnail.jpg",
        "/api/thumbnail/%2Fthumbnail.jpg",
        "/api/output//result.h5",
        "/api//samples/camel.jpeg",
    ],
)
def test_paths_with_doubled_or_leading_slashes_are_404_json_not_redirects(service, path):
    """A doubled slash is not tidied up into another path (Werkzeug's default answers it
    with an HTML redirect to the merged path before any handler runs)."""
    status, headers, body = service.raw_get(path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert "Location" not in headers
    assert body in {b'{"error":"File not found."}\n', b'{"error":"Not found."}\n'}


# --- predict_sample: the same rule, answered 400 as ModelHub's clients expect ----------------

PREDICT_SAMPLE_NAMES = [
    "../model/config.json",
    "../model/nope.json",
    "../inference.py",
    "../nope.py",
    "/etc/passwd",
    "/etc/nope",
    "..\\model\\config.json",
    "..\\model\\nope.json",
    "%2e%2e%2fmodel%2fconfig.json",
    "%2e%2e%2fmodel%2fnope.json",
    "sample_data/camel.jpeg",
    "./camel.jpeg",
    "camel.jpeg/",
    "camel.jpeg\x00",
    "camel.jpeg\x00.png",
    ".hidden",
    "..",
    ".",
    "",
    "a" * 5000,
    "café.jpeg",
    "camel.jpeg\n",
    "CAMEL.JPEG",
    "nope.jpeg",
]


def test_predict_sample_with_a_plain_name_classifies(service):
    assert top1(service.get("/api/predict_sample", params={"filename": "camel.jpeg"})) == CAMEL


def test_predict_sample_refuses_every_other_name_with_one_answer(service):
    bodies = set()
    for name in PREDICT_SAMPLE_NAMES:
        response = service.get("/api/predict_sample", params={"filename": name})
        assert_json_error(response, 400, "File not found.")
        bodies.add(response.content)
    missing = service.get("/api/predict_sample")
    assert_json_error(missing, 400, "File not found.")
    bodies.add(missing.content)
    assert len(bodies) == 1


def test_predict_sample_refusals_are_fast(service):
    for name in ["../model/config.json", "a" * 5000, "/etc/passwd"]:
        assert_fast_error(
            lambda name=name: service.get("/api/predict_sample", params={"filename": name}), 400
        )


# --- routes and methods that do not exist ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nope", 404),
        ("GET", "/api/../../etc/passwd", 404),
        ("GET", "/static/..%2F..%2Fsettings.py", 404),
        ("DELETE", "/api/predict", 405),
        ("PUT", "/api/samples/camel.jpeg", 405),
        ("POST", "/api/get_config", 405),
        ("TRACE", "/api/health", 405),
    ],
)
def test_unknown_routes_and_methods_are_json_errors(service, method, path, status):
    assert_fast_error(
        lambda: service.session.request(method, service.url + path, timeout=60), status
    )
