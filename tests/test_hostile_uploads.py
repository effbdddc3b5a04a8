"""Hostile and awkward uploads against the real SqueezeNet service over HTTP (the engine's
server on 127.0.0.1): bad files of every kind, multipart oddities, decompression bombs,
bodies over the upload limit (refused before they are read), and pictures in every format
and mode the model accepts, which must classify. After every test the working folder is
empty and the server answers its health check."""

from __future__ import annotations

import gzip
import io
import json
import random
import socket
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from hostile_support import (
    REFUSAL_SECONDS,
    Answer,
    assert_fast_error,
    assert_json_error,
    assert_prediction,
    encode,
    photo,
    raw_exchange,
    sample_bytes,
    serve_squeezenet,
    top1,
)
from PIL import Image, ImageOps

CAMEL = "Arabian camel, dromedary, Camelus dromedarius"
TOO_MANY_PIXELS = "The image is too large: at most 40000000 pixels are allowed."
TOO_LARGE = "The request is too large: the limit is 1 MB."
NO_FILE = 'Send the input file in the multipart form field "file".'
CORRUPT = "The file is truncated or corrupt."
WRONG_TYPE = "Incorrect file type."

# Pillow warns about the damaged or oversized headers these tests are made of.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.usefixtures("clean_and_alive"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service with a 1 MB upload limit, so oversized bodies are cheap to make."""
    with serve_squeezenet(tmp_path_factory, max_upload_bytes=1024 * 1024) as service:
        yield service


