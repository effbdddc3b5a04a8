"""ModelHubAPI, the Python API: the model card, samples, and predict's answers and errors."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from mockmodels.multi import inference as multi
from mockmodels.noconfig import inference as failing
from mockmodels.single import inference as single

from modelhubapi import ModelHubAPI
from modelhubapi.pythonapi import ConfigError, ModelError, input_names
from modelhubapi.safety.errors import InputError


@pytest.fixture
def api(mock_package, tmp_path) -> ModelHubAPI:
    api = ModelHubAPI(single.Model(), mock_package("single"))
    api.output_folder = str(tmp_path)
    return api


@pytest.fixture
def ramp(mock_package) -> str:
    return os.path.join(mock_package("single"), "sample_data", "ramp_4x2.png")


# --- the model card ---------------------------------------------------------------------


def test_get_config_returns_the_package_config(api):
    config = api.get_config()
    assert config["id"] == "mock-single-id"
    assert config["meta"]["name"] == "MockSingle"


def test_get_legal_reads_engine_and_package_texts(api):
    legal = api.get_legal()
    assert sorted(legal) == [
        "model_license",
        "modelhub_acknowledgements",
        "modelhub_license",
        "sample_data_license",
    ]
    assert legal["model_license"] == "TEST MODEL LICENSE"
    assert legal["sample_data_license"] == "TEST SAMPLE DATA LICENSE"
    assert "MIT License" in legal["modelhub_license"]
    assert "Flask" in legal["modelhub_acknowledgements"]


def test_get_model_io_is_the_config_io_section(api):
    model_io = api.get_model_io()
    assert model_io["input"]["single"]["format"] == ["image/png"]
    assert [output["name"] for output in model_io["output"]] == ["probabilities", "mask"]


def test_get_samples_lists_folder_and_files(api, mock_package):
    samples = api.get_samples()
    assert samples == {
        "folder": os.path.join(mock_package("single"), "sample_data"),
        "files": ["ramp_4x2.jpg", "ramp_4x2.png"],
    }


def test_framework_dir_holds_license_and_notice(api):
    assert os.path.isfile(os.path.join(api.framework_dir, "LICENSE"))
    assert os.path.isfile(os.path.join(api.framework_dir, "NOTICE"))


@pytest.mark.parametrize("method", ["get_config", "get_legal", "get_model_io", "get_samples"])
def test_a_package_without_config_answers_errors_without_server_paths(mock_package, method):
    api = ModelHubAPI(failing.UnimplementedModel(), mock_package("noconfig"))
    result = getattr(api, method)()
    assert set(result) == {"error"}
    assert mock_package("noconfig") not in result["error"]


def test_a_config_that_is_not_an_object_is_an_error(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("[1, 2]")
    api = ModelHubAPI(single.Model(), str(tmp_path))
    assert "error" in api.get_config()
    assert "error" in api.get_model_io()


def test_a_changed_config_is_read_again_and_answers_are_the_callers_own(tmp_path):
    (tmp_path / "model").mkdir()
    config = tmp_path / "model" / "config.json"
    config.write_text('{"id": "a"}')
    api = ModelHubAPI(single.Model(), str(tmp_path))
    first = api.get_config()
    first["id"] = "changed by the caller"
    assert api.get_config() == {"id": "a"}
    config.write_text('{"id": "b"}')  # same size: the modification time tells
    os.utime(config, ns=(0, os.stat(config).st_mtime_ns + 1))
    assert api.get_config() == {"id": "b"}
    config.write_text('{"id": "longer"}')
    assert api.get_config() == {"id": "longer"}
    config.unlink()
    assert set(api.get_config()) == {"error"}


def test_an_invalid_config_names_the_file_relative_to_the_package(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{not json")
    assert ModelHubAPI(single.Model(), str(tmp_path)).get_config() == {
        "error": "model/config.json is not valid JSON."
    }


def test_subclass_may_override_get_config_with_load_json(mock_package, tmp_path, ramp):
    """ModelHub's tests swap configs this way; predict must go through get_config."""
    other = tmp_path / "other.json"
    with open(os.path.join(mock_package("single"), "model", "config.json")) as file:
        config = json.load(file)
    config["meta"]["name"] = "Swapped"
    other.write_text(json.dumps(config))

    class SwappedConfigAPI(ModelHubAPI):
        def get_config(self):
            return self._load_json(str(other))

    api = SwappedConfigAPI(single.Model(), mock_package("single"))
    assert api.get_model_io()["output"][0]["name"] == "probabilities"
    assert api.predict(ramp, numpyToFile=False)["model"]["name"] == "Swapped"


# --- predict: formatting ------------------------------------------------------------------


