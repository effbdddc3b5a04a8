"""The upload rule (modelhubapi.safety.files): type from bytes, accepted formats, pixel limit,
empty files and unparsable headers, each answered with a plain 4xx message; and truncated or
corrupt pixels blamed when a model fails on them."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image, ImageFile

from modelhubapi.safety.errors import InputError
from modelhubapi.safety.files import (
    DEFAULT_LIMITS,
    blame_corrupt_files,
    check_input_file,
    file_suffix,
    sniff_mime,
)
from modelhubapi.settings import Settings

# The raster types the rule must sniff; each is named after the Pillow format that writes it.
RASTER_MIMES = ["image/bmp", "image/gif", "image/jpeg", "image/png", "image/tiff", "image/webp"]
CORRUPT = "The file is truncated or corrupt."


def image_bytes(pillow_format: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A noisy RGB picture (noise, so truncation always cuts into pixel data)."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buffer, pillow_format)
    return buffer.getvalue()


def raster_bytes(mime: str) -> bytes:
    """`image_bytes` in the raster type `mime` (image/png is written by Pillow's PNG)."""
    return image_bytes(mime.removeprefix("image/").upper())


def write(folder, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def refusal(path: str, accepted: list[str], limits: Settings = DEFAULT_LIMITS) -> InputError:
    with pytest.raises(InputError) as caught:
        check_input_file(path, accepted, limits)
    assert 400 <= caught.value.status < 500
    assert os.path.dirname(path) not in caught.value.message
    return caught.value


def blamed(path: str, accepted: list[str]) -> InputError:
    """What a caller gets for `path` when the model then fails on it: the header checks'
    refusal, or the failure blamed on the file."""
    with pytest.raises(InputError) as caught:
        check_input_file(path, accepted)
        with blame_corrupt_files([path]):
            raise OSError("the model could not read it")
    return caught.value


def write_volume(folder, name: str, shape: tuple[int, ...]) -> str:
    path = str(folder / name)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros(shape, dtype=np.int16)), path)
    return path


# --- sniffing: the bytes decide, whatever the name --------------------------------------


@pytest.mark.parametrize("mime", RASTER_MIMES)
def test_raster_formats_are_sniffed_from_bytes_not_names(tmp_path, mime):
    path = write(tmp_path, "misleading.txt", raster_bytes(mime))
    assert sniff_mime(path) == mime
    assert check_input_file(path, [mime]) == mime


@pytest.mark.parametrize(
    ("name", "shape", "mime"),
    [
        ("volume.nii", (3, 4, 5), "application/nii"),
        ("volume.nii.gz", (3, 4, 5), "application/nii-gzip"),
        ("volume.nrrd", (4, 5), "application/nrrd"),
        ("slice.dcm", (8, 8), "application/dicom"),
    ],
)
def test_medical_formats_are_sniffed(tmp_path, name, shape, mime):
    written = write_volume(tmp_path, name, shape)
    renamed = str(tmp_path / "upload")
    os.rename(written, renamed)
    assert sniff_mime(renamed) == mime
    assert check_input_file(renamed, [mime]) == mime