# --- files that are not (whole) pictures ---------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes) -> bytes:
    """A grey 8-bit PNG with the given IDAT content and valid chunk checksums."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_with_corrupt_idat() -> bytes:
    """A 64x64 PNG whose compressed pixels are damaged, every chunk checksum still right."""
    pixels = zlib.compress(b"".join(b"\x00" + bytes(range(64)) for _ in range(64)))
    damaged = pixels[:2] + bytes(byte ^ 0x5A for byte in pixels[2:-4]) + pixels[-4:]
    return _png(64, 64, damaged)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _camel_jpeg() -> bytes:
    return encode(photo(), "JPEG", quality=90)


def _camel_png() -> bytes:
    return encode(photo(), "PNG")


BAD_FILES = {
    "empty": (b"", "The file is empty."),
    "random bytes": (random.Random(7).randbytes(4096), WRONG_TYPE),
    "text": (b"just some plain text\n" * 20, WRONG_TYPE),
    "html": (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", WRONG_TYPE),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', WRONG_TYPE),
    "pdf header": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n", WRONG_TYPE),
    "multi-input json": (
        json.dumps({"input": {"fileurl": "sample_data/camel.jpeg"}}).encode(),
        WRONG_TYPE,
    ),
    "numpy array": (_npy(np.zeros((3, 64, 64), np.float32)), WRONG_TYPE),
    "zip": (b"PK\x03\x04" + bytes(26) + b"camel.jpeg", WRONG_TYPE),
    "gzip": (gzip.compress(b"x" * 1000), WRONG_TYPE),
    "jpeg header only": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", CORRUPT),
    "png signature only": (b"\x89PNG\r\n\x1a\n", CORRUPT),
    "gif header then html": (b"GIF89a" + b"<html><script>alert(1)</script></html>", CORRUPT),
    "bmp header only": (b"BM" + bytes(12) + struct.pack("<I", 40) + bytes(8), CORRUPT),
    "webp riff only": (b"RIFF\x10\x00\x00\x00WEBPVP8 \x04\x00\x00\x00", CORRUPT),
    "tiff header only": (b"II*\x00\x08\x00\x00\x00", CORRUPT),
}


@pytest.mark.parametrize(("content", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_files_that_are_no_whole_picture_are_400(service, content, message):
    assert_fast_error(lambda: service.upload(content), 400, message)


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pictures_are_400(service, pillow_format, keep):
    whole = encode(photo(), pillow_format)
    assert_fast_error(lambda: service.upload(whole[: int(len(whole) * keep)]), 400, CORRUPT)


def test_png_with_a_corrupt_idat_is_400(service):
    assert_fast_error(lambda: service.upload(_png_with_corrupt_idat()), 400, CORRUPT)


@pytest.mark.parametrize(
    ("pillow_format", "mode"),
    [("PPM", "RGB"), ("TGA", "RGB"), ("PCX", "RGB"), ("ICO", "RGBA"), ("JPEG2000", "RGB")],
)
def test_pictures_in_formats_the_model_does_not_list_are_400(service, pillow_format, mode):
    """Pillow could decode these, but the config does not list them: they never reach it."""
    content = encode(photo().convert(mode).resize((64, 64)), pillow_format)
    assert_fast_error(lambda: service.upload(content, "camel.png"), 400, WRONG_TYPE)


def test_a_picture_smaller_than_the_config_allows_is_400_plainly(service):
    message = assert_json_error(service.upload(encode(photo().resize((8, 8)), "PNG")), 400)
    assert message.startswith("The model could not process this input")


# --- names and declared types are ignored: the bytes decide ----------------------------------


def test_png_bytes_named_txt_classify(service):
    assert top1(service.upload(_camel_png(), "notes.txt")) == CAMEL


def test_jpeg_bytes_declared_as_text_plain_classify(service):
    response = service.session.post(
        f"{service.url}/api/predict",
        files={"file": ("camel", _camel_jpeg(), "text/plain")},
        timeout=60,
    )
    assert top1(response) == CAMEL


def test_text_named_jpg_and_declared_image_jpeg_is_400(service):
    response = service.session.post(
        f"{service.url}/api/predict",
        files={"file": ("camel.jpg", b"hello, I am not a picture", "image/jpeg")},
        timeout=60,
    )
    assert_json_error(response, 400, WRONG_TYPE)


def test_a_picture_with_a_payload_appended_still_classifies(service):
    """A polyglot (PNG, then an HTML page / zip) is a PNG to the decoder: it classifies,
    and the payload goes nowhere."""
    polyglot = _camel_png() + b"<html><script>alert(1)</script></html>PK\x05\x06" + bytes(18)
    assert top1(service.upload(polyglot, "page.html")) == CAMEL


def test_upload_file_names_with_paths_are_never_used(service):
    for name in ["../../../../tmp/evil.png", "/etc/passwd", "..\\..\\evil.png", "a\x00b.png"]:
        assert top1(service.upload(_camel_png(), name)) == CAMEL


# --- the multipart envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"files": {"image": ("camel.jpg", b"\xff\xd8\xff")}},
        {"data": {"file": "sample_data/camel.jpeg"}},
        {"json": {"file": "sample_data/camel.jpeg"}},
        {"data": b"garbage", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
        {"data": b"--xyz\r\n", "headers": {"Content-Type": "multipart/form-data"}},
    ],
    ids=[
        "no body",
        "wrong field name",
        "field without a file",
        "json body",
        "malformed multipart",
        "no boundary",
    ],
)
def test_requests_without_a_file_field_are_400(service, kwargs):
    assert_fast_error(
        lambda: service.session.post(f"{service.url}/api/predict", timeout=60, **kwargs),
        400,
        NO_FILE,
    )


def test_a_raw_image_body_is_the_input_and_checked_as_such(service):
    """An `image/...` body is the input itself (`curl --data-binary`), held to the rules of
    an upload: here a JPEG cut off after its first marker."""
    assert_fast_error(
        lambda: service.session.post(
            f"{service.url}/api/predict",
            data=b"\xff\xd8\xff\xe0",
            headers={"Content-Type": "image/jpeg"},
            timeout=60,
        ),
        400,
        CORRUPT,
    )
    raw = service.session.post(
        f"{service.url}/api/predict",
        data=_camel_jpeg(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert top1(raw) == CAMEL


def test_several_files_in_the_field_answer_for_the_first(service):
    files = [("file", ("a.jpg", _camel_jpeg())), ("file", ("b.jpg", sample_bytes("bagel.jpg")))]
    response = service.session.post(f"{service.url}/api/predict", files=files, timeout=60)
    assert top1(response) == CAMEL


def test_thousands_of_form_parts_are_a_quick_4xx(service):
    parts = [(f"field{number}", (None, "x")) for number in range(3000)]
    parts.append(("file", ("camel.jpg", _camel_jpeg())))
    assert_fast_error(
        lambda: service.session.post(f"{service.url}/api/predict", files=parts, timeout=60)
    )


# --- decompression bombs: refused from the header, before any pixel is decoded -----------------


def _gif(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _tiff(width: int, height: int) -> bytes:
    """An uncompressed grey TIFF header whose single strip would be width*height bytes."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (278, 4, 1, height),
        (279, 4, 1, width * height),
    ]
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHII", *entry) for entry in entries) + bytes(4)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _webp_lossless(width: int, height: int) -> bytes:
    """A VP8L header (at most 16384 a side) with no image data behind it."""
    bits = (width - 1) | ((height - 1) << 14) | (1 << 28)
    payload = b"\x2f" + struct.pack("<I", bits) + bytes(16)
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _webp_extended(width: int, height: int) -> bytes:
    """A VP8X header claiming a canvas of width x height (24 bits a side)."""
    inner = encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + inner
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + info


