"""ModelHubRESTAPI through Flask's test client: every route, and every error as JSON."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import zipfile

import h5py
import numpy as np
import pytest
from mockmodels.multi import inference as multi
from mockmodels.noconfig import inference as failing
from mockmodels.single import inference as single
from PIL import Image

from modelhubapi import ModelHubAPI, uploads


def png_bytes(value: int, size: tuple[int, int] = (4, 2)) -> bytes:
    """A grey PNG of one `value`, so the mock model's answer tells which file it saw."""
    buffer = io.BytesIO()
    Image.new("L", size, value).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client, content: bytes, name: str = "picture.png"):
    return client.post(
        "/api/predict",
        data={"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def assert_error(response, status: int, message: str | None = None) -> str:
    """The answer is JSON `{"error": ...}` with `status`, and shows no server path."""
    assert response.status_code == status
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"]
    assert "/tmp" not in body["error"]
    assert "tests/mockmodels" not in body["error"]
    if message is not None:
        assert body["error"] == message
    return body["error"]


@pytest.fixture
def served(rest_client):
    return rest_client(single.Model())


@pytest.fixture
def client(served):
    return served.client


@pytest.fixture
def ramp_bytes(mock_package) -> bytes:
    with open(os.path.join(mock_package("single"), "sample_data", "ramp_4x2.png"), "rb") as file:
        return file.read()


# --- the model card ---------------------------------------------------------------------


def test_get_config(client):
    response = client.get("/api/get_config")
    assert response.status_code == 200
    assert response.get_json()["meta"]["name"] == "MockSingle"


def test_get_legal(client):
    legal = client.get("/api/get_legal").get_json()
    assert legal["model_license"] == "TEST MODEL LICENSE"
    assert sorted(legal) == [
        "model_license",
        "modelhub_acknowledgements",
        "modelhub_license",
        "sample_data_license",
    ]


def test_get_model_io(client):
    assert client.get("/api/get_model_io").get_json()["output"][1]["type"] == "mask_image"


def test_get_samples_answers_absolute_urls(client):
    assert client.get("/api/get_samples").get_json() == [
        "http://localhost/api/samples/ramp_4x2.jpg",
        "http://localhost/api/samples/ramp_4x2.png",
    ]


def test_get_model_files_zips_the_model_folder(client):
    with client.get("/api/get_model_files") as response:
        assert response.status_code == 200
        assert response.content_type == "application/zip"
        assert "mocksingle_model.zip" in response.headers["Content-Disposition"]
        content = response.get_data()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sorted(archive.namelist()) == [
            "model/",
            "model/config.json",
            "model/model.txt",
            "model/thumbnail.jpg",
        ]
        assert archive.read("model/model.txt") == b"EMPTY MOCK MODEL FOR UNIT TESTING"


def test_get_model_files_leaves_nothing_in_the_working_folder(served):
    with served.client.get("/api/get_model_files") as response:
        response.get_data()
    assert os.listdir(served.working_folder) == []


@pytest.mark.parametrize(
    "route",
    [
        "/api/get_config",
        "/api/get_legal",
        "/api/get_model_io",
        "/api/get_samples",
        "/api/get_model_files",
    ],
)
def test_a_package_without_config_answers_400(rest_client, route):
    response = rest_client(failing.UnimplementedModel(), "noconfig").client.get(route)
    assert_error(response, 400)


# --- files picked by name ---------------------------------------------------------------


def test_sample_is_served_with_its_mime_type(client, ramp_bytes):
    with client.get("/api/samples/ramp_4x2.png") as response:
        assert response.status_code == 200
        assert response.content_type == "image/png"
        assert response.get_data() == ramp_bytes


def test_thumbnail_is_served_from_the_model_folder(client):
    with client.get("/api/thumbnail/thumbnail.jpg") as response:
        assert response.status_code == 200
        assert response.content_type == "image/jpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/api/samples/missing.png",
        "/api/samples/..%2Fmodel%2Fconfig.json",
        "/api/samples/%2E%2E",
        "/api/samples/.hidden",
        "/api/thumbnail/..%5Cconfig.json",
        "/api/thumbnail/missing.jpg",
        "/api/output/missing.h5",
        "/api/output/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_unknown_or_unsafe_names_are_404(client, path):
    assert_error(client.get(path), 404)


# --- predict by upload ------------------------------------------------------------------


def test_predict_by_upload(client):
    response = upload(client, png_bytes(255))
    assert response.status_code == 200
    result = response.get_json()
    assert result["model"] == {"id": "mock-single-id", "name": "MockSingle"}
    labels, mask = result["output"]
    assert labels["prediction"][0] == {"label": "bright", "probability": 1.0}
    assert labels["shape"] == [2]
    assert mask["shape"] == [2, 4]
    assert mask["prediction"].startswith("http://localhost/api/output/")


def test_array_output_is_served_as_hdf5(client):
    url = upload(client, png_bytes(255)).get_json()["output"][1]["prediction"]
    with client.get(url.removeprefix("http://localhost")) as response:
        assert response.status_code == 200
        assert response.content_type == "application/x-hdf5"
        content = response.get_data()
    with h5py.File(io.BytesIO(content), "r") as file:
        np.testing.assert_array_equal(file["mask"][()], np.ones((2, 4), np.uint8))


def test_type_comes_from_the_bytes_not_the_name(client, mock_package):
    with open(os.path.join(mock_package("single"), "sample_data", "ramp_4x2.jpg"), "rb") as file:
        jpeg = file.read()
    assert_error(upload(client, jpeg, "disguised.png"), 400, "Incorrect file type.")
    assert upload(client, png_bytes(9), "named.jpg").status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"just some text", "Incorrect file type."),
        (png_bytes(10)[:40], "The file is truncated or corrupt."),
    ],
)
def test_bad_uploads_are_400(client, content, message):
    assert_error(upload(client, content), 400, message)