def test_numpy_and_json_are_sniffed(tmp_path):
    npy = str(tmp_path / "array")
    with open(npy, "wb") as file:
        np.save(file, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert sniff_mime(npy) == "application/npy"
    document = write(tmp_path, "inputs", b'\xef\xbb\xbf {"t1": {"fileurl": "a.png"}}')
    assert sniff_mime(document) == "application/json"
    assert check_input_file(document, ["application/json"]) == "application/json"


@pytest.mark.parametrize(
    "data",
    [
        b"plain text, not JSON",
        b"42",
        b'"a JSON string is any text"',
        b'{"unfinished": ',
        b"[" * 100_000 + b"]" * 100_000,
        b"{" + b" " * (1024 * 1024) + b"}",
        b"BM" + bytes(40),
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x1f\x8b\x08\x00" + os.urandom(64),
        zlib.compress(b"x"),
        bytes(128) + b"DIC",
    ],
    ids=[
        "text",
        "json-number",
        "json-string",
        "broken-json",
        "deep-json",
        "big-json",
        "bmp-without-info-header",
        "riff-wave",
        "broken-gzip",
        "zlib",
        "short-dicom",
    ],
)
def test_unknown_bytes_have_no_type(tmp_path, data):
    path = write(tmp_path, "upload", data)
    assert sniff_mime(path) is None
    assert refusal(path, ["application/json", "image/bmp"]).message == "Incorrect file type."


def test_gzip_of_something_else_is_not_nifti(tmp_path):
    gzip_writer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    data = gzip_writer.compress(image_bytes("PNG")) + gzip_writer.flush()
    path = write(tmp_path, "upload.nii.gz", data)
    assert sniff_mime(path) is None


def test_gzip_bomb_is_sniffed_from_its_header_only(tmp_path):
    """A NIfTI header followed by 128 MiB of zeros, compressed to a few hundred KB:
    sniffing inflates only the header, and the header's voxel count refuses it."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 1024, 1024, 128, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)  # datatype uint8, bitpix 8
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    header[344:348] = b"n+1\x00"
    compressor = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
    chunks = [compressor.compress(bytes(header) + bytes(4))]
    zeros = bytes(16 * 1024 * 1024)
    chunks += [compressor.compress(zeros) for _ in range(8)]
    path = write(tmp_path, "bomb", b"".join(chunks) + compressor.flush())
    assert os.path.getsize(path) < 1024 * 1024
    assert sniff_mime(path) == "application/nii-gzip"
    assert "too large" in refusal(path, ["application/nii-gzip"]).message


# --- accepted formats ---------------------------------------------------------------------


def test_types_not_accepted_are_refused(tmp_path):
    path = write(tmp_path, "image.png", image_bytes("JPEG"))
    assert refusal(path, ["image/png"]).message == "Incorrect file type."
    assert refusal(path, []).message == "Incorrect file type."


@pytest.mark.parametrize(
    ("pillow_format", "config_spelling", "sniffed"),
    [
        ("JPEG", "image/jpg", "image/jpeg"),
        ("JPEG", " IMAGE/JPEG ", "image/jpeg"),
        ("BMP", "image/x-ms-bmp", "image/bmp"),
    ],
)
def test_config_spellings_of_a_type_are_accepted(tmp_path, pillow_format, config_spelling, sniffed):
    path = write(tmp_path, "upload", image_bytes(pillow_format))
    assert check_input_file(path, [config_spelling]) == sniffed


def test_numpy_matches_modelhubs_octet_stream_and_nifti_both_spellings(tmp_path):
    npy = str(tmp_path / "array.npy")
    np.save(npy, np.zeros((2, 2)))
    assert check_input_file(npy, ["application/octet-stream"]) == "application/npy"
    plain = write_volume(tmp_path, "plain.nii", (2, 3, 4))
    assert check_input_file(plain, ["application/nii-gzip"]) == "application/nii"
    # ...but octet-stream does not let unknown bytes through.
    other = write(tmp_path, "blob", os.urandom(256))
    assert refusal(other, ["application/octet-stream"]).message == "Incorrect file type."


def test_every_sniffed_type_has_a_file_suffix():
    for mime in [*RASTER_MIMES, "application/json", "application/npy", "application/nrrd"]:
        assert file_suffix(mime).startswith(".")
    assert file_suffix("application/nii-gzip") == ".nii.gz"
    assert file_suffix("text/plain") == ""


# --- empty, truncated, corrupt ------------------------------------------------------------


def test_empty_file_is_refused_plainly(tmp_path):
    path = write(tmp_path, "empty.png", b"")
    assert refusal(path, ["image/png"]).message == "The file is empty."


@pytest.mark.parametrize("mime", RASTER_MIMES)
def test_truncated_images_are_refused(tmp_path, mime):
    data = raster_bytes(mime)
    path = write(tmp_path, "half", data[: len(data) // 2])
    assert blamed(path, [mime]).message == CORRUPT


@pytest.mark.filterwarnings("ignore:Tag data larger than file")
@pytest.mark.parametrize("mime", RASTER_MIMES)
def test_corrupt_images_are_refused(tmp_path, mime):
    """Right magic number, garbage after the first 16 bytes."""
    data = raster_bytes(mime)
    path = write(tmp_path, "garbage", data[:16] + b"\xa5" * (len(data) - 16))
    error = blamed(path, [mime])
    assert error.message in (CORRUPT, "Incorrect file type.")


@pytest.mark.parametrize("mime", RASTER_MIMES)
def test_a_model_failure_on_a_sound_image_stays_the_models(tmp_path, mime):
    path = write(tmp_path, "whole", raster_bytes(mime))
    assert check_input_file(path, [mime]) == mime
    with pytest.raises(OSError, match="the model's own"), blame_corrupt_files([path]):
        raise OSError("the model's own failure")


def test_blaming_skips_files_that_are_not_images_or_not_there(tmp_path):
    paths = [write(tmp_path, "a.json", b"{}"), str(tmp_path / "missing.png")]
    with pytest.raises(ValueError, match="model"), blame_corrupt_files(paths):
        raise ValueError("model")


def test_pixels_are_not_decoded_before_the_model_runs(tmp_path, monkeypatch):
    """The model decodes them anyway: the header checks must not pay for a decode too."""
    path = write(tmp_path, "photo.jpg", raster_bytes("image/jpeg"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert check_input_file(path, ["image/jpeg"]) == "image/jpeg"


def test_corrupt_volume_headers_are_refused(tmp_path):
    nrrd = write(tmp_path, "a.nrrd", b"NRRD0004\ntype: short\ndimension: 2\n\n")
    assert refusal(nrrd, ["application/nrrd"]).message == CORRUPT
    npy = write(tmp_path, "a.npy", b"\x93NUMPY\x01\x00\x05\x00{'sh")
    assert refusal(npy, ["application/npy"]).message == CORRUPT
    with open(write_volume(tmp_path, "a.nii", (2, 2, 2)), "rb") as file:
        nifti = bytearray(file.read())
    struct.pack_into("<h", nifti, 40, 9)  # dim[0] must be 1..7
    path = write(tmp_path, "b.nii", bytes(nifti))
    assert refusal(path, ["application/nii"]).message == CORRUPT


def test_nrrd_pointing_at_a_server_file_is_refused(tmp_path):
    header = (
        b"NRRD0004\ntype: uchar\ndimension: 1\nsizes: 16\nencoding: raw\ndata file: /etc/passwd\n"
    )
    path = write(tmp_path, "detached.nrrd", header)
    assert "separate data file" in refusal(path, ["application/nrrd"]).message


# --- pixel limit, before decoding ---------------------------------------------------------


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: a few KB for hundreds of megapixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    rows_per_block = 1000
    compressed = [
        compressor.compress(row * rows_per_block) for _ in range(height // rows_per_block)
    ]
    compressed.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(compressed))
        + chunk(b"IEND", b"")
    )


def with_dimensions(pillow_format: str, width: int, height: int) -> bytes:
    """A small image whose header claims width x height."""
    data = bytearray(image_bytes(pillow_format, (16, 16)))
    if pillow_format == "JPEG":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
    elif pillow_format == "GIF":
        struct.pack_into("<HH", data, 6, width, height)
        descriptor = data.index(b"\x2c", 13)
        struct.pack_into("<HH", data, descriptor + 5, width, height)
    elif pillow_format == "BMP":
        struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if an image file is decoded: the pixel limit must come first."""
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda image: decoded.append(image) or real_load(image)
    )
    yield decoded
    assert decoded == []


