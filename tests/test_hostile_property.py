"""Property: whatever bytes are uploaded to the real SqueezeNet service - random, or pictures
of every accepted format with bits flipped, cut short, spliced together or with a header
field pushed to its maximum - the answer is a well-formed prediction (200) or a JSON 4xx,
never a 5xx; nothing stays in the working folder and the service still answers.

Mostly through Flask's test client (fast), plus a few examples over real
HTTP (the engine's server)."""

from __future__ import annotations

import io

import pytest
import squeezenet_support
from hostile_support import (
    Answer,
    assert_json_error,
    assert_prediction,
    encode,
    photo,
    serve_squeezenet,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from squeezenet_support import squeezenet_model

from modelhubapi import ModelHubRESTAPI
from modelhubapi.settings import Settings

# Pillow warns (and carries on) about the damaged metadata these tests are made of.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]
# A mutated header may claim any size up to the pixel limit, and every such example would
# allocate that much: a lower limit (4 MP instead of 40) keeps the examples quick.
PIXEL_LIMIT = 4_000_000


def _seeds() -> list[bytes]:
    """Small pictures in every format and mode the model accepts, EXIF included."""
    small = photo().resize((64, 48))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "camera"
    grey16 = small.convert("L").point(lambda value: value * 257, "I")
    frames = [small.convert("P"), ImageOps.mirror(small).convert("P")]
    return [
        encode(small, "JPEG", quality=85, exif=exif.tobytes()),
        encode(small, "JPEG", quality=85, progressive=True),
        encode(small.convert("CMYK"), "JPEG"),
        encode(small.convert("L"), "JPEG"),
        encode(small, "PNG"),
        encode(small.convert("RGBA"), "PNG", exif=exif.tobytes()),
        encode(small.convert("P"), "PNG", transparency=0),
        encode(small.convert("LA"), "PNG"),
        encode(grey16.convert("I;16"), "PNG"),
        encode(small.convert("1"), "PNG"),
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        encode(small, "BMP"),
        encode(small.convert("P"), "BMP"),
        encode(small, "TIFF", compression="tiff_lzw", exif=exif.tobytes()),
        encode(grey16.convert("I;16"), "TIFF"),
        encode(small, "WEBP", quality=80, exif=exif.tobytes()),
        encode(small.convert("RGBA"), "WEBP", lossless=True),
    ]


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    """A seed picture with a few bit flips, insertions, deletions, truncations, header
    fields set to their maximum, or its head spliced onto another seed's tail."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        # Half the time in the first 512 bytes, where the headers (and EXIF) are.
        end = max(len(data) - 1, 0)
        position = draw(st.integers(0, end) | st.integers(0, min(end, 511)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "max", "splice"]))
        if not data or operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "truncate":
            del data[position:]
        elif operation == "max":
            data[position : position + 4] = b"\xff\xff\xff\x7f"
        else:
            other = draw(st.sampled_from(SEEDS))
            data = data[:position] + other[draw(st.integers(0, len(other) - 1)) :]
    return bytes(data)


# Mutated pictures most of the time: they are what gets past the first checks.
uploads = st.one_of(
    mutated(),
    mutated(),
    mutated(),
    st.binary(max_size=4096),
    st.builds(
        lambda magic, tail: magic + tail,
        st.sampled_from([seed[:16] for seed in SEEDS]),
        st.binary(max_size=2048),
    ),
)


def _check_answer(answer) -> None:
    """200 with a well-formed prediction, or a JSON 4xx that leaks nothing; never a 5xx."""
    event(f"status {answer.status_code}")
    if answer.status_code == 200:
        assert_prediction(answer)
    else:
        assert_json_error(answer)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Flask's test client on the real SqueezeNet REST app."""
    working = tmp_path_factory.mktemp("working")
    chosen = Settings(max_pixels=PIXEL_LIMIT, working_dir=str(working))
    rest_api = ModelHubRESTAPI(squeezenet_model(), squeezenet_support.CONTRIB_DIR, chosen)
    return rest_api.app.test_client(), working


def _examples(count: int) -> settings:
    """Hypothesis settings for `count` uploads: each runs the model, so neither a per-example
    deadline nor the health checks on slow or large examples fit."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _upload(test_client, content: bytes):
    return test_client.post(
        "/api/predict",
        data={"file": (io.BytesIO(content), "upload.bin")},
        content_type="multipart/form-data",
    )


@_examples(150)
@given(content=uploads)
def test_any_upload_gets_a_prediction_or_a_4xx(client, content):
    test_client, working = client
    _check_answer(Answer.from_flask(_upload(test_client, content)))
    assert list(working.iterdir()) == []
    assert test_client.get("/api/health").status_code == 200


def test_the_seeds_themselves_classify(client):
    """The mutations start from pictures the service accepts."""
    test_client, _ = client
    for seed in SEEDS:
        assert_prediction(Answer.from_flask(_upload(test_client, seed)))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serve_squeezenet(tmp_path_factory, max_pixels=PIXEL_LIMIT) as service:
        yield service


@_examples(25)
@given(content=uploads)
def test_any_upload_over_http_gets_a_prediction_or_a_4xx(service, content):
    _check_answer(service.upload(content, "upload.bin"))
    service.assert_clean()
    service.assert_alive()