def _jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (8, 8)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _real_png_bomb(side: int) -> bytes:
    """A valid PNG of side x side black pixels: about 100 KB that inflate to side² bytes."""
    compressor = zlib.compressobj(9)
    row = bytes(side + 1)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return _png(side, side, pixels)


BOMBS = {
    "png 30000x30000": lambda: _png(30000, 30000, zlib.compress(bytes(30001))),
    "png 8000x8000": lambda: _png(8000, 8000, zlib.compress(bytes(8001))),
    "png 10000x10000 whole": lambda: _real_png_bomb(10000),
    "gif 30000x30000": lambda: _gif(30000, 30000),
    "gif 65535x65535": lambda: _gif(65535, 65535),
    "tiff 30000x30000": lambda: _tiff(30000, 30000),
    "webp lossless 16384x16384": lambda: _webp_lossless(16384, 16384),
    "webp extended 30000x30000": lambda: _webp_extended(30000, 30000),
    "bmp 30000x30000": lambda: _bmp(30000, 30000),
    "jpeg 30000x30000": lambda: _jpeg(30000, 30000),
}


@pytest.mark.parametrize("make", BOMBS.values(), ids=BOMBS.keys())
def test_decompression_bombs_are_a_fast_400(service, make):
    bomb = make()
    assert len(bomb) < 200_000
    assert_fast_error(lambda: service.upload(bomb), 400, TOO_MANY_PIXELS)


def test_the_server_answers_others_while_bombs_arrive(service):
    """Bombs and real work interleaved: each gets its own answer, at once (each bomb built
    before its upload is timed)."""
    for bomb in [make() for make in BOMBS.values()]:
        assert_fast_error(lambda bomb=bomb: service.upload(bomb), 400, TOO_MANY_PIXELS)
        assert top1(service.upload(_camel_jpeg())) == CAMEL


# --- bodies over the upload limit: 413, answered before the body is read ---------------------


