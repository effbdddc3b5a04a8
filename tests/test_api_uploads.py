"""Reading the form field `file` of a multipart body (modelhubapi.uploads), chunk by chunk."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

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
        "cut before the end",
        "boundary too long",
    ],
)
def test_bodies_without_a_whole_file_field_are_refused(tmp_path, body, content_type):
    if content_type is None:  # the body was encoded above: its boundary is in the body
        boundary = body[2 : body.index(b"\r\n")].decode()
        content_type = f"multipart/form-data; boundary={boundary}"
    assert refused(tmp_path, body, content_type) == uploads.NO_FILE


def test_too_many_parts_are_refused_before_the_file(tmp_path):
    fields = [(f"field{number}", "x") for number in range(uploads.MAX_PARTS)]
    body, content_type = encode_multipart_formdata([*fields, ("file", ("a.jpg", b"x"))])
    assert "more than" in refused(tmp_path, body, content_type)
