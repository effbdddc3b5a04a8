"""MODELHUB_VARIANT picks the model file the package loads; an unknown one is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from squeezenet_support import CONTRIB_DIR, ensure_built, subprocess_env

ensure_built()

from inference import Model  # noqa: E402


def loaded_variant(model: Model) -> str | None:
    """The variant recorded in the loaded file's metadata (fp32's file records none), which
    both of the model's sessions must have loaded."""
    variants = {
        session.get_modelmeta().custom_metadata_map.get("squeezenet.variant")
        for session in (model.session, model.session_when_busy)
    }
    assert len(variants) == 1
    return variants.pop()


@pytest.mark.parametrize("variant", ["compact", "int8"])
def test_environment_selects_the_variant_file(monkeypatch, variant):
    monkeypatch.setenv("MODELHUB_VARIANT", variant)
    model = Model()
    assert model.variant == variant
    assert loaded_variant(model) == variant


def test_default_is_fp32(monkeypatch):
    monkeypatch.delenv("MODELHUB_VARIANT", raising=False)
    model = Model()
    assert model.variant == "fp32"
    assert loaded_variant(model) is None


def test_variants_give_the_same_answer_on_a_sample(monkeypatch):
    bagel = os.path.join(CONTRIB_DIR, "sample_data", "bagel.jpg")
    answers = {}
    for variant in ("fp32", "compact", "int8"):
        monkeypatch.setenv("MODELHUB_VARIANT", variant)
        answers[variant] = Model().infer(bagel)[0]["label"]
    assert set(answers.values()) == {"bagel, beigel"}


def test_unknown_variant_is_a_clear_error_from_the_command_line():
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelhubapi",
            "predict",
            os.path.join(CONTRIB_DIR, "sample_data", "bagel.jpg"),
        ],
        env=subprocess_env(MODELHUB_VARIANT="nosuchvariant"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert "Unknown model variant 'nosuchvariant': choose one of fp32, compact, int8" in (
        completed.stderr
    )
    assert "Traceback" not in completed.stderr
