"""The package as ModelHub's start script fetches it (tracked files and external files, no
init step): it builds its model in memory from the checked weights and serves, writing nothing
into its folder; and it imports nothing of the engine's beyond modelhublib's base classes."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest
from squeezenet_support import (
    CONTRIB_DIR,
    ensure_built,
    external_files,
    fetched_package,
    subprocess_env,
)

import build
from squeezenet import modelfiles

# ModelHub's entry points import the engine by design, in every contributor package.
ENGINE_ENTRY_POINTS = {"run.py", "modelapi.py"}
MODELHUBLIB_PUBLIC = (
    "modelhublib.model",
    "modelhublib.processor",
    "modelhublib.imageloaders",
    "modelhublib.imageconverters",
)


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> str:
    return fetched_package(str(tmp_path_factory.mktemp("fetched")))


def listing(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
        if "__pycache__" not in root
    )


def predict(contrib_dir: str, *images: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelhubapi",
            "predict",
            "--json",
            "--contrib",
            contrib_dir,
            *images,
        ],
        env=subprocess_env(PYTHONDONTWRITEBYTECODE="1", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_fetched_package_has_no_model_file(fetched):
    assert not [name for name in listing(fetched) if name.endswith(".onnx")]
    assert os.path.isfile(os.path.join(fetched, "weights", "compressed_SqueezeNet.net"))


def test_a_fetched_package_classifies_and_writes_nothing_into_its_folder(fetched):
    before = listing(fetched)
    completed = predict(fetched, os.path.join(fetched, "sample_data", "bagel.jpg"))
    assert completed.returncode == 0, completed.stderr
    top = json.loads(completed.stdout)[0]["output"][0]["prediction"][0]
    assert top["label"] == "bagel, beigel" and top["probability"] > 0.9
    assert listing(fetched) == before


def test_a_fetched_package_refuses_weights_that_are_not_the_published_ones(tmp_path, fetched):
    package = shutil.copytree(fetched, tmp_path / "contrib_src")
    weights = package / "weights" / "compressed_SqueezeNet.net"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    completed = predict(str(package), str(package / "sample_data" / "bagel.jpg"))
    assert completed.returncode == 1
    assert "is not the published one" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_without_weights_the_error_says_what_is_missing(tmp_path, fetched):
    package = shutil.copytree(fetched, tmp_path / "contrib_src")
    os.remove(package / "weights" / "compressed_SqueezeNet.net")
    completed = predict(str(package), str(package / "sample_data" / "bagel.jpg"))
    assert completed.returncode == 1
    assert "weights/compressed_SqueezeNet.net is missing" in completed.stderr


@pytest.mark.parametrize("variant", ["fp32", "compact"])
def test_the_model_built_in_memory_is_the_init_steps_file(variant):
    ensure_built()
    with open(modelfiles.model_path(variant), "rb") as handle:
        assert build.model_bytes(variant) == handle.read()


def test_the_package_pins_the_weights_init_json_pins():
    pinned = {os.path.basename(e["dest_file_path"]): e["sha256"] for e in external_files()}
    assert pinned["compressed_SqueezeNet.net"] == modelfiles.WEIGHTS_SHA256


def imported_modules(path: str) -> set[str]:
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module or "")
    return modules


def test_the_package_uses_only_modelhublibs_public_classes_of_the_engine():
    offending = {}
    for root, _, names in os.walk(CONTRIB_DIR):
        for name in names:
            if not name.endswith(".py") or "__pycache__" in root:
                continue
            path = os.path.join(root, name)
            engine = {
                module
                for module in imported_modules(path)
                if module.split(".")[0] in {"modelhubapi", "modelhublib"}
                and not module.startswith(MODELHUBLIB_PUBLIC)
            }
            if path in {os.path.join(CONTRIB_DIR, entry) for entry in ENGINE_ENTRY_POINTS}:
                engine -= {"modelhubapi"}
            if engine:
                offending[os.path.relpath(path, CONTRIB_DIR)] = sorted(engine)
    assert offending == {}


def test_without_the_onnx_package_a_missing_file_says_how_to_build_it(monkeypatch, tmp_path):
    """A serving-only install (no `onnx`, so no in-memory build) names the init command."""
    import inference

    monkeypatch.setattr(inference, "model_path", lambda variant: str(tmp_path / "none.onnx"))
    monkeypatch.setitem(sys.modules, "build", None)  # `import build` raises ImportError
    with pytest.raises(FileNotFoundError, match="run `modelhub init --variant compact`"):
        inference.model_source("compact")
