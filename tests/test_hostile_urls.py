"""`/api/predict?fileurl=` and multi-input JSON against the real service over HTTP, with
loopback servers as the remote side: non-http schemes and every spelling of a private host
are refused without any connection (a canary counts them), and with private URLs allowed
for these loopback tests, a photo classifies while hanging, endless, looping and redirecting
servers get a clear 4xx in time. The working folder is empty after every test."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from typing import Any

import pytest
import requests
from hostile_support import (
    assert_fast_error,
    assert_json_error,
    encode,
    photo,
    serve_squeezenet,
    top1,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback_servers import (
    LOOPBACK_LOCATIONS,
    PUBLIC_NAME,
    answering,
    endless,
    huge_length,
    redirect_to,
    serving,
)
from mockmodels.multi import inference as multi
from PIL import Image

from modelhubapi import ModelHubRESTAPI, webservice
from modelhubapi.settings import Settings

CAMEL = "Arabian camel, dromedary, Camelus dromedarius"
NOT_ALLOWED = "URL not allowed: its host is unknown or not public."
UNRESOLVED = "The URL's host name could not be resolved."  # a name the resolver does not know
ONLY_HTTP = "Only http and https URLs are allowed."
OUTSIDE = "Local input files must be in sample_data/ or the data folder."
TIMEOUT_SECONDS = 2

pytestmark = pytest.mark.usefixtures("clean_and_alive")


def _serve(tmp_path_factory, **settings: Any):
    """SqueezeNet served with this module's limits and `settings`."""
    return serve_squeezenet(
        tmp_path_factory, max_upload_bytes=1024 * 1024, url_timeout=TIMEOUT_SECONDS, **settings
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with _serve(tmp_path_factory) as service:
        yield service


@pytest.fixture(scope="module")
def fetching_service(tmp_path_factory):
    """The service, but allowed to fetch from loopback servers (the canary, `serving`)."""
    with _serve(tmp_path_factory, allow_private_urls=True) as service:
        yield service


@pytest.fixture(scope="module")
def camel_jpeg() -> bytes:
    return encode(photo(), "JPEG", quality=90)


@pytest.fixture
def canary(camel_jpeg):
    """A loopback server that would serve the photo; tests assert it is never contacted."""
    with serving({"/": answering(200, camel_jpeg)}) as server:
        yield server


# --- refused before any connection -----------------------------------------------------------

SCHEMES = [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "FILE:///etc/passwd",
    "ftp://127.0.0.1:{port}/camel.jpg",
    "gopher://127.0.0.1:{port}/_GET%20/",
    "dict://127.0.0.1:{port}/info",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB",
    "javascript:alert(document.domain)",
    "jar:http://127.0.0.1:{port}/x.jar!/",
    "//127.0.0.1:{port}/",
    "127.0.0.1:{port}/",
    "localhost/",
]


def _fullwidth(text: str) -> str:
    """`text` in fullwidth forms (U+FF01..U+FF5E), which IDNA folds back to ASCII."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


PRIVATE_SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "https://127.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0x7f.1:{port}/",
    "http://017700000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.000.000.001:{port}/",
    "http://[::1]:{port}/",
    "http://[0:0:0:0:0:0:0:1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::]:{port}/",
    "http://localhost:{port}/",
    "http://localhost.:{port}/",
    "http://LOCALHOST:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1:{port}/",
    "http://172.16.0.1:{port}/",
    "http://192.168.1.1:{port}/",
    "http://100.64.0.1:{port}/",
    "http://[fe80::1%25lo]:{port}/",
    # userinfo tricks: whichever host a parser picks, it is loopback or refused
    "http://public.example@127.0.0.1:{port}/",
    "http://user:pass@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}@public.example/",
    "http://public.example#@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}\\@public.example/",
    "http://public.example\\@127.0.0.1:{port}/",
    # percent-encoded and padded hosts
    "http://%31%32%37.0.0.1:{port}/",
    "http://%6c%6f%63%61%6c%68%6f%73%74:{port}/",
    "http://127.0.0.1%2f@public.example:{port}/",
    "http://127.0.0.1%00.public.example:{port}/",
    " http://127.0.0.1:{port}/",
    "http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: public.example",
    # IDN oddities that fold to loopback
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:{port}/",
    "http://" + _fullwidth("localhost") + ":{port}/",
    "http://" + _fullwidth("127.0.0.1") + ":{port}/",
    "http://127。0。0。1:{port}/",
    "http://localhost。:{port}/",
    "http://\N{SCRIPT SMALL L}ocalhost:{port}/",
]


def _refused(service, url: str, message: str | None) -> None:
    assert_fast_error(lambda: service.predict_url(url), 400, message)


def test_non_http_schemes_are_refused_unconnected(fetching_service, canary):
    """Even with private hosts allowed, only http and https are ever fetched."""
    for spelling in SCHEMES:
        _refused(fetching_service, spelling.format(port=canary.port), ONLY_HTTP)
    assert canary.contacts == 0


def test_every_spelling_of_a_private_host_is_refused_unconnected(service, canary):
    for spelling in PRIVATE_SPELLINGS:
        url = spelling.format(port=canary.port)
        error = assert_fast_error(lambda url=url: service.predict_url(url), 400)
        assert error in {NOT_ALLOWED, ONLY_HTTP, UNRESOLVED}, (url, error)
    assert canary.contacts == 0


def test_the_canary_does_answer_once_private_hosts_are_allowed(fetching_service, canary):
    """Without this, the refusals above could come from a canary nobody could reach."""
    assert top1(fetching_service.predict_url(canary.url("/"))) == CAMEL
    assert top1(fetching_service.predict_url(f"http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:{canary.port}/")) == CAMEL
    assert canary.contacts == 2


def test_a_url_with_no_fileurl_value_is_400(service):
    assert_fast_error(lambda: service.get("/api/predict?fileurl="), 400)
    assert_fast_error(lambda: service.get("/api/predict?fileurl"), 400)


# --- private hosts allowed (our own loopback servers): what the remote side answers ----------


def test_a_photo_on_a_loopback_server_classifies_like_its_upload(
    fetching_service, camel_jpeg
):
    with serving({"/camel.jpg": answering(200, camel_jpeg)}) as server:
        by_url = fetching_service.predict_url(server.url("/camel.jpg"))
    by_upload = fetching_service.upload(camel_jpeg, "camel.jpg")
    assert top1(by_url) == CAMEL
    assert by_url.json()["output"] == by_upload.json()["output"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>not a picture</html>", "Incorrect file type."),
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "The file is truncated or corrupt."),
        (json.dumps({"input": {"fileurl": "/etc/passwd"}}).encode(), "Incorrect file type."),
    ],
    ids=["html", "empty", "corrupt png", "multi-input json"],
)
def test_a_downloaded_file_is_checked_like_an_upload(fetching_service, body, message):
    with serving({"/file": answering(200, body)}) as server:
        _refused(fetching_service, server.url("/file"), message)


def test_a_downloaded_bomb_is_refused_from_its_header(fetching_service):
    bomb = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    bomb[6:10] = b"\x30\x75\x30\x75"  # logical screen 30000x30000
    with serving({"/bomb.gif": answering(200, bytes(bomb))}) as server:
        _refused(fetching_service, server.url("/bomb.gif"), None)


@pytest.mark.parametrize("status", [301, 404, 500])
def test_upstream_errors_are_400_plainly(fetching_service, status):
    routes = {"/x": answering(status, b"secret detail at 10.1.2.3")}
    with serving(routes) as server:
        _refused(fetching_service, server.url("/x"), f"The URL answered with HTTP status {status}.")


def test_a_closed_port_is_400(fetching_service, closed_port_url):
    _refused(fetching_service, f"{closed_port_url}/", "The URL could not be downloaded.")


def test_a_hanging_server_is_400_at_the_timeout_and_others_are_served(
    fetching_service, camel_jpeg
):
    """The hanging download holds one request thread until MODELHUB_URL_TIMEOUT; meanwhile
    the service answers health checks and predictions at once."""
    reached = threading.Event()

    def hang(handler) -> None:
        reached.set()
        handler.server.stopping.wait(60)

    with serving({"/hang": hang}) as server:
        result = {}

        def hanging() -> None:
            started = time.monotonic()
            result["response"] = fetching_service.predict_url(server.url("/hang"))
            result["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=hanging)
        thread.start()
        assert reached.wait(timeout=30)
        fetching_service.assert_alive()
        assert top1(fetching_service.upload(camel_jpeg)) == CAMEL
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert_json_error(result["response"], 400, "The URL did not answer in time.")
    assert TIMEOUT_SECONDS * 0.9 <= result["seconds"] < TIMEOUT_SECONDS + 8


@pytest.mark.parametrize("route", [endless, huge_length], ids=["endless", "10 GB"])
def test_a_download_over_the_limit_is_413(fetching_service, route):
    with serving({"/big": route}) as server:
        assert_fast_error(
            lambda: fetching_service.predict_url(server.url("/big")),
            413,
            "The file is larger than the 1 MB limit.",
        )


def test_a_redirect_loop_ends_with_400(fetching_service):
    routes = {"/a": redirect_to("/b", 301), "/b": redirect_to("/a", 307)}
    with serving(routes) as server:
        _refused(fetching_service, server.url("/a"), "Too many redirects.")
        assert server.contacts == 4


def test_a_short_redirect_chain_is_followed(fetching_service, camel_jpeg):
    routes = {
        "/1": redirect_to("/2", 301),
        "/2": redirect_to("/3", 308),
        "/3": answering(200, camel_jpeg),
    }
    with serving(routes) as server:
        assert top1(fetching_service.predict_url(server.url("/1"))) == CAMEL


def test_a_redirect_to_another_scheme_is_refused(fetching_service):
    with serving({"/go": redirect_to("file:///etc/passwd")}) as server:
        _refused(fetching_service, server.url("/go"), ONLY_HTTP)


@pytest.mark.parametrize(
    "location",
    ["http://[::1", "http://[zz]/", "//[::1/x", "http://a:99999/", "http://%zz/", "\x7f"],
)
def test_a_redirect_to_a_malformed_url_is_a_400(fetching_service, location):
    """The remote side writes the Location header: whatever it holds, the answer is a 4xx."""
    with serving({"/go": redirect_to(location)}) as server:
        _refused(fetching_service, server.url("/go"), None)


# --- property: whatever the URL or the Location, a 4xx (or a picture), never a 5xx ----------


_SCHEMES = st.sampled_from(["http://", "https://", "HTTP://", "//", "/", "", "ftp://", "http:"])
_HOST_PARTS = st.sampled_from(
    ["[", "]", "::1", "::ffff:", "127.0.0.1", "127.1", "0x7f", "localhost", ":", "80", "99999",
     "@", "%", "%25", "#", "?", "\\", ".", "..", "xn--", "\u3002",
     "\N{CIRCLED LATIN SMALL LETTER L}"]
)  # fmt: skip
_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=8)
# Strings shaped like URLs (a scheme, a host made of pieces that confuse parsers, a rest).
_URLISH = st.builds(
    lambda scheme, host, rest: scheme + "".join(host) + rest,
    _SCHEMES,
    st.lists(_HOST_PARTS | _TEXT, max_size=6),
    _TEXT,
)


def _refused_or_classified(response) -> None:
    if response.status_code != 200:
        assert_json_error(response)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(url=_URLISH)
def test_any_fileurl_gets_a_4xx_never_a_5xx(service, url):
    assert not service.rest_api.settings.allow_private_urls
    assert_fast_error(lambda: service.predict_url(url))


@pytest.fixture(scope="module")
def redirector():
    """A loopback server redirecting /go to whatever `location[0]` holds."""
    location = [""]
    routes = {"/go": lambda handler: handler.answer(302, Location=location[0])}
    with serving(routes) as server:
        yield server, location


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(location=_URLISH)
def test_any_redirect_location_gets_a_4xx_never_a_5xx(
    fetching_service, redirector, location
):
    server, current = redirector
    current[0] = location
    _refused_or_classified(fetching_service.predict_url(server.url("/go")))
    fetching_service.assert_clean()


# --- a public-looking host that redirects to a private one ---------------------------------


def test_a_public_host_serving_the_photo_classifies(service, routed_public_name, camel_jpeg):
    """The routed name works: the refusal below is the address rule, not a dead route."""
    with serving({"/camel.jpg": answering(200, camel_jpeg)}) as server:
        assert top1(service.predict_url(server.url("/camel.jpg", host=PUBLIC_NAME))) == CAMEL


@pytest.mark.parametrize(
    "location", [*LOOPBACK_LOCATIONS, "http://169.254.169.254/latest/meta-data/"]
)
def test_a_redirect_from_a_public_host_to_a_private_one_is_refused(
    service, routed_public_name, canary, location
):
    routes = {"/go": redirect_to(location.format(port=canary.port))}
    with serving(routes) as server:
        _refused(service, server.url("/go", host=PUBLIC_NAME), NOT_ALLOWED)
        assert server.contacts == 1
    assert canary.contacts == 0


# --- multi-input JSON --------------------------------------------------------------------------


def test_multi_input_json_is_not_an_input_squeezenet_accepts(service):
    inputs = {"format": ["application/json"], "input": {"fileurl": "sample_data/camel.jpeg"}}
    assert_fast_error(
        lambda: service.upload(json.dumps(inputs).encode(), "inputs.json"),
        400,
        "Incorrect file type.",
    )


@pytest.fixture(scope="module")
def multi_service(tmp_path_factory):
    """The multi-input mock package, copied so its sample_data can hold symbolic links that
    lead out of it, served over HTTP."""
    root = tmp_path_factory.mktemp("multi")
    package = root / "package"
    shutil.copytree(os.path.dirname(multi.__file__), package)
    outside = root / "outside"
    outside.mkdir()
    shutil.copy(package / "sample_data" / "first.png", outside / "secret.png")
    samples = package / "sample_data"
    os.symlink(outside / "secret.png", samples / "escape.png")
    os.symlink(package / "model" / "config.json", samples / "config.json")
    os.symlink(outside, samples / "outside-folder")
    os.symlink("first.png", samples / "alias.png")
    working = root / "working"
    working.mkdir()
    refusing = Settings(allow_private_urls=False)
    rest_api = ModelHubRESTAPI(multi.Model(), str(package), refusing)
    rest_api.working_folder = str(working)
    rest_api.api.output_folder = str(root / "output")
    with webservice.BackgroundServer(rest_api.app, settings=refusing) as server:
        yield server.url, str(package), str(outside), str(working)


def _post_inputs(url: str, inputs: dict):
    return requests.post(
        f"{url}/api/predict",
        files={"file": ("inputs.json", json.dumps(inputs).encode())},
        timeout=60,
    )


def test_multi_input_local_paths_inside_sample_data_work(multi_service):
    url, _, _, working = multi_service
    inputs = {
        "first": {"fileurl": "sample_data/alias.png"},
        "second": {"fileurl": "sample_data/second.png"},
    }
    response = _post_inputs(url, inputs)
    assert response.status_code == 200, response.text
    assert os.listdir(working) == []


def test_multi_input_local_paths_leading_out_are_refused_alike(multi_service):
    """`../`, absolute paths and symbolic links out of sample_data: one answer, whether the
    target exists or not, and the target is never read."""
    url, package, outside, working = multi_service
    references = [
        "../model/config.json",
        "../model/no-such-file.json",
        "sample_data/../model/config.json",
        "sample_data/../../outside/secret.png",
        os.path.join(outside, "secret.png"),
        os.path.join(outside, "no-such-file.png"),
        os.path.join(package, "model", "config.json"),
        "/etc/passwd",
        "/etc/no-such-file",
        "/proc/self/environ",
        "sample_data/escape.png",
        "sample_data/config.json",
        "sample_data/outside-folder/secret.png",
        "sample_data/outside-folder/no-such-file.png",
        "./../package/../outside/secret.png",
    ]
    bodies = set()
    for reference in references:
        inputs = {"first": {"fileurl": reference}, "second": {"fileurl": "sample_data/second.png"}}
        response = _post_inputs(url, inputs)
        assert_json_error(
            response, 400, "Local input files must be in sample_data/ or the data folder."
        )
        bodies.add(response.content)
    assert len(bodies) == 1
    assert os.listdir(working) == []


def test_multi_input_urls_follow_the_url_rule(multi_service, canary):
    url, _, _, working = multi_service
    for spelling in ["http://127.1:{port}/", "file:///etc/passwd", "http://[::1]:{port}/"]:
        inputs = {
            "first": {"fileurl": spelling.format(port=canary.port)},
            "second": {"fileurl": "sample_data/second.png"},
        }
        assert_json_error(_post_inputs(url, inputs), 400)
    assert canary.contacts == 0
    assert os.listdir(working) == []