def _multipart_head(length: int, boundary: str = "hostile") -> bytes:
    return (
        "POST /api/predict HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n"
        "\r\n"
    ).encode()


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(service):
    """The client declares 50 MB, sends 1 KB and waits: the answer comes anyway, so the
    server decided from the header and never waited for (or buffered) the body."""
    started = time.monotonic()
    raw = raw_exchange(service.port, _multipart_head(50 * 1024 * 1024) + b"x" * 1024)
    elapsed = time.monotonic() - started
    assert_json_error(Answer.from_raw(raw), 413, TOO_LARGE)
    assert elapsed < REFUSAL_SECONDS


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes of chunked transfer coding, a chunk at a time, then the last chunk."""
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_chunked_body_over_the_limit_is_413(service):
    head = (
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=hostile\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    sent: list[bytes] = []

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            sent.append(chunk)
            yield chunk

    raw = raw_exchange(service.port, head, counted(_chunks(8 * 1024 * 1024)))
    assert_json_error(Answer.from_raw(raw), 413, TOO_LARGE)
    # The answer came before the whole 8 MB were offered.
    assert sum(map(len, sent)) < 8 * 1024 * 1024


def test_a_complete_body_over_the_limit_is_413(service):
    """Sent in full by a client that does not wait (on a connection of its own: the server
    closes it after refusing)."""
    response = requests.post(
        f"{service.url}/api/predict", files={"file": ("big.png", bytes(1024 * 1024 + 1))}
    )
    assert_json_error(response, 413, TOO_LARGE)


def test_a_chunked_upload_under_the_limit_classifies(service):
    """Chunked transfer coding itself is fine: the limit is on size, not on framing."""
    boundary = "hostile-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="camel.jpg"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + _camel_jpeg()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = service.session.post(
        f"{service.url}/api/predict",
        data=(body[start : start + 4096] for start in range(0, len(body), 4096)),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert top1(response) == CAMEL


def test_a_picture_just_under_the_limit_classifies(service):
    picture = encode(photo().resize((560, 560)), "BMP")
    assert 900_000 < len(picture) < 1024 * 1024 - 1024
    assert top1(service.upload(picture, "big.bmp")) == CAMEL


def test_the_settings_limit_applies_in_the_app_and_the_server(tmp_path_factory):
    """A server built with another upload limit applies it to the app and to the server's
    refusal from Content-Length alike."""
    with serve_squeezenet(tmp_path_factory, max_upload_bytes=3 * 1024 * 1024) as larger:
        picture = encode(photo().resize((800, 800)), "BMP")
        assert 1024 * 1024 < len(picture) < 3 * 1024 * 1024
        assert top1(larger.upload(picture, "big.bmp")) == CAMEL
        started = time.monotonic()
        raw = raw_exchange(larger.port, _multipart_head(4 * 1024 * 1024) + b"x" * 1024)
        assert time.monotonic() - started < REFUSAL_SECONDS
    assert_json_error(Answer.from_raw(raw), 413, "The request is too large: the limit is 3 MB.")


def test_expect_100_continue_over_the_limit_is_413_without_inviting_the_body(service):
    """curl sends `Expect: 100-continue` before large uploads: a body already refused from
    its Content-Length must not be invited ("100 Continue") and then read up to the limit."""
    head = _multipart_head(50 * 1024 * 1024).replace(
        b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"
    )
    started = time.monotonic()
    raw = raw_exchange(service.port, head)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert not raw.startswith(b"HTTP/1.1 100")
    assert_json_error(Answer.from_raw(raw), 413, TOO_LARGE)


def test_expect_100_continue_under_the_limit_is_invited_and_classifies(service):
    boundary = "hostile"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="camel.jpg"\r\n\r\n'
        ).encode()
        + _camel_jpeg()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = _multipart_head(len(body), boundary).replace(
        b"\r\n\r\n", b"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    answer = Answer.from_raw(raw)
    assert answer.status_code == 200
    assert answer.json()["output"][0]["prediction"][0]["label"] == CAMEL


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(50) + b"\r\n\r\n",
        b"G@T /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/samples/a b.jpg HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=[
        "tls handshake",
        "bad method",
        "space in target",
        "bad length",
        "negative length",
        "two lengths",
        "bad chunk",
    ],
)
def test_malformed_http_is_a_json_400_at_once(service, request_bytes):
    """Answered and closed by the server at once, even when the request line itself could
    not be parsed (no method, no path to log)."""
    started = time.monotonic()
    raw = raw_exchange(service.port, request_bytes)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert_json_error(Answer.from_raw(raw), 400, "Bad Request.")


def test_headers_over_the_server_limit_are_a_json_431(service):
    raw = raw_exchange(
        service.port,
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
    )
    assert_json_error(Answer.from_raw(raw), 431)


# --- every format and mode the config accepts classifies ---------------------------------------


def _grey16() -> Image.Image:
    """The photo's grey values on the full 16-bit range, as a real 16-bit scan has them."""
    return Image.fromarray(np.asarray(photo().convert("L")).astype(np.uint16) * 257)


def _rgba() -> Image.Image:
    image = photo().convert("RGBA")
    image.putalpha(200)
    return image


def _palette_with_transparency() -> Image.Image:
    image = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    image.info["transparency"] = 0
    return image


