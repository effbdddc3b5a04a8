"""Settings are read from the environment once, into an immutable object the apps are built
with; ModelHub's constructors without settings read it at construction, never per request."""

from __future__ import annotations

import dataclasses

import pytest
from mockmodels.single import inference as single

from modelhubapi import ModelHubAPI, ModelHubRESTAPI
from modelhubapi.settings import Settings, SettingsError

MIB = 1024 * 1024


def test_every_variable_is_read():
    environ = {
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "MODELHUB_THREADS": "3",
        "MODELHUB_WORKING_DIR": "/working",
        "MODELHUB_OUTPUT_DIR": "/output",
        "MODELHUB_OUTPUT_MAX_AGE": "60",
        "MODELHUB_DATA_DIR": "/data",
        "MODELHUB_MAX_UPLOAD_MB": "2",
        "MODELHUB_MAX_PIXELS": "1000",
        "MODELHUB_MAX_IMAGE_MB": "5",
        "MODELHUB_URL_TIMEOUT": "4",
        "MODELHUB_URL_DOWNLOADS": "6",
        "MODELHUB_MAX_CONNECTIONS": "7",
        "MODELHUB_ALLOW_PRIVATE_URLS": "yes",
        "MODELHUB_MIRROR": "/a:/b",
    }
    assert Settings.from_environment(environ) == Settings(
        host="0.0.0.0",
        port=9000,
        server_threads=3,
        working_dir="/working",
        output_dir="/output",
        output_max_age=60,
        data_dir="/data",
        max_upload_bytes=2 * MIB,
        max_pixels=1000,
        max_image_bytes=5 * MIB,
        url_timeout=4.0,
        url_downloads=6,
        max_connections=7,
        allow_private_urls=True,
        mirror_dirs=("/a", "/b"),
    )


def test_unset_and_blank_variables_give_the_defaults():
    assert Settings.from_environment({}) == Settings()
    assert Settings.from_environment({"PORT": " ", "MODELHUB_WORKING_DIR": ""}) == Settings()


def test_a_malformed_number_is_named():
    with pytest.raises(SettingsError, match="MODELHUB_THREADS must be a whole number, not 'x'"):
        Settings.from_environment({"MODELHUB_THREADS": "x"})


def test_settings_cannot_change():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_upload_bytes = 1  # type: ignore[misc]
    assert dataclasses.replace(settings, max_upload_bytes=1).max_upload_bytes == 1


def test_modelhub_constructors_read_the_environment_once(monkeypatch, mock_package, tmp_path):
    """`ModelHubRESTAPI(model, dir)`, ModelHub's signature, reads the environment when it is
    built; a later change of the environment does not reach the running app."""
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("MODELHUB_OUTPUT_DIR", str(tmp_path / "output"))
    rest_api = ModelHubRESTAPI(single.Model(), mock_package("single"))
    api = ModelHubAPI(single.Model(), mock_package("single"))
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", "5")
    assert rest_api.settings.max_upload_bytes == MIB
    assert api.output_folder == str(tmp_path / "output")
    rest_api.working_folder = str(tmp_path)  # ModelHub's tests set it after construction
    response = rest_api.app.test_client().post(
        "/api/predict", data=bytes(2 * MIB), content_type="image/png"
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "The request is too large: the limit is 1 MB."}
