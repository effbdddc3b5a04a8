"""The int8 variant: static QDQ quantisation calibrated on the sample photos (never on the
test images), within 1.5 points top-5 of fp32 on the 100 ImageNet test images."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from squeezenet_support import CONTRIB_DIR, asset, asset_dir, ensure_built

ensure_built()

from inference import CONFIG_PATH, create_session, model_source  # noqa: E402
from processing import ImageProcessor  # noqa: E402
from squeezenet import architecture, variants  # noqa: E402
from squeezenet.modelfiles import file_sha256, model_path  # noqa: E402


@pytest.fixture(scope="module")
def imagenet():
    """The 100 test images preprocessed as the package does, and their class indices."""
    folder = asset_dir("imagenet-sample-100")
    with open(asset("imagenet_synsets.txt"), encoding="utf-8") as handle:
        synsets = handle.read().split()
    with open(CONFIG_PATH, encoding="utf-8") as handle:
        processor = ImageProcessor(json.load(handle))
    names = sorted(os.listdir(folder))
    batch = np.concatenate(
        [processor.loadAndPreprocess(os.path.join(folder, name)) for name in names]
    )
    classes = np.array([synsets.index(name.split("_")[0]) for name in names])
    return batch, classes


def accuracy(variant: str, batch: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    session = create_session(model_source(variant))
    probabilities = np.concatenate(
        [session.run(None, {"data": batch[i : i + 10]})[0] for i in range(0, len(batch), 10)]
    )
    top5 = np.argsort(-probabilities, axis=1, kind="stable")[:, :5]
    return float((top5[:, 0] == classes).mean()), float((top5 == classes[:, None]).any(1).mean())


def test_int8_accuracy_is_within_reach_of_fp32(imagenet):
    batch, classes = imagenet
    assert len(classes) == 100
    fp32_top1, fp32_top5 = accuracy("fp32", batch, classes)
    int8_top1, int8_top5 = accuracy("int8", batch, classes)
    assert int8_top5 >= fp32_top5 - 0.015
    assert int8_top1 >= fp32_top1 - 0.03


def test_int8_is_qdq_with_per_channel_weights():
    model = onnx.load(model_path("int8"))
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["Conv"] == len(architecture.CONV_SPECS)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > ops["QuantizeLinear"]
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight = next(n for n in model.graph.node if n.output[0] == node.input[1])
            assert weight.op_type == "DequantizeLinear"
            assert initializers[weight.input[0]].data_type == onnx.TensorProto.INT8
            assert len(initializers[weight.input[1]].dims) == 1  # one scale per output channel
    # The probabilities stay float: the softmax reads no dequantised tensor.
    softmax = next(node for node in model.graph.node if node.op_type == "Softmax")
    producer = next(node for node in model.graph.node if softmax.input[0] in node.output)
    assert producer.op_type != "DequantizeLinear"


def test_calibration_never_sees_the_test_images():
    calibration = {file_sha256(path) for path in variants.sample_images()}
    assert calibration
    folder = asset_dir("imagenet-sample-100")
    test_images = {file_sha256(os.path.join(folder, name)) for name in os.listdir(folder)}
    assert not calibration & test_images
    assert all(
        os.path.dirname(path) == os.path.join(CONTRIB_DIR, "sample_data")
        for path in variants.sample_images()
    )


def test_calibration_tensors_are_deterministic_and_preprocessed():
    first = variants.calibration_tensors(3)
    second = variants.calibration_tensors(3)
    assert len(first) == 3 * len(variants.sample_images())
    assert all(a.shape == (1, 3, 227, 227) and a.dtype == np.float32 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_calibration_uses_whole_slices_of_any_number_of_tensors():
    # The quantizer calibrates 16 tensors at a time; a package with more or fewer sample
    # photos gives a count that is no multiple of 16, and init must still build int8.
    tensors = variants.calibration_tensors(1)[:9] * 2  # 18 tensors
    model = variants.quantize_int8(model_path("fp32"), tensors)
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    with pytest.raises(ValueError, match="at least 16 tensors, got 15"):
        variants.quantize_int8(model_path("fp32"), tensors[:15])


def test_each_concat_keeps_one_scale_so_it_copies_bytes():
    # Inputs quantised like the output let ONNX Runtime's QLinearConcat copy instead of
    # requantising every byte through a table: the int8 model runs 7-9 % faster.
    model = onnx.load(model_path("int8"))
    producers = {output: node for node in model.graph.node for output in node.output}
    consumers = {name: node for node in model.graph.node for name in node.input}
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    concats = [node for node in model.graph.node if node.op_type == "Concat"]
    assert len(concats) == 8
    for concat in concats:
        output_q = consumers[concat.output[0]]
        assert output_q.op_type == "QuantizeLinear"
        for name in concat.input:
            input_dq = producers[name]
            assert input_dq.op_type == "DequantizeLinear"
            for position in (1, 2):  # scale, zero point
                assert values[input_dq.input[position]] == values[output_q.input[position]]


@pytest.mark.parametrize(
    "branch, shared",
    [("Relu", True), ("Identity", False)],  # a branch that can go negative keeps its range
)
def test_concat_ranges_are_shared_only_between_relu_outputs(tmp_path, branch, shared):
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        TensorsData,
        save_tensors_data,
    )

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node(branch, ["x"], ["b"]),
            helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
        ],
        "two-branches",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    model_file, cache = str(tmp_path / "model.onnx"), str(tmp_path / "calibration.json")
    onnx.save(helper.make_model(graph), model_file)
    low_b = 0.0 if shared else -1.0
    ranges = {"a": (0.0, 2.0), "b": (low_b, 3.0), "y": (low_b, 3.0)}
    data = {name: tuple(np.float32([value]) for value in pair) for name, pair in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), cache)
    overrides = variants.shared_concat_ranges(model_file, cache)
    if shared:
        assert {
            name: [(o["rmin"], o["rmax"]) for o in value] for name, value in overrides.items()
        } == {name: [(0.0, 3.0)] for name in "aby"}
    else:
        assert overrides == {}
