"""`POST /api/predict` with the input as the whole body and an `image/...` Content-Type, as
`curl --data-binary @photo.png -H 'Content-Type: image/png'` sends it: the same rules as a
form upload (type from the bytes, size limit, scratch files removed)."""

from __future__ import annotations

import io
import os

import pytest
from mockmodels.single import inference as single


@pytest.fixture
def rest(rest_client):
    return rest_client(single.Model())


@pytest.fixture
def ramp_png(mock_package) -> bytes:
    with open(os.path.join(mock_package("single"), "sample_data", "ramp_4x2.png"), "rb") as file:
        return file.read()


def test_a_raw_image_body_is_classified_like_its_upload(rest, ramp_png):
    as_form = rest.client.post("/api/predict", data={"file": (io.BytesIO(ramp_png), "r.png")})
    as_body = rest.client.post("/api/predict", data=ramp_png, content_type="image/png")
    assert as_body.status_code == 200, as_body.get_json()
    # The same labels (the array output is a file of its own each time).
    assert as_body.get_json()["output"][0] == as_form.get_json()["output"][0]
    assert os.listdir(rest.working_folder) == []


def test_the_declared_image_type_does_not_matter_the_bytes_do(rest, ramp_png):
    as_jpeg = rest.client.post("/api/predict", data=ramp_png, content_type="image/jpeg")
    assert as_jpeg.status_code == 200
    text = rest.client.post("/api/predict", data=b"not a picture", content_type="image/png")
    assert text.status_code == 400
    assert text.get_json() == {"error": "Incorrect file type."}
    empty = rest.client.post("/api/predict", data=b"", content_type="image/png")
    assert empty.status_code == 400
    assert os.listdir(rest.working_folder) == []


def test_a_raw_body_over_the_limit_is_413(rest_client):
    rest = rest_client(single.Model(), max_upload_bytes=1024 * 1024)
    large = rest.client.post("/api/predict", data=bytes(2 * 1024 * 1024), content_type="image/png")
    assert large.status_code == 413
    assert "limit is 1 MB" in large.get_json()["error"]


def test_other_bodies_are_still_read_as_forms(rest, ramp_png):
    response = rest.client.post("/api/predict", data=ramp_png, content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": 'Send the input file in the multipart form field "file".'
    }