def test_png_decompression_bomb_is_refused_from_its_header(tmp_path, no_decoding):
    path = write(tmp_path, "bomb.png", huge_png(20_000, 20_000))
    assert os.path.getsize(path) < 200_000
    error = refusal(path, ["image/png"])
    assert error.message == "The image is too large: at most 40000000 pixels are allowed."


@pytest.mark.parametrize("pillow_format", ["JPEG", "GIF", "BMP"])
def test_headers_claiming_huge_sizes_are_refused_before_decoding(
    tmp_path, no_decoding, pillow_format
):
    path = write(tmp_path, "bomb", with_dimensions(pillow_format, 30_000, 30_000))
    mime = {"JPEG": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp"}[pillow_format]
    assert "too large" in refusal(path, [mime]).message


def test_pixel_limit_comes_from_the_settings_given(tmp_path):
    limits = Settings(max_pixels=100)
    exact = write(tmp_path, "exact.png", image_bytes("PNG", (10, 10)))
    over = write(tmp_path, "over.png", image_bytes("PNG", (11, 10)))
    assert check_input_file(exact, ["image/png"], limits) == "image/png"
    assert check_input_file(over, ["image/png"]) == "image/png"  # the built-in limit
    message = refusal(over, ["image/png"], limits).message
    assert message.endswith("at most 100 pixels are allowed.")


@pytest.mark.parametrize(
    ("name", "shape"), [("v.nii", (5, 5, 5)), ("v.nii.gz", (5, 5, 5)), ("v.nrrd", (5, 25))]
)
def test_volumes_count_voxels_against_the_pixel_limit(tmp_path, name, shape):
    path = write_volume(tmp_path, name, shape)
    mime = sniff_mime(path)
    assert check_input_file(path, [mime], Settings(max_pixels=125)) == mime
    assert "too large" in refusal(path, [mime], Settings(max_pixels=124)).message


def test_npy_header_claiming_a_huge_array_is_refused(tmp_path):
    header = npy_header({"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)})
    path = write(tmp_path, "huge.npy", header + bytes(64))
    assert "too large" in refusal(path, ["application/npy"]).message


def npy_header(fields: dict) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, fields)
    return buffer.getvalue()