def test_upload_without_file_field_is_400(client):
    response = client.post("/api/predict", data={"other": "x"}, content_type="multipart/form-data")
    assert_error(response, 400)


def test_upload_over_the_limit_is_413(rest_client):
    client = rest_client(single.Model(), max_upload_bytes=1024 * 1024).client
    response = client.post(
        "/api/predict",
        data=bytes(2 * 1024 * 1024),
        content_type="multipart/form-data; boundary=never-read",
    )
    assert_error(response, 413, "The request is too large: the limit is 1 MB.")


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/secret/scratch/file"), 503, "room"),
        (OSError(errno.EIO, "Input/output error", "/secret/scratch/file"), 500, "Internal"),
    ],
)
def test_scratch_files_that_cannot_be_written_are_a_plain_5xx(
    client, monkeypatch, ramp_bytes, failure, status, message
):
    def fail(*args):
        raise failure

    monkeypatch.setattr(uploads, "save_file_field", fail)
    response = upload(client, ramp_bytes)
    assert message in assert_error(response, status)
    assert "/secret" not in response.get_data(as_text=True)
    if status == 503:
        assert response.headers["Retry-After"] == "10"


def test_working_folder_is_empty_after_every_request(served, ramp_bytes):
    upload(served.client, ramp_bytes)
    upload(served.client, b"not an image")
    served.client.get("/api/predict_sample?filename=ramp_4x2.png")
    assert os.listdir(served.working_folder) == []


def test_working_folder_other_files_are_left_alone(served, ramp_bytes):
    keep = os.path.join(served.working_folder, "someone-elses-file")
    with open(keep, "w") as file:
        file.write("mine")
    upload(served.client, ramp_bytes)
    assert os.listdir(served.working_folder) == ["someone-elses-file"]


def test_folders_changed_after_construction_are_used(served, tmp_path, ramp_bytes):
    served.rest_api.working_folder = str(tmp_path / "new-working")
    served.rest_api.api.output_folder = str(tmp_path / "new-output")
    assert upload(served.client, ramp_bytes).status_code == 200
    assert os.listdir(tmp_path / "new-working") == []
    assert len(os.listdir(tmp_path / "new-output")) == 1