def test_predict_answers_every_output_in_config_order(api, ramp):
    result = api.predict(ramp, numpyToFile=False)
    labels, mask = result["output"]
    assert labels["name"] == "probabilities"
    assert labels["type"] == "label_list"
    assert labels["description"] == "bright or dark"
    assert labels["shape"] == [2]
    assert [entry["label"] for entry in labels["prediction"]] == ["bright", "dark"]
    assert mask["name"] == "mask"
    assert mask["type"] == "mask_image"
    assert mask["description"] == ""
    assert mask["shape"] == [2, 4]
    assert mask["prediction"] == [[0, 0, 1, 1], [0, 0, 1, 1]]


def test_predict_makes_numpy_numbers_plain_and_json_serialisable(api, ramp):
    result = api.predict(ramp, numpyToFile=False)
    probability = result["output"][0]["prediction"][0]["probability"]
    assert type(probability) is float
    assert probability == pytest.approx(125 / 255, abs=1e-4)
    json.dumps(result)


def test_predict_reports_model_timestamp_and_processing_time(api, ramp):
    result = api.predict(ramp)
    assert result["model"] == {"id": "mock-single-id", "name": "MockSingle"}
    datetime.strptime(result["timestamp"], "%Y-%m-%d-%H-%M-%S-%f")
    assert isinstance(result["processing_time"], float)
    assert result["processing_time"] >= 0


def test_predict_writes_arrays_to_hdf5_and_answers_their_url(api, ramp, tmp_path):
    result = api.predict(ramp, url_root="http://host/")
    url = result["output"][1]["prediction"]
    match = re.fullmatch(r"http://host/api/output/([\w.-]+\.h5)", url)
    assert match
    assert os.listdir(tmp_path) == [match.group(1)]
    with h5py.File(tmp_path / match.group(1), "r") as file:
        np.testing.assert_array_equal(file["mask"][()], single.bright_mask(ramp))
        assert file["mask"].attrs["type"] == b"uint8"


def test_each_prediction_gets_its_own_output_file(api, ramp, tmp_path):
    urls = {api.predict(ramp)["output"][1]["prediction"] for _ in range(5)}
    assert len(urls) == 5
    assert len(os.listdir(tmp_path)) == 5


def test_outputs_older_than_the_max_age_are_removed_by_later_writes(api, ramp, tmp_path):
    old, recent = (api.predict(ramp)["output"][1]["prediction"].rsplit("/", 1)[1] for _ in "ab")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / old, (two_hours_ago, two_hours_ago))
    (tmp_path / "notes.txt").write_text("not an output")
    os.utime(tmp_path / "notes.txt", (two_hours_ago, two_hours_ago))

    newest = api.predict(ramp)["output"][1]["prediction"].rsplit("/", 1)[1]

    assert sorted(os.listdir(tmp_path)) == sorted([recent, newest, "notes.txt"])


def test_predict_creates_a_missing_output_folder(api, ramp, tmp_path):
    api.output_folder = str(tmp_path / "created" / "later")
    assert "error" not in api.predict(ramp)
    assert len(os.listdir(api.output_folder)) == 1


@pytest.mark.parametrize("model", [single.ArrayModel(), single.ListOfOneArrayModel()])
def test_a_single_array_is_the_first_output(mock_package, ramp, model):
    api = ModelHubAPI(model, mock_package("single"))
    result = api.predict(ramp, numpyToFile=False)
    assert len(result["output"]) == 1
    assert result["output"][0]["prediction"] == [[0, 0, 1, 1], [0, 0, 1, 1]]
    assert result["output"][0]["name"] == "probabilities"


def test_a_lone_label_list_is_wrapped_even_when_two_outputs_are_declared(mock_package, ramp):
    result = ModelHubAPI(single.LabelListModel(), mock_package("single")).predict(ramp)
    assert len(result["output"]) == 1
    assert result["output"][0]["prediction"][1]["label"] == "dark"


def test_a_list_answer_is_one_output_when_one_is_declared(mock_package):
    api = ModelHubAPI(multi.Model(), mock_package("multi"))
    result = api.predict(os.path.join(mock_package("multi"), "sample_data", "pair.json"))
    assert [entry["label"] for entry in result["output"][0]["prediction"]] == ["first", "second"]
    assert result["output"][0]["shape"] == [2]


def test_a_scalar_output_has_an_empty_shape(mock_package, ramp):
    result = ModelHubAPI(single.ScalarModel(), mock_package("single")).predict(ramp)
    assert result["output"][0]["prediction"] == 0.5
    assert result["output"][0]["shape"] == []


# --- predict: multi-input -----------------------------------------------------------------


@pytest.fixture
def multi_api(mock_package) -> ModelHubAPI:
    return ModelHubAPI(multi.Model(), mock_package("multi"))


