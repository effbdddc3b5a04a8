"""Reading the form field `file` of a multipart body (modelhubapi.uploads), chunk by chunk."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata
from werkzeug import Request

from modelhubapi import uploads
from modelhubapi.safety.errors import InputError


class TrickleStream(io.BytesIO):
    """A body arriving `size` bytes at a time, as a socket may deliver it."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self._size = size

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._size)


def save(tmp_path, body: bytes, content_type: str, chunk: int = 65536) -> bytes:
    destination = tmp_path / "upload"
    uploads.save_file_field(TrickleStream(body, chunk), content_type, str(destination))
    return destination.read_bytes()


def refused(tmp_path, body: bytes, content_type: str) -> str:
    with pytest.raises(InputError) as caught:
        save(tmp_path, body, content_type)
    assert caught.value.status == 400
    return caught.value.message


@given(
    content=st.binary(max_size=5000),
    chunk=st.integers(min_value=1, max_value=700),
    before=st.dictionaries(st.sampled_from(["a", "b", "text"]), st.text(max_size=50)),
)
def test_the_file_arrives_whole_however_the_body_is_cut(tmp_path_factory, content, chunk, before):
    fields = {**before, uploads.FIELD: ("photo.jpg", content, "image/jpeg")}
    body, content_type = encode_multipart_formdata(fields)
    assert save(tmp_path_factory.mktemp("upload"), body, content_type, chunk) == content


def test_the_first_file_in_the_field_is_taken(tmp_path):
    fields = [("file", ("a.jpg", b"first")), ("other", ("b.jpg", b"x")), ("file", ("c", b"2"))]
    assert save(tmp_path, *encode_multipart_formdata(fields)) == b"first"


def test_a_leading_line_break_and_a_quoted_boundary_are_read(tmp_path):
    """What Werkzeug's own test client sends."""
    body = (
        b"\r\n--a b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        b"pixels\r\n--a b--\r\n"
    )
    assert save(tmp_path, body, 'multipart/form-data; boundary="a b"') == b"pixels"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "multipart/form-data; boundary=x"),
        (b"raw image bytes", "image/jpeg"),
        (b"file=sample_data/camel.jpeg", "application/x-www-form-urlencoded"),
        (b"--x\r\n", "multipart/form-data"),
        (b"garbage", "multipart/form-data; boundary=x"),
        (encode_multipart_formdata({"file": "sample_data/camel.jpeg"})[0], None),
        (encode_multipart_formdata({"image": ("a.jpg", b"x")})[0], None),
        (encode_multipart_formdata({"file": ("a.jpg", b"x" * 100)})[0][:-20], None),
        (encode_multipart_formdata({"file": ("a.jpg", b"x" * 100)})[0][:-4], None),
        (b"--" + b"b" * 300 + b"\r\n", "multipart/form-data; boundary=" + "b" * 300),
    ],
    ids=[
        "empty body",
        "not multipart",
        "urlencoded form",
        "no boundary",
        "not the boundary",
        "text field named file",
        "file in another field",
        "cut inside the file",
        "no closing boundary",
        "boundary too long",
    ],
)
def test_bodies_without_a_whole_file_field_are_refused(tmp_path, body, content_type):
    if content_type is None:  # the body was encoded above: its boundary is in the body
        boundary = body[2 : body.index(b"\r\n")].decode()
        content_type = f"multipart/form-data; boundary={boundary}"
    assert refused(tmp_path, body, content_type) == uploads.NO_FILE


FILE_PART = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'