def test_replacing_the_python_api_after_construction(served, mock_package, ramp_bytes):
    served.rest_api.api = ModelHubAPI(single.ArrayModel(), mock_package("single"))
    served.rest_api.api.output_folder = served.output_folder
    result = upload(served.client, ramp_bytes).get_json()
    assert len(result["output"]) == 1
    assert served.rest_api.model is served.rest_api.api.model


# --- predict by URL ---------------------------------------------------------------------


@pytest.fixture
def fetching(rest_client):
    """An app allowed to fetch from loopback servers such as `file_server`."""
    return rest_client(single.Model(), allow_private_urls=True)


def test_predict_by_fileurl(fetching, file_server):
    client = fetching.client
    file_server.files["bright.png"] = png_bytes(255)
    response = client.get(f"/api/predict?fileurl={file_server.url('bright.png')}")
    assert response.status_code == 200
    assert response.get_json()["output"][0]["prediction"][0]["probability"] == 1.0


def test_fileurl_of_wrong_type_is_400(fetching, file_server, mock_package):
    client = fetching.client
    with open(os.path.join(mock_package("single"), "sample_data", "ramp_4x2.jpg"), "rb") as file:
        file_server.files["ramp.jpg"] = file.read()
    response = client.get(f"/api/predict?fileurl={file_server.url('ramp.jpg')}")
    assert_error(response, 400, "Incorrect file type.")


def test_fileurl_not_found_is_400(fetching, file_server):
    response = fetching.client.get(f"/api/predict?fileurl={file_server.url('missing.png')}")
    assert_error(response, 400, "The URL answered with HTTP status 404.")
    assert os.listdir(fetching.working_folder) == []


def test_fileurl_to_loopback_is_refused_by_default(client):
    assert_error(client.get("/api/predict?fileurl=http://127.0.0.1:9/x.png"), 400)


def test_predict_without_input_is_400(client):
    assert_error(client.get("/api/predict"), 400)


# --- predict_sample ---------------------------------------------------------------------


def test_predict_sample(client):
    response = client.get("/api/predict_sample?filename=ramp_4x2.png")
    assert response.status_code == 200
    assert response.get_json()["output"][0]["prediction"][0]["label"] == "bright"


@pytest.mark.parametrize("name", ["NON_EXISTENT.png", "../model/config.json", "", "%2e%2e"])
def test_predict_sample_of_unknown_name_is_400(client, name):
    assert_error(client.get(f"/api/predict_sample?filename={name}"), 400, "File not found.")


# --- multi-input --------------------------------------------------------------------------


@pytest.fixture
def multi_client(rest_client):
    """The multi-input app, allowed to fetch from loopback servers such as `file_server`."""
    return rest_client(multi.Model(), "multi", allow_private_urls=True)


def request_json(client, inputs: dict):
    return upload(client, json.dumps(inputs).encode(), "inputs.json")


def test_multi_input_sample_with_local_paths(multi_client):
    response = multi_client.client.get("/api/predict_sample?filename=pair.json")
    assert response.status_code == 200
    first, second = response.get_json()["output"][0]["prediction"]
    assert first["probability"] == pytest.approx(200 / 255, abs=1e-4)
    assert second["probability"] == pytest.approx(40 / 255, abs=1e-4)


def test_multi_input_by_urls_and_paths(multi_client, file_server):
    file_server.files["a.png"] = png_bytes(255)
    inputs = {
        "format": ["application/json"],
        "first": {"type": ["image/png"], "fileurl": file_server.url("a.png")},
        "second": {"type": ["image/png"], "fileurl": "sample_data/second.png"},
    }
    response = request_json(multi_client.client, inputs)
    assert response.status_code == 200
    first, second = response.get_json()["output"][0]["prediction"]
    assert first["probability"] == 1.0
    assert second["probability"] == pytest.approx(40 / 255, abs=1e-4)
    assert os.listdir(multi_client.working_folder) == []


def test_multi_input_json_sent_by_fileurl(multi_client, file_server, mock_package):
    file_server.files["b.png"] = png_bytes(0)
    absolute = os.path.join(mock_package("multi"), "sample_data", "first.png")
    inputs = {"first": {"fileurl": absolute}, "second": {"fileurl": file_server.url("b.png")}}
    file_server.files["inputs.json"] = json.dumps(inputs).encode()
    response = multi_client.client.get(f"/api/predict?fileurl={file_server.url('inputs.json')}")
    assert response.status_code == 200
    assert response.get_json()["output"][0]["prediction"][1]["probability"] == 0.0


