"""build.py, the package's init hook: builds model.onnx once, again only when inputs change."""

from __future__ import annotations

import os
import shutil

import onnx
import pytest
from squeezenet_support import asset

import build
from squeezenet.modelfiles import file_sha256


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "compressed_SqueezeNet.net"
    shutil.copyfile(asset("compressed_SqueezeNet.net"), path)
    return path


def snapshot(path):
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_builds_once_then_leaves_the_file_alone(tmp_path, weights):
    output = tmp_path / "model" / "model.onnx"

    assert build.build_fp32(str(weights), str(output)) is True
    before = snapshot(output)
    assert build.build_fp32(str(weights), str(output)) is False

    assert snapshot(output) == before
    assert sorted(os.listdir(output.parent)) == ["model.onnx"]  # no temporary left over
    metadata = {p.key: p.value for p in onnx.load(output).metadata_props}
    assert metadata["squeezenet.weights_sha256"] == file_sha256(weights)


def test_rebuilds_when_the_weights_change(tmp_path, weights):
    output = tmp_path / "model.onnx"
    build.build_fp32(str(weights), str(output))
    first = output.read_bytes()

    data = bytearray(weights.read_bytes())
    data[104 + 1024] ^= 0x01  # a bit of conv1's first bias: still a valid file
    weights.write_bytes(bytes(data))

    assert build.build_fp32(str(weights), str(output)) is True
    assert output.read_bytes() != first


def test_rebuilds_a_damaged_model_file(tmp_path, weights):
    output = tmp_path / "model.onnx"
    output.write_bytes(b"not an onnx file")
    assert build.build_fp32(str(weights), str(output)) is True
    onnx.checker.check_model(onnx.load(output))


def test_corrupt_weights_are_refused_and_nothing_is_written(tmp_path, weights):
    weights.write_bytes(weights.read_bytes()[:-100])
    output = tmp_path / "model.onnx"

    with pytest.raises(ValueError, match=r"compressed_SqueezeNet\.net: truncated"):
        build.build_fp32(str(weights), str(output))
    assert os.listdir(tmp_path) == ["compressed_SqueezeNet.net"]
