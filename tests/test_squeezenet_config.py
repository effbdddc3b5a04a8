"""The package's declarations: config.json against ModelHub's schema, licences, init.json."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import jsonschema
import pytest
from squeezenet_support import CONTRIB_DIR, REPO_DIR, asset, ensure_built, reference_file

IMAGE_FORMATS = ["image/png", "image/jpeg", "image/gif", "image/bmp", "image/tiff", "image/webp"]


@pytest.fixture(scope="module")
def config():
    with open(os.path.join(CONTRIB_DIR, "model", "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def init_json():
    with open(os.path.join(REPO_DIR, "init", "init.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_config_is_valid_against_modelhubs_schema(config):
    with open(reference_file("modelhub-config-schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    # The schema itself is not strictly draft-4 valid ("required": [] under modelhub), so
    # it is used to validate without being checked first.
    jsonschema.Draft4Validator(schema).validate(config)


def test_config_declares_the_model(config):
    uuid.UUID(config["id"])
    assert config["meta"]["name"] == "squeezenet"
    assert config["publication"]["year"] == 2016
    assert "1602.07360" in config["publication"]["url"]
    assert "songhan/SqueezeNet-Deep-Compression" in config["model"]["provenance"]
    assert config["model"]["format"] == ".onnx"
    io = config["model"]["io"]
    assert io["input"]["format"] == IMAGE_FORMATS
    assert io["input"]["single"]["format"] == IMAGE_FORMATS
    assert io["input"]["single"]["dim_limits"] == [{"min": 1, "max": 4}, {"min": 32}, {"min": 32}]
    assert [(out["name"], out["type"]) for out in io["output"]] == [("probabilities", "label_list")]
    assert config["modelhub"]["top"] == 5 and config["modelhub"]["sort"] is True


def test_licences_name_weights_code_and_samples():
    ensure_built()  # for the sample_data folder
    with open(os.path.join(CONTRIB_DIR, "license", "model"), encoding="utf-8") as handle:
        model = handle.read()
    with open(os.path.join(CONTRIB_DIR, "license", "sample_data"), encoding="utf-8") as handle:
        samples = handle.read()
    assert "BSD LICENSE" in model and "MIT License" in model
    assert "CC0" in samples
    for name in os.listdir(os.path.join(CONTRIB_DIR, "sample_data")):
        assert f"{os.path.splitext(name)[0]}: https://www.pexels.com/" in samples


def test_init_json_pins_every_asset_and_git_ignores_it(init_json):
    entries = init_json["external_contrib_files"]
    assert init_json["docker_id"] == "squeezenet-modelhub"
    assert len(entries) == 19  # weights, labels, thumbnail, 16 photos
    for entry in entries:
        assert entry["src_url"].startswith("https://raw.githubusercontent.com/")
        name = os.path.basename(entry["dest_file_path"])
        with open(asset(name), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"], name
    destinations = [entry["dest_file_path"].lstrip("/") for entry in entries]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *destinations],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(ignored.stdout.split()) == sorted(destinations)