@pytest.mark.parametrize(
    "body",
    [
        FILE_PART + b"\r\nDATA\r\n--B\r\nX-Other: 1\r\n\r\nzz\r\n--B--\r\n",
        FILE_PART + b'\r\nDATA\r\n--B\r\nContent-Disposition: form-data; name="x\xff"\r\n\r\nz'
        b"\r\n--B--\r\n",
        FILE_PART + b"\nDATA\r\n--B--\r\n",
        b"--B\x0c\v\r\n" + FILE_PART[5:] + b"\r\nDATA\r\n--B--\r\n",
    ],
    ids=[
        "a later part without Content-Disposition",
        "a later part with headers not UTF-8",
        "headers ended by CRLF then LF",
        "form feed and vertical tab as padding",
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_bodies_found_in_review_read_as_werkzeug_reads_them(tmp_path, body, chunk):
    content_type = "multipart/form-data; boundary=B"
    assert ours(tmp_path, body, content_type, chunk) == werkzeug_file(body, content_type)


@pytest.mark.parametrize("chunk", [1, 7, 65536])
@pytest.mark.parametrize("spaces", [1024, 1025])
def test_padding_is_limited_whatever_the_chunks(tmp_path, chunk, spaces):
    body = b"--B" + b" " * spaces + b"\n" + FILE_PART[5:] + b"\r\nDATA\r\n--B--\r\n"
    found = ours(tmp_path, body, "multipart/form-data; boundary=B", chunk)
    assert found == (b"DATA" if spaces <= 1024 else None)


def test_endless_padding_ending_in_a_cr_is_refused_before_the_rest_is_read(tmp_path):
    body = b"--B" + b" " * 1025 + b"\r" + b"x" * 1_000_000
    stream = TrickleStream(body, 65536)
    with pytest.raises(InputError):
        uploads.save_file_field(stream, "multipart/form-data; boundary=B", str(tmp_path / "f"))
    assert stream.tell() <= 65536


def test_headers_arriving_byte_by_byte_are_searched_once(tmp_path, monkeypatch):
    """A 16 KiB header read one byte at a time must not be searched again from its start
    for every byte."""
    searched = []
    find = bytearray.find

    class CountingBuffer(bytearray):
        def find(self, sub, start=0, end=None):
            stop = len(self) if end is None else min(end, len(self))
            searched.append(max(0, stop - start))
            return find(self, sub, start, stop)

    monkeypatch.setattr(uploads, "bytearray", CountingBuffer, raising=False)
    header = FILE_PART[:-2] + b"; x=" + b"y" * 15_000 + b"\r\n\r\nDATA\r\n--B--\r\n"
    assert ours(tmp_path, header, "multipart/form-data; boundary=B", 1) == b"DATA"
    assert sum(searched) < 20 * len(header)


def test_as_many_parts_as_allowed_are_read(tmp_path):
    fields = [(f"field{number}", "x") for number in range(uploads.MAX_PARTS - 1)]
    body, content_type = encode_multipart_formdata([*fields, ("file", ("a.jpg", b"last"))])
    assert save(tmp_path, body, content_type) == b"last"


def test_hostile_bodies_are_refused_before_the_rest_is_read(tmp_path):
    """Megabytes of padding after a boundary, or of boundaries inside a part, are refused
    at the first of them instead of being scanned byte by byte."""
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
    for body in (
        head + b"data\r\n--x" + b" " * 10_000_000,
        head + b"data" + b"\r\n--xA" * 1_000_000,
    ):
        stream = TrickleStream(body, 65536)
        with pytest.raises(InputError, match="multipart form field"):
            uploads.save_file_field(stream, "multipart/form-data; boundary=x", str(tmp_path / "f"))
        assert stream.tell() <= 2 * 65536


def test_too_many_parts_are_refused_before_the_file(tmp_path):
    fields = [(f"field{number}", "x") for number in range(uploads.MAX_PARTS)]
    body, content_type = encode_multipart_formdata([*fields, ("file", ("a.jpg", b"x"))])
    assert "more than" in refused(tmp_path, body, content_type)


# --- the same answers as Werkzeug's own parser ---------------------------------------------

BOUNDARY = "b0und4ry-Zq"


def werkzeug_file(body: bytes, content_type: str) -> bytes | None:
    """What Werkzeug's form parser finds in the field `file` (None: no file)."""
    request = Request.from_values(
        input_stream=io.BytesIO(body), content_length=len(body), content_type=content_type
    )
    upload = request.files.get(uploads.FIELD)
    return None if upload is None else upload.read()


def ours(tmp_path, body: bytes, content_type: str, chunk: int) -> bytes | None:
    try:
        return save(tmp_path, body, content_type, chunk)
    except InputError as error:
        assert error.message == uploads.NO_FILE
        return None


@st.composite
def multipart_bodies(draw) -> bytes:
    """Bodies as clients write them, with CRLF or LF line breaks."""
    line = draw(st.sampled_from([b"\r\n", b"\n"]))
    dash = b"--" + BOUNDARY.encode()
    body = draw(st.sampled_from([b"", line, b"preamble" + line]))
    parts = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["file", "other", "FILE"]),
                st.sampled_from([None, "", "photo.jpg"]),
                st.binary(max_size=300).filter(lambda data: dash not in data),
                st.booleans(),
            ),
            max_size=4,
        )
    )
    for name, filename, content, blank_line_ends_empty in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += dash + draw(st.sampled_from([b"", b"  ", b"\t\x0c\x0b"])) + line
        body += b"Content-Disposition: " + disposition.encode() + line
        body += b"Content-Type: application/octet-stream" + line + line
        if content or not blank_line_ends_empty:
            body += content + line
    return body + dash + b"--" + line


@given(body=multipart_bodies(), chunk=st.integers(min_value=1, max_value=400))
def test_the_same_file_as_werkzeug_finds(tmp_path_factory, body, chunk):
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    found = ours(tmp_path_factory.mktemp("upload"), body, content_type, chunk)
    assert found == werkzeug_file(body, content_type)


@given(
    body=multipart_bodies(),
    cut=st.integers(min_value=0),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=3))),
)
def test_damaged_bodies_give_no_file_werkzeug_would_not(tmp_path_factory, body, cut, flips):
    """Damaged anyhow, a body yields either no file or the one Werkzeug reads from it."""
    damaged = bytearray(body[: cut % (len(body) + 1)])
    for position, replacement in flips:
        if damaged:
            start = position % len(damaged)
            damaged[start : start + len(replacement)] = replacement
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    found = ours(tmp_path_factory.mktemp("upload"), bytes(damaged), content_type, 97)
    if found is not None:
        assert found == werkzeug_file(bytes(damaged), content_type)
