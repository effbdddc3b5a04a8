"""Property: whatever bytes arrive, check_input_file either names an accepted type or
refuses them with a 4xx InputError, never any other exception."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from modelhubapi.safety.errors import InputError
from modelhubapi.safety.files import check_input_file
from modelhubapi.settings import Settings

# A pixel limit low enough that a mutated header claiming a big-but-allowed size cannot
# make each example allocate hundreds of MB.
LIMITS = Settings(max_pixels=250_000)

# Pillow warns (and carries on) about the damaged metadata these tests are made of.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

ACCEPTED = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/webp",
    "application/json",
    "application/npy",
    "application/nii",
    "application/nii-gzip",
    "application/nrrd",
    "application/dicom",
]


def _image(pillow_format: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((24, 16), 50).convert(mode).save(buffer, pillow_format)
    return buffer.getvalue()


def _volume(suffix: str, folder: str) -> bytes:
    path = os.path.join(folder, "seed" + suffix)
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5), dtype=np.int16)), path)
    with open(path, "rb") as file:
        return file.read()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder for the examples."""
    return str(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def seeds(workdir):
    images = [
        _image(pillow_format, mode)
        for pillow_format, modes in {
            "PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
            "JPEG": ["L", "RGB", "CMYK"],
            "GIF": ["P"],
            "BMP": ["P", "RGB"],
            "TIFF": ["RGBA", "I;16"],
            "WEBP": ["RGB", "RGBA"],
        }.items()
        for mode in modes
    ]
    npy = io.BytesIO()
    np.save(npy, np.ones((2, 3), dtype=np.float32))
    volumes = [_volume(suffix, workdir) for suffix in (".nii", ".nii.gz", ".nrrd", ".dcm")]
    return [*images, npy.getvalue(), *volumes, b'{"t1": {"fileurl": "a.png"}}']


@st.composite
def mutated(draw, seeds):
    """A seed file with a few random byte flips, insertions, deletions or a truncation."""
    data = bytearray(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "max"]))
        if not data or operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif operation == "truncate":
            del data[position:]
        else:  # a header field pushed to its maximum (sizes, lengths, offsets)
            data[position : position + 4] = b"\xff\xff\xff\x7f"
    return bytes(data)


def _check(workdir: str, data: bytes) -> None:
    path = os.path.join(workdir, "upload")
    with open(path, "wb") as file:
        file.write(data)
    try:
        mime = check_input_file(path, ACCEPTED, LIMITS)
    except InputError as error:
        assert 400 <= error.status < 500
        assert workdir not in error.message
    else:
        assert mime in ACCEPTED


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_are_accepted_or_refused_with_a_4xx(workdir, seeds, data):
    _check(workdir, data.draw(mutated(seeds)))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_accepted_or_refused_with_a_4xx(workdir, data):
    _check(workdir, data)