def test_multi_input_passes_only_declared_inputs_as_local_files(rest_client, file_server):
    echo = rest_client(multi.EchoModel(), "multi", allow_private_urls=True)
    file_server.files["a.png"] = png_bytes(1)
    inputs = {
        "first": {"fileurl": file_server.url("a.png")},
        "second": {"fileurl": "sample_data/second.png"},
        "undeclared": {"fileurl": file_server.url("never-fetched.png")},
    }
    echoed = request_json(echo.client, inputs).get_json()["output"][0]["prediction"]
    paths = {entry["label"]: entry["fileurl"] for entry in echoed}
    assert set(paths) == {"first", "second"}
    assert paths["first"].startswith(echo.working_folder)
    assert paths["first"].endswith(".png")
    assert paths["second"].endswith(os.path.join("sample_data", "second.png"))


@pytest.mark.parametrize(
    "reference",
    [
        "/etc/passwd",
        "/etc/no-such-file",
        "../single/license/model",
        "model/config.json",
        "sample_data/../../single/sample_data/ramp_4x2.png",
    ],
)
def test_multi_input_local_paths_outside_allowed_folders_are_refused_alike(multi_client, reference):
    inputs = {"first": {"fileurl": reference}, "second": {"fileurl": "sample_data/second.png"}}
    assert_error(
        request_json(multi_client.client, inputs),
        400,
        "Local input files must be in sample_data/ or the data folder.",
    )


def test_multi_input_local_paths_in_the_data_folder(rest_client, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "bright.png").write_bytes(png_bytes(255))
    multi_client = rest_client(multi.Model(), "multi", data_dir=str(data))
    inputs = {
        "first": {"fileurl": str(data / "bright.png")},
        "second": {"fileurl": "sample_data/second.png"},
    }
    response = request_json(multi_client.client, inputs)
    assert response.status_code == 200
    assert response.get_json()["output"][0]["prediction"][0]["probability"] == 1.0


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"first": {"fileurl": "sample_data/first.png"}},
            'The inputs do not match the model\'s config: missing "second".',
        ),
        (
            {"first": "sample_data/first.png", "second": {"fileurl": "sample_data/second.png"}},
            'Input "first" must be an object with a "fileurl".',
        ),
        ([1, 2], "A multi-input request must be a JSON object with one entry per input."),
    ],
)
def test_multi_input_malformed_requests_are_400(multi_client, inputs, message):
    assert_error(request_json(multi_client.client, inputs), 400, message)


def test_multi_input_url_failure_is_400(multi_client, file_server):
    inputs = {
        "first": {"fileurl": file_server.url("missing.png")},
        "second": {"fileurl": "sample_data/second.png"},
    }
    assert_error(request_json(multi_client.client, inputs), 400)
    assert os.listdir(multi_client.working_folder) == []


def test_multi_input_url_of_unknown_type_is_400(multi_client, file_server):
    file_server.files["notes.txt"] = b"plain text"
    inputs = {
        "first": {"fileurl": file_server.url("notes.txt")},
        "second": {"fileurl": "sample_data/second.png"},
    }
    assert_error(request_json(multi_client.client, inputs), 400, "Incorrect file type.")


def test_multi_input_non_http_url_is_400(multi_client):
    inputs = {
        "first": {"fileurl": "sample_data/first.png"},
        "second": {"fileurl": "file:///etc/passwd"},
    }
    assert_error(request_json(multi_client.client, inputs), 400)


# --- failures inside the model ------------------------------------------------------------


def test_not_implemented_model_is_400_naming_it(rest_client, ramp_bytes):
    response = upload(rest_client(failing.UnimplementedModel()).client, ramp_bytes)
    assert "NotImplementedError" in assert_error(response, 400)