def _animated_gif() -> bytes:
    frames = [photo().convert("P"), ImageOps.mirror(photo()).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


# name -> (bytes, the Pillow mode the server sees, a group of variants with identical pixels)
VARIANTS = {
    "jpeg rgb": (lambda: _camel_jpeg(), "RGB", None),
    "jpeg grey": (lambda: encode(photo().convert("L"), "JPEG", quality=90), "L", None),
    "jpeg cmyk": (lambda: encode(photo().convert("CMYK"), "JPEG", quality=90), "CMYK", None),
    "jpeg progressive": (
        lambda: encode(photo(), "JPEG", quality=90, progressive=True),
        "RGB",
        None,
    ),
    "png rgb": (lambda: _camel_png(), "RGB", "rgb"),
    "png rgba": (lambda: encode(_rgba(), "PNG"), "RGBA", "rgb"),
    "png grey+alpha": (lambda: encode(photo().convert("LA"), "PNG"), "LA", "grey"),
    "png grey": (lambda: encode(photo().convert("L"), "PNG"), "L", "grey"),
    "png palette+transparency": (lambda: encode(_palette_with_transparency(), "PNG"), "P", None),
    "png 16-bit grey": (lambda: encode(_grey16(), "PNG"), "I;16", "grey"),
    "png 1-bit": (lambda: encode(photo().convert("1"), "PNG"), "1", "1-bit"),
    "gif": (lambda: encode(photo(), "GIF"), "P", None),
    "gif animated": (_animated_gif, "P", None),
    "bmp rgb": (lambda: encode(photo(), "BMP"), "RGB", "rgb"),
    "bmp 1-bit": (lambda: encode(photo().convert("1"), "BMP"), "1", "1-bit"),
    "bmp 8-bit palette": (lambda: encode(photo().convert("P"), "BMP"), "P", None),
    "tiff rgb": (lambda: encode(photo(), "TIFF"), "RGB", "rgb"),
    "tiff lzw": (lambda: encode(photo(), "TIFF", compression="tiff_lzw"), "RGB", "rgb"),
    "tiff 16-bit grey": (lambda: encode(_grey16(), "TIFF"), "I;16", "grey"),
    "webp lossy": (lambda: encode(photo(), "WEBP", quality=90), "RGB", None),
    "webp lossless alpha": (lambda: encode(_rgba(), "WEBP", lossless=True), "RGBA", "rgb"),
}


@pytest.fixture(scope="module")
def answers(service) -> dict[str, list[dict]]:
    """The label list the service answers for each variant of the camel photo."""
    results = {}
    for name, (make, mode, _) in VARIANTS.items():
        content = make()
        with Image.open(io.BytesIO(content)) as image:
            assert image.mode == mode, name
        results[name] = assert_prediction(service.upload(content, "upload.bin"))
    return results


@pytest.mark.parametrize("name", VARIANTS)
def test_every_accepted_format_and_mode_classifies(answers, name):
    """The photo stays a camel in every format and mode but 1-bit (which keeps too little
    of it for any label to be expected)."""
    assert len(answers[name]) == 5
    if VARIANTS[name][2] != "1-bit":
        assert answers[name][0]["label"] == CAMEL


@pytest.mark.parametrize("group", ["rgb", "grey", "1-bit"])
def test_the_same_pixels_give_the_same_answer_in_every_container(answers, group):
    """Lossless encodings of the same pixels (alpha dropped, 16-bit grey on its full range)
    must reach the model as the same picture."""
    members = [name for name, (_, _, member_of) in VARIANTS.items() if member_of == group]
    assert len(members) >= 2
    reference = answers[members[0]]
    for name in members[1:]:
        assert [entry["label"] for entry in answers[name]] == [e["label"] for e in reference]
        assert [entry["probability"] for entry in answers[name]] == pytest.approx(
            [entry["probability"] for entry in reference], abs=1e-5
        ), name


def test_exif_orientation_is_honoured(service):
    """Stored on its side with EXIF orientation 6 ("rotate 90° clockwise to view"), the photo
    is classified as it is shown: the answer equals the upright photo's, while the same
    pixels without the tag are something else altogether."""
    upright = photo()
    on_its_side = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = encode(on_its_side, "JPEG", quality=95, exif=exif.tobytes())
    untagged = encode(on_its_side, "JPEG", quality=95)

    expected = assert_prediction(service.upload(encode(upright, "JPEG", quality=95)))
    rotated = assert_prediction(service.upload(tagged, "rotated.jpg"))
    assert rotated[0]["label"] == expected[0]["label"] == CAMEL
    assert rotated[0]["probability"] == pytest.approx(expected[0]["probability"], abs=0.02)
    assert top1(service.upload(untagged, "sideways.jpg")) != CAMEL


def test_a_client_that_sends_a_whole_oversized_body_before_reading_gets_the_413(service):
    """Python's urllib sends the whole body, then reads: the server answers 413 from the
    header, then reads and throws away the rest instead of resetting the connection."""
    request = urllib.request.Request(
        f"{service.url}/api/predict",
        data=bytes(16 * 1024 * 1024),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        method="POST",
    )
    started = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert json.loads(refused.value.read()) == {"error": TOO_LARGE}
    assert time.monotonic() - started < REFUSAL_SECONDS
    # The server is none the worse: the next client is answered at once.
    assert service.get("/api/health").status_code == 200
