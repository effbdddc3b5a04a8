"""What ModelHub's own clients read of this package, served by this engine: the web app's
fields and tabs, the model index's identity, and the README head ModelHub generates.

The web app's reads are listed in the reference copy of ModelHub's tools (README there). It
shows the Demo and Test tabs only when `modelhub.allow_sample_demo` / `allow_user_test` are
absent, and a sample only when it is served as image/jpeg, image/jpg or image/png.
"""

from __future__ import annotations

import io
import json

import pytest
from modelhub_readme import END_MARKER, README_PATH, load_config, readme_head
from squeezenet_support import CONTRIB_DIR, reference_file, squeezenet_model

from modelhubapi import ModelHubRESTAPI

SAMPLE_TYPES = {"image/jpeg", "image/jpg", "image/png"}
# Every config field the web app reads. It also reads meta.framework, which ModelHub's own
# schema forbids (meta has additionalProperties: false) and ModelHub's integration test
# validates get_config against, so no package can have it; the app shows it as empty.
CONFIG_FIELDS = [
    ("meta", "name"),
    ("meta", "application_area"),
    ("meta", "task"),
    ("meta", "task_extended"),
    ("meta", "data_type"),
    ("meta", "data_source"),
    ("model", "description"),
    ("model", "learning_type"),
    ("model", "architecture"),
    ("model", "format"),
    ("modelhub", "top"),
    ("modelhub", "sort"),
    ("publication", "title"),
    ("publication", "source"),
    ("publication", "year"),
    ("publication", "authors"),
    ("publication", "abstract"),
    ("publication", "url"),
    ("publication", "google_scholar"),
    ("publication", "bibtex"),
]
LEGAL_FIELDS = [
    "modelhub_license",
    "modelhub_acknowledgements",
    "model_license",
    "sample_data_license",
]


@pytest.fixture(scope="module")
def client():
    app = ModelHubRESTAPI(squeezenet_model(), CONTRIB_DIR).app
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture(scope="module")
def index_entry() -> dict:
    with open(reference_file("modelhub/models.json"), encoding="utf-8") as handle:
        return next(entry for entry in json.load(handle) if entry["name"] == "squeezenet")


def test_the_web_app_shows_all_four_tabs(client):
    modelhub = client.get("/api/get_config").get_json()["modelhub"]
    assert "allow_sample_demo" not in modelhub
    assert "allow_user_test" not in modelhub


def test_every_config_field_the_web_app_reads_is_served(client):
    config = client.get("/api/get_config").get_json()
    missing = [".".join(path) for path in CONFIG_FIELDS if path[1] not in config[path[0]]]
    assert missing == []
    output = config["model"]["io"]["output"][0]
    assert output["name"] and output["type"] == "label_list"


def test_samples_and_thumbnail_are_served_as_images_the_web_app_shows(client):
    samples = client.get("/api/get_samples").get_json()
    assert len(samples) == 16
    for url in [*samples, "http://localhost/api/thumbnail/thumbnail.jpg"]:
        answer = client.get(url.split("localhost", 1)[1])
        assert answer.status_code == 200, url
        assert answer.mimetype in SAMPLE_TYPES, url


def test_a_sample_prediction_has_what_the_demo_tab_reads(client):
    result = client.get("/api/predict_sample?filename=bagel.jpg").get_json()
    assert isinstance(result["processing_time"], float)
    prediction = result["output"][0]["prediction"]
    assert len(prediction) == 5
    assert all(set(row) >= {"label", "probability"} for row in prediction)


def test_an_upload_error_is_what_the_test_tab_shows(client):
    answer = client.post("/api/predict", data={"file": (io.BytesIO(b"not an image"), "notes.txt")})
    assert answer.status_code == 400
    assert answer.get_json()["error"]


def test_the_legal_tab_has_four_licences(client):
    legal = client.get("/api/get_legal").get_json()
    assert all(legal[key].strip() for key in LEGAL_FIELDS)


def test_the_identity_is_the_model_index_entry(index_entry):
    config = load_config()
    assert config["id"] == index_entry["id"]
    assert config["meta"]["name"] == index_entry["name"]
    assert config["meta"]["task_extended"] == index_entry["task_extended"]


def test_the_readme_starts_with_the_tables_modelhub_generates_from_config_json():
    with open(README_PATH, encoding="utf-8") as handle:
        readme = handle.read()
    head = readme_head(load_config())
    assert readme.startswith(head + END_MARKER), (
        "README.md's head differs from config.json: run `python tests/modelhub_readme.py`"
    )
