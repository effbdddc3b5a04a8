"""The compact variant: the paper's storage (uint8 codebook indices + codebook + Gather), the
fp32 model's outputs exactly, in at most 1.4 MB."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto
from squeezenet_support import CONTRIB_DIR, ensure_built

ensure_built()

from inference import CONFIG_PATH, create_session, model_source  # noqa: E402
from processing import ImageProcessor  # noqa: E402
from squeezenet import architecture, variants, weights  # noqa: E402
from squeezenet.modelfiles import model_path  # noqa: E402

MAX_BYTES = 1_400_000


def sample_batch() -> np.ndarray:

    with open(CONFIG_PATH, encoding="utf-8") as handle:
        processor = ImageProcessor(json.load(handle))
    folder = os.path.join(CONTRIB_DIR, "sample_data")
    return np.concatenate(
        [
            processor.loadAndPreprocess(os.path.join(folder, name))
            for name in sorted(os.listdir(folder))
        ]
    )


def test_compact_file_is_small_and_valid():
    path = model_path("compact")
    assert os.path.getsize(path) <= MAX_BYTES
    onnx.checker.check_model(path, full_check=True)


def test_compact_stores_uint8_indices_and_codebooks():
    model = onnx.load(model_path("compact"))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for spec in architecture.CONV_SPECS:
        codes = initializers[f"{spec.name}/codes"]
        codebook = initializers[f"{spec.name}/codebook"]
        assert codes.data_type == TensorProto.UINT8
        assert tuple(codes.dims) == spec.weight_shape
        assert codebook.data_type == TensorProto.FLOAT and tuple(codebook.dims) == (256,)
        assert f"{spec.name}/weight" not in initializers  # rebuilt by the Gather, not stored
    gathers = [node for node in model.graph.node if node.op_type == "Gather"]
    assert len(gathers) == len(architecture.CONV_SPECS)


def test_compact_outputs_equal_fp32():
    batch = sample_batch()
    fp32 = create_session(model_source("fp32")).run(None, {"data": batch})[0]
    compact = create_session(model_source("compact")).run(None, {"data": batch})[0]
    assert np.abs(fp32 - compact).max() <= 1e-6
    assert (fp32.argmax(axis=1) == compact.argmax(axis=1)).all()


def test_onnx_runtime_folds_the_gathers_at_load(tmp_path):
    """What makes the compact model as fast as fp32: the session's optimised graph holds no
    Gather or Cast any more, only the convolutions on constant weights."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(model_path("compact"), options, providers=["CPUExecutionProvider"])
    optimised = onnx.load(options.optimized_model_filepath)
    op_types = {node.op_type for node in optimised.graph.node}
    assert not op_types & {"Gather", "Cast"}


def test_compact_build_is_deterministic():
    layers = weights.decode_file(os.path.join(CONTRIB_DIR, "weights", "compressed_SqueezeNet.net"))
    first = variants.build_compact_model(layers).SerializeToString(deterministic=True)
    second = variants.build_compact_model(layers).SerializeToString(deterministic=True)
    assert first == second
    with open(model_path("compact"), "rb") as handle:
        assert handle.read() == first
