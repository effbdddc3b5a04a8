"""The OpenAPI document: valid, served as is, and naming exactly the routes the app has."""

from __future__ import annotations

import json
import os
import re

import pytest
from mockmodels.ui_label_model import inference as ui_label_model
from openapi_spec_validator import validate

from modelhubapi import ModelHubRESTAPI

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
OPENAPI_PATH = os.path.join(TESTS_DIR, "..", "framework", "modelhubapi", "openapi.json")
MOCK_PACKAGE = os.path.join(TESTS_DIR, "mockmodels", "ui_label_model")
# Flask answers these for every route by itself; they are not operations of the API.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def load_document() -> dict:
    with open(OPENAPI_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def path_shape(path: str) -> str:
    """`/api/samples/<sample_name>` and `/api/samples/{name}` both become `/api/samples/{}`."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_document_is_valid_openapi():
    validate(load_document())


@pytest.fixture(scope="module")
def client():
    return ModelHubRESTAPI(ui_label_model.Model(), MOCK_PACKAGE).app.test_client()


def test_document_is_served_unchanged(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == load_document()


def test_document_names_every_route_of_the_app_and_no_other(client):
    app = client.application
    served = {
        (path_shape(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - AUTOMATIC_METHODS
    }
    documented = {
        (path_shape(path), method)
        for path, operations in load_document()["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert documented == served


def test_every_error_answer_has_the_error_shape():
    document = load_document()
    shared = document["components"]["responses"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and "$ref" in answer:
                    answer = shared[answer["$ref"].rsplit("/", 1)[-1]]
                if status.startswith("4") or status == "500":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
