"""Which model files the build hook makes (fp32 always, another variant only when asked), and
the one answer every way of naming an unknown variant gets: the list of the valid ones."""

from __future__ import annotations

import pytest

import build
from squeezenet import modelfiles

LISTED = "choose one of fp32, compact, int8"


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """What build.main asks for, in order, with the builders replaced by recorders."""
    calls: list[str] = []
    monkeypatch.delenv("MODELHUB_VARIANT", raising=False)
    monkeypatch.setattr(build, "build_fp32", lambda: calls.append("fp32"))
    monkeypatch.setattr(build.weights, "decode_file", lambda path: [])
    monkeypatch.setattr(
        build,
        "build_variants",
        lambda model_dir, layers, names: calls.append("+".join(sorted(names))),
    )
    return calls


def test_by_default_only_fp32_is_built(built):
    build.main()
    assert built == ["fp32"]


@pytest.mark.parametrize("variant", ["compact", "int8"])
def test_the_variant_the_environment_names_is_built_after_fp32(built, monkeypatch, variant):
    monkeypatch.setenv("MODELHUB_VARIANT", variant)
    build.main()
    assert built == ["fp32", variant]


def test_variants_given_explicitly_win_over_the_environment(built, monkeypatch):
    monkeypatch.setenv("MODELHUB_VARIANT", "int8")
    build.main(["fp32"])
    assert built == ["fp32"]
    build.main(["fp32", "compact"])
    assert built == ["fp32", "fp32", "compact"]


def test_an_unknown_variant_builds_nothing_and_lists_the_valid_ones(built, monkeypatch):
    monkeypatch.setenv("MODELHUB_VARIANT", "fp16")
    with pytest.raises(ValueError, match=f"Unknown model variant 'fp16': {LISTED}"):
        build.main()
    assert built == []


@pytest.mark.parametrize("name", ["fp16", "../model", "", "FP32"])
def test_only_listed_names_make_a_file_name(name):
    with pytest.raises(ValueError, match=LISTED):
        modelfiles.model_filename(name)
    assert modelfiles.model_filename("int8") == "model_int8.onnx"
    assert modelfiles.model_filename() == "model.onnx"
