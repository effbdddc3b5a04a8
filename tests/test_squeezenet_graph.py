"""The ONNX builder, checked against an independent NumPy forward pass of the decoded weights.

The reference below is written from the paper and the Caffe definition, not from graph.py:
plain im2col convolutions in float64, Caffe's ceil-mode max-pooling, the padded conv_final,
global average pooling and softmax. Agreement within 1e-4 on real photos means the graph wires
every layer as the weights were trained.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from squeezenet_support import asset

from processing import MEAN_BGR, warp_and_crop
from squeezenet.graph import build_model, serialize
from squeezenet.weights import decode_file


@pytest.fixture(scope="module")
def layers():
    return {layer.spec.name: layer for layer in decode_file(asset("compressed_SqueezeNet.net"))}


@pytest.fixture(scope="module")
def model_bytes(layers):
    return serialize(build_model(list(layers.values()), metadata={"b": "2", "a": "1"}))


def conv_relu(x, layer, stride=1, pad=0):
    """im2col convolution + bias + ReLU on one image (C, H, W), float64."""
    weight = layer.weight.astype(np.float64)
    out_channels, in_channels, k, _ = weight.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    _, height, width, _, _ = windows.shape
    columns = windows.transpose(1, 2, 0, 3, 4).reshape(height * width, in_channels * k * k)
    out = columns @ weight.reshape(out_channels, -1).T + layer.bias
    return np.maximum(out.T.reshape(out_channels, height, width), 0.0)


def max_pool_ceil(x, k=3, stride=2):
    """Caffe max-pooling: output size rounded up, the missing border never wins."""
    _, height, width = x.shape
    out_h = -(-(height - k) // stride) + 1
    out_w = -(-(width - k) // stride) + 1
    need_h, need_w = (out_h - 1) * stride + k, (out_w - 1) * stride + k
    padded = np.pad(x, ((0, 0), (0, need_h - height), (0, need_w - width)), constant_values=-np.inf)
    return sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::stride, ::stride].max((-2, -1))


def reference_forward(image, layers):
    """SqueezeNet 1.0 on one preprocessed image (3, 227, 227) -> 1000 probabilities."""
    x = max_pool_ceil(conv_relu(image.astype(np.float64), layers["conv1"], stride=2))
    for fire in range(2, 10):
        squeezed = conv_relu(x, layers[f"fire{fire}/conv1x1_1"])
        x = np.concatenate(
            [
                conv_relu(squeezed, layers[f"fire{fire}/conv1x1_2"]),
                conv_relu(squeezed, layers[f"fire{fire}/conv3x3_2"], pad=1),
            ]
        )
        if fire in (4, 8):
            x = max_pool_ceil(x)
    scores = conv_relu(x, layers["conv_final"], pad=1).mean(axis=(1, 2))
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


def preprocessed(name):
    crop = np.asarray(warp_and_crop(Image.open(asset(name))), dtype=np.float32)
    return (crop.transpose(2, 0, 1)[None, ::-1] - MEAN_BGR)[0]


def test_onnx_output_equals_numpy_forward_pass(layers, model_bytes):
    batch = np.stack([preprocessed(name) for name in ("bagel.jpg", "camel.jpeg", "cat.jpeg")])
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])

    onnx_out = session.run(None, {"data": batch})[0]
    reference = np.stack([reference_forward(image, layers) for image in batch])

    assert onnx_out.shape == (3, 1000)
    assert np.abs(onnx_out - reference).max() < 1e-4
    assert (onnx_out.argmax(1) == reference.argmax(1)).all()


def test_model_is_valid_with_named_dynamic_batch_io(model_bytes):
    model = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(model, full_check=True)

    (data,) = model.graph.input
    (output,) = model.graph.output
    assert data.name == "data" and output.name == "probabilities"
    assert [d.dim_param or d.dim_value for d in data.type.tensor_type.shape.dim] == [
        "N",
        3,
        227,
        227,
    ]
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == ["N", 1000]
    assert data.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [(prop.key, prop.value) for prop in model.metadata_props] == [("a", "1"), ("b", "2")]
    assert sum(np.prod(init.dims) for init in model.graph.initializer) == 1_248_424


def test_build_is_byte_for_byte_deterministic(model_bytes):
    again = build_model(
        decode_file(asset("compressed_SqueezeNet.net")), metadata={"a": "1", "b": "2"}
    )
    assert serialize(again) == model_bytes
