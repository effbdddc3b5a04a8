"""`pip install ./framework` gives a complete engine: the wheel holds the code, the web UI, the
OpenAPI document and the licences, names its dependencies as requirements.txt pins them, and
installs the `modelhub` command. Built offline (--no-build-isolation) with the pinned backend."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from squeezenet_support import FRAMEWORK_DIR, REPO_DIR

VERSION = metadata.version("modelhub-engine")
DIST_INFO = f"modelhub_engine-{VERSION}.dist-info"


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet", "--no-index", "--no-deps"],
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """The engine's wheel, built from a copy of framework/ (the build writes beside it)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "framework"
    shutil.copytree(
        FRAMEWORK_DIR, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    pip("wheel", "--no-build-isolation", "--wheel-dir", str(folder), str(source))
    (built,) = folder.glob("modelhub_engine-*.whl")
    return str(built)


def test_the_wheel_holds_the_code_the_web_ui_and_the_licences(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
    shipped = {
        os.path.relpath(os.path.join(folder, name), FRAMEWORK_DIR)
        for package in ("modelhubapi", "modelhublib")
        for folder, _, files in os.walk(os.path.join(FRAMEWORK_DIR, package))
        for name in files
        if not name.endswith(".pyc")
    }
    assert {"modelhubapi/static/index.html", "modelhubapi/openapi.json"} <= shipped
    assert shipped <= names, shipped - names
    assert {f"{DIST_INFO}/licenses/LICENSE", f"{DIST_INFO}/licenses/NOTICE"} <= names
    assert re.search(r"^modelhub = modelhubapi\.cli:main$", entry_points, re.MULTILINE)


def test_every_dependency_is_pinned_in_requirements_txt_within_its_range():
    with open(os.path.join(REPO_DIR, "requirements.txt"), encoding="utf-8") as handle:
        pins = dict(
            line.split("==") for line in map(str.strip, handle) if line and line[0] != "#"
        )
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    for text in metadata.requires("modelhub-engine"):
        requirement = Requirement(text)
        if requirement.marker:  # extras (SimpleITK) are optional
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


def test_an_installed_wheel_runs_from_anywhere(wheel, tmp_path):
    target = tmp_path / "site"
    pip("install", "--target", str(target), wheel)
    script = (
        "import importlib.resources, json, os, modelhubapi\n"
        "from modelhubapi import distribution\n"
        "print(os.path.dirname(modelhubapi.__file__))\n"
        "print(modelhubapi.__version__)\n"
        "print(json.dumps(os.listdir(distribution.licence_dir())))\n"
        "print(importlib.resources.files('modelhubapi').joinpath('static/app.js').is_file())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    location, version, licences, has_ui = completed.stdout.splitlines()
    assert location == str(target / "modelhubapi")
    assert version == VERSION
    assert {"LICENSE", "NOTICE"} <= set(json.loads(licences))
    assert has_ui == "True"


def test_metrics_name_the_installed_engine_version(rest_client):
    from mockmodels.single.inference import Model

    scrape = rest_client(Model()).client.get("/metrics").get_data(as_text=True)
    assert f'engine_version="{VERSION}"' in scrape
