"""Images that are small files but cost a lot to decode: deep (16-bit, 32-bit, float) PNG
and TIFF pictures, and progressive JPEGs whose scans repeat thousands of times. Within the
pixel limit, each is refused from its header, fast; what is accepted stays within 2 s of
CPU and 400 MB of memory (measured in a fresh process)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hostile_support import assert_fast_error, assert_prediction, encode, photo, serve_squeezenet
from PIL import Image
from squeezenet_support import CONTRIB_DIR, REPO_DIR, ServerProcess, subprocess_env

pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.usefixtures("clean_and_alive"),
]

# The attack: 6320 x 6320 is just within the 40 MP pixel limit.
ATTACK_SIDE = 6320
MEMORY_LIMIT_MB = 400
CPU_LIMIT_SECONDS = 2.0


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serve_squeezenet(tmp_path_factory) as service:
        yield service


DEEP = [("I;16", "PNG"), ("I;16", "TIFF"), ("I", "TIFF"), ("F", "TIFF")]


def _deep_file(folder, mode: str, pillow_format: str) -> str:
    """A 40 MP picture of `mode` in a small file (the issue's attack: 75-250 KB)."""
    options = {"compression": "tiff_adobe_deflate"} if pillow_format == "TIFF" else {}
    content = encode(Image.new(mode, (ATTACK_SIDE, ATTACK_SIDE)), pillow_format, **options)
    assert len(content) < 1_000_000
    path = folder / f"deep-{mode.replace(';', '')}.{pillow_format.lower()}"
    path.write_bytes(content)
    return str(path)


def test_deep_40_mp_images_cost_under_2_s_and_400_mb_each(tmp_path):
    """Each measured in a fresh process (its peak its own): 16-bit, 32-bit and float
    pictures of 40 MP are classified, not refused, within the issue's bounds."""
    for (mode, pillow_format), result in zip(
        DEEP, _measure(*(_deep_file(tmp_path, *deep) for deep in DEEP)), strict=True
    ):
        assert result["status"] == 200, (mode, pillow_format, result)
        assert result["cpu"] < CPU_LIMIT_SECONDS, (mode, pillow_format, result)
        assert result["mb"] < MEMORY_LIMIT_MB, (mode, pillow_format, result)


def test_an_image_over_the_memory_budget_is_refused_from_its_header(tmp_path_factory):
    """MODELHUB_MAX_IMAGE_MB=64: a 40 MP 16-bit picture decodes to 80 MB."""
    with serve_squeezenet(tmp_path_factory, max_image_bytes=64 * 1024 * 1024) as small:
        content = encode(Image.new("I;16", (ATTACK_SIDE, ATTACK_SIDE)), "PNG")
        error = assert_fast_error(lambda: small.upload(content, "deep.png"))
        assert "64 MB of memory" in error


def test_an_8_bit_picture_of_as_many_pixels_is_still_accepted(service):
    content = encode(Image.new("L", (ATTACK_SIDE, ATTACK_SIDE), 128), "PNG")
    assert_prediction(service.upload(content, "grey.png"))


def _repeat_last_scan(jpeg: bytes, times: int) -> bytes:
    """`jpeg` (progressive) with its last scan repeated `times` times more, as
    `jpegtran -scans` can write: a valid file, one more pass of the decoder per repeat."""
    position = 2  # after SOI
    last_scan = None
    while position < len(jpeg):
        marker = jpeg[position + 1]
        length = int.from_bytes(jpeg[position + 2 : position + 4], "big")
        end = position + 2 + length
        if marker == 0xDA:  # SOS: its entropy-coded data runs to the next real marker
            while not (jpeg[end] == 0xFF and jpeg[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
            last_scan = (position, end)
        if marker == 0xD9:
            break
        position = end
    start, end = last_scan
    return jpeg[:end] + jpeg[start:end] * times + jpeg[end:]


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_fast(service):
    progressive = encode(photo(), "JPEG", progressive=True, quality=90)
    assert_prediction(service.upload(progressive, "progressive.jpg"))  # the honest one
    hostile = _repeat_last_scan(progressive, 3000)
    assert Image.open(io.BytesIO(hostile)).size == photo().size  # it parses
    error = assert_fast_error(lambda: service.upload(hostile, "scans.jpg"))
    assert "scans" in error


_MEASURE = """
import json, os, resource, sys, time
from inference import Model
from modelhubapi import ModelHubRESTAPI
api = ModelHubRESTAPI(Model(), sys.argv[1])
client = api.app.test_client()
api.warm_up()
results = []
for path in sys.argv[2:]:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = time.process_time()
    with open(path, "rb") as upload:
        answer = client.post("/api/predict", data={"file": (upload, os.path.basename(path))})
    results.append({
        "status": answer.status_code,
        "cpu": time.process_time() - cpu,
        "mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024,
    })
print(json.dumps(results))
"""


def _measure(*paths: str) -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, CONTRIB_DIR, *paths],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        env=subprocess_env(),
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout.splitlines()[-1])


# The bounds for eight such uploads at once, in the served process.
CONCURRENT_LIMIT_MB = 1500
IDLE_SLACK_MB = 100


def test_eight_deep_uploads_at_once_stay_bounded_and_the_memory_comes_back(tmp_path):
    deep = encode(Image.new("I;16", (ATTACK_SIDE, ATTACK_SIDE), 1000), "PNG")
    server = ServerProcess(str(tmp_path))
    try:
        assert requests.get(f"{server.url}/api/ready", timeout=60).status_code == 200
        idle = _memory_mb(server, "VmRSS")

        def upload(_: int) -> int:
            files = {"file": ("deep.png", deep)}
            return requests.post(f"{server.url}/api/predict", files=files, timeout=120).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(upload, range(8))) == [200] * 8
        assert _memory_mb(server, "VmHWM") - idle < CONCURRENT_LIMIT_MB
        # Given back once the server is idle (checked twice a second).
        deadline = time.monotonic() + 10
        while _memory_mb(server, "VmRSS") - idle >= IDLE_SLACK_MB:
            assert time.monotonic() < deadline, _memory_mb(server, "VmRSS") - idle
            time.sleep(0.1)
    finally:
        server.stop()


def _memory_mb(server: ServerProcess, key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of the server process, in MB."""
    return server.rss_kib(key) / 1024