def test_model_fault_is_500_generic_and_logged(rest_client, ramp_bytes, caplog):
    served = rest_client(failing.FaultyModel())
    with caplog.at_level(logging.ERROR, logger="modelhubapi.restapi"):
        response = upload(served.client, ramp_bytes)
    assert_error(response, 500, "Internal server error.")
    assert failing.SECRET in caplog.text
    assert os.listdir(served.working_folder) == []


def test_model_refusing_input_hides_the_path_in_its_message(rest_client, ramp_bytes):
    response = upload(rest_client(failing.UnreadableInputModel()).client, ramp_bytes)
    assert_error(response, 400, "The model could not process this input.")


def test_model_refusing_input_with_a_plain_message_shows_it(rest_client, ramp_bytes):
    response = upload(rest_client(failing.WrongDimensionsModel()).client, ramp_bytes)
    assert_error(
        response,
        400,
        "The model could not process this input: "
        "Image dimensions (1, 2, 4) do not comply with input requirements",
    )


def test_model_answering_too_many_outputs_is_500(rest_client, ramp_bytes):
    response = upload(rest_client(single.TooManyOutputsModel()).client, ramp_bytes)
    assert_error(response, 500, "Internal server error.")


def test_predict_on_a_package_without_config_is_400(rest_client, ramp_bytes):
    assert_error(upload(rest_client(single.Model(), "noconfig").client, ramp_bytes), 400)


# --- HTTP: errors, CORS, logging ----------------------------------------------------------


def test_unknown_route_is_404_json(client):
    assert_error(client.get("/api/nothing-here"), 404, "Not found.")


def test_wrong_method_is_405_json_with_allow(client):
    response = client.delete("/api/get_config")
    assert_error(response, 405, "Method not allowed.")
    assert "GET" in response.headers["Allow"]


def test_cors_is_open_on_answers_and_errors(client):
    assert client.get("/api/get_config").headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/api/nothing").headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight(client):
    response = client.options(
        "/api/predict",
        headers={
            "Origin": "https://app.modelhub.ai",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"


def test_one_access_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="modelhubapi.access"):
        client.get("/api/get_config")
        client.get("/api/samples/missing.png")
    lines = [r.getMessage() for r in caplog.records if r.name == "modelhubapi.access"]
    assert len(lines) == 2
    method, path, status, milliseconds, size = lines[0].split()
    assert (method, path, status) == ("GET", "/api/get_config", "200")
    assert milliseconds.endswith("ms")
    assert int(size) > 0
    assert lines[1].startswith("GET /api/samples/missing.png 404 ")


def test_access_log_escapes_line_breaks_in_paths(client, caplog):
    with caplog.at_level(logging.INFO, logger="modelhubapi.access"):
        client.get("/api/samples/x%0AGET%20/forged%20200")
    assert "\n" not in caplog.records[-1].getMessage()


def test_access_log_never_holds_file_contents(client, caplog):
    with caplog.at_level(logging.INFO):
        upload(client, png_bytes(1) + b"SECRET-CONTENT")
    assert "SECRET-CONTENT" not in caplog.text


# --- operations and the web UI ------------------------------------------------------------


def test_health(client):
    response = client.get("/api/health")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_after_a_warm_up_prediction(served):
    response = served.client.get("/api/ready")
    assert (response.status_code, response.get_json()) == (200, {"status": "ready"})
    assert os.listdir(served.output_folder) == []
    assert os.listdir(served.working_folder) == []


def test_not_ready_while_the_model_fails(rest_client):
    response = rest_client(failing.FaultyModel()).client.get("/api/ready")
    assert response.status_code == 503
    assert response.get_json()["status"] == "not ready"


def test_not_ready_without_samples(rest_client):
    served = rest_client(failing.FaultyModel(), "noconfig")
    assert served.client.get("/api/ready").status_code == 503


def test_index_serves_the_web_ui(client):
    with client.get("/") as response:
        assert response.status_code == 200
        assert response.content_type.startswith("text/html")


def test_missing_static_file_is_404_json(client):
    assert_error(client.get("/static/no-such-file.js"), 404)


def test_openapi_document(client):
    with client.get("/api/openapi.json") as response:
        assert response.status_code == 200
        assert response.get_json()["openapi"].startswith("3.")
