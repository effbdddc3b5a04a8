"""build_variants, the init hook for the variants: same bytes from the same inputs, nothing
rebuilt when nothing changed, a rebuild when an input did."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from squeezenet_support import CONTRIB_DIR, ensure_built

ensure_built()

from squeezenet import variants, weights  # noqa: E402
from squeezenet.modelfiles import model_path  # noqa: E402


@pytest.fixture(scope="module")
def layers():
    return weights.decode_file(os.path.join(CONTRIB_DIR, "weights", "compressed_SqueezeNet.net"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, layers):
    """The variants built into a fresh model folder beside a copy of the package's fp32."""
    model_dir = tmp_path_factory.mktemp("model")
    shutil.copyfile(model_path("fp32"), model_dir / "model.onnx")
    return model_dir, variants.build_variants(str(model_dir), layers)


def test_builds_both_variants_with_the_packages_bytes(built):
    model_dir, paths = built
    assert sorted(os.path.basename(path) for path in paths) == [
        "model_compact.onnx",
        "model_int8.onnx",
    ]
    for variant in ("compact", "int8"):
        ours = Path(model_path(variant, str(model_dir))).read_bytes()
        assert ours == Path(model_path(variant)).read_bytes(), variant


def test_second_run_does_nothing(built, layers):
    model_dir, _ = built
    before = {name: os.stat(model_dir / name).st_mtime_ns for name in os.listdir(model_dir)}
    assert variants.build_variants(str(model_dir), layers) == []
    after = {name: os.stat(model_dir / name).st_mtime_ns for name in os.listdir(model_dir)}
    assert after == before


def test_a_changed_layer_rebuilds_compact_only(tmp_path, layers):
    for variant in ("fp32", "compact", "int8"):
        shutil.copyfile(model_path(variant), model_path(variant, str(tmp_path)))
    first = layers[0]
    bias = first.bias.copy()
    bias[0] += 1.0
    changed = [dataclasses.replace(first, bias=bias), *layers[1:]]

    assert variants.build_variants(str(tmp_path), changed) == [model_path("compact", str(tmp_path))]
    assert (
        Path(model_path("compact", str(tmp_path))).read_bytes()
        != Path(model_path("compact")).read_bytes()
    )


def test_asking_for_compact_builds_compact_alone(tmp_path, layers):
    shutil.copyfile(model_path("fp32"), model_path("fp32", str(tmp_path)))
    built = variants.build_variants(str(tmp_path), layers, names={"compact"})
    assert built == [model_path("compact", str(tmp_path))]
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model_compact.onnx"]