def test_multi_input_json_file_with_paths_relative_to_the_package(multi_api, mock_package):
    pair = os.path.join(mock_package("multi"), "sample_data", "pair.json")
    result = multi_api.predict(pair)
    first, second = result["output"][0]["prediction"]
    assert first["probability"] == pytest.approx(200 / 255, abs=1e-4)
    assert second["probability"] == pytest.approx(40 / 255, abs=1e-4)


def test_multi_input_dict_is_checked_and_passed_on(mock_package):
    api = ModelHubAPI(multi.EchoModel(), mock_package("multi"))
    inputs = {
        "first": {"fileurl": "sample_data/first.png"},
        "second": {"fileurl": "https://example.org/second.png"},
        "extra": {"fileurl": "kept as it is"},
    }
    echoed = {
        entry["label"]: entry["fileurl"] for entry in api.predict(inputs)["output"][0]["prediction"]
    }
    assert echoed == {
        "first": os.path.join(mock_package("multi"), "sample_data/first.png"),
        "second": "https://example.org/second.png",
        "extra": "kept as it is",
    }


def test_only_input_specs_count_as_inputs():
    # ModelHub's multi-input example config has a "description" beside the inputs, and
    # configs older than multi-input support keep "dim_limits" directly under input.
    multi_input = {
        "format": ["application/json"],
        "description": "four MRI sequences",
        "t1": {"format": ["application/nii-gzip"]},
        "flair": {"format": []},
    }
    flat = {"format": ["image/png"], "dim_limits": [{}, {}, {}]}
    assert input_names({"model": {"io": {"input": multi_input}}}) == ["t1", "flair"]
    assert input_names({"model": {"io": {"input": flat}}}) == []


def test_multi_input_missing_an_input_is_an_error_naming_it(multi_api):
    result = multi_api.predict({"first": {"fileurl": "sample_data/first.png"}})
    assert result == {"error": 'The inputs do not match the model\'s config: missing "second".'}


def test_multi_input_entry_without_fileurl_is_an_error(multi_api):
    result = multi_api.predict({"first": "sample_data/first.png", "second": {"fileurl": "x"}})
    assert result == {"error": 'Input "first" must be an object with a "fileurl".'}


@pytest.mark.parametrize("content", ["[1, 2]", "{broken"])
def test_multi_input_json_file_must_hold_an_object(multi_api, tmp_path, content):
    request = tmp_path / "request.json"
    request.write_text(content)
    assert "error" in multi_api.predict(str(request))


def test_multi_input_model_given_a_single_file_reports_the_model_error(multi_api, ramp):
    result = multi_api.predict(ramp)
    assert result["error"].startswith("TypeError")


# --- predict: errors ------------------------------------------------------------------------


def test_predict_never_raises_and_names_not_implemented_error(mock_package):
    api = ModelHubAPI(failing.UnimplementedModel(), mock_package("noconfig"))
    result = api.predict("MOCK_MODEL_NEEDS_NO_INPUT_FILE")
    assert "NotImplementedError" in result["error"]


def test_predict_reports_a_model_fault_with_its_type(api, mock_package):
    api.model = failing.FaultyModel()
    assert api.predict("anything") == {"error": f"RuntimeError: {failing.SECRET}"}


def test_predict_without_config_reports_the_config(mock_package, ramp):
    result = ModelHubAPI(single.Model(), mock_package("noconfig")).predict(ramp)
    assert result["error"].startswith("Could not read model/config.json")


def test_predict_refuses_more_outputs_than_declared(mock_package, ramp):
    result = ModelHubAPI(single.TooManyOutputsModel(), mock_package("single")).predict(ramp)
    assert result == {"error": "The model returned 3 outputs; its config declares 2."}


def test_predict_or_raise_tells_failures_apart(mock_package, ramp):
    api = ModelHubAPI(failing.FaultyModel(), mock_package("single"))
    with pytest.raises(ModelError) as raised:
        api.predict_or_raise(ramp)
    assert isinstance(raised.value.__cause__, RuntimeError)
    with pytest.raises(ConfigError):
        ModelHubAPI(single.Model(), mock_package("noconfig")).predict_or_raise(ramp)
    with pytest.raises(InputError):
        ModelHubAPI(multi.Model(), mock_package("multi")).predict_or_raise({})


def test_predict_accepts_path_objects(api, ramp):
    assert "error" not in api.predict(Path(ramp))


def test_write_json_writes_what_modelhubs_helper_writes(api, tmp_path):
    target = tmp_path / "inputs.json"
    assert api._write_json(str(target), {"t1": "/data/ä.nii"}) is None
    assert json.loads(target.read_text(encoding="utf-8")) == {"t1": "/data/ä.nii"}
    assert "error" in api._write_json(str(tmp_path / "missing" / "x.json"), {})
    assert "error" in api._write_json(str(tmp_path / "bad.json"), {"a": object()})
