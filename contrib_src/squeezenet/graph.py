"""The SqueezeNet 1.0 ONNX graph (fp32), built with the `onnx` helpers from decoded layers.

The graph follows the authors' Caffe definition node for node: conv1 7x7/2, max-pools 3x3/2
with Caffe's ceil rounding, eight fire modules (squeeze 1x1, expand 1x1 and 3x3 concatenated
1x1 first), conv_final 1x1 with padding 1, ReLU after every convolution, global average pool
and a softmax so the output is directly the class probabilities. The batch dimension is
dynamic ("N"); the spatial size is the trained 227x227.

Variants (e.g. a compact one storing uint8 codebook indices + a Gather) reuse this topology by
passing their own `weights` factory to `build_model`; everything else stays as is.
The output bytes depend only on the layers and metadata passed in: fixed producer, no
timestamps, initializers in network order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import onnx
from onnx import TensorProto, helper, numpy_helper

from squeezenet.architecture import (
    FIRE_MODULES,
    INPUT_CHANNELS,
    INPUT_SIZE,
    NUM_CLASSES,
    POOL_AFTER,
    expand1x1_name,
    expand3x3_name,
    squeeze_name,
)
from squeezenet.weights import CompressedLayer

INPUT_NAME = "data"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "N"
OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; pinned so bytes do not follow onnx
PRODUCER_NAME = "modelhub-squeezenet"
PRODUCER_VERSION = "1.0"

# A weights factory returns the nodes that compute a layer's weight tensor (none for a plain
# initializer), the initializers they need, and the name of the resulting weight tensor.
WeightsFactory = Callable[[CompressedLayer], tuple[list[onnx.NodeProto], list[TensorProto], str]]


def float_weights(layer: CompressedLayer) -> tuple[list[onnx.NodeProto], list[TensorProto], str]:
    """Plain float32 weight initializer, the fastest form for ONNX Runtime."""
    name = f"{layer.spec.name}/weight"
    return [], [numpy_helper.from_array(layer.weight, name)], name


class _GraphBuilder:
    """Collects nodes and initializers in network order."""

    def __init__(self, layers: Sequence[CompressedLayer], weights: WeightsFactory):
        self.layers = {layer.spec.name: layer for layer in layers}
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def conv_relu(self, name: str, source: str) -> str:
        layer = self.layers[name]
        spec = layer.spec
        weight_nodes, weight_inits, weight = self.weights(layer)
        bias = f"{name}/bias"
        self.nodes += weight_nodes
        self.initializers += [*weight_inits, numpy_helper.from_array(layer.bias, bias)]
        self.nodes.append(
            helper.make_node(
                "Conv",
                [source, weight, bias],
                [name],
                name=name,
                kernel_shape=[spec.kernel, spec.kernel],
                strides=[spec.stride, spec.stride],
                pads=[spec.pad] * 4,
            )
        )
        self.nodes.append(helper.make_node("Relu", [name], [f"{name}/relu"], name=f"{name}/relu"))
        return f"{name}/relu"

    def max_pool(self, name: str, source: str) -> str:
        self.nodes.append(
            helper.make_node(
                "MaxPool",
                [source],
                [name],
                name=name,
                kernel_shape=[3, 3],
                strides=[2, 2],
                ceil_mode=1,
            )
        )
        return name

    def fire(self, index: int, source: str) -> str:
        squeezed = self.conv_relu(squeeze_name(index), source)
        left = self.conv_relu(expand1x1_name(index), squeezed)
        right = self.conv_relu(expand3x3_name(index), squeezed)
        name = f"fire{index}/concat"
        self.nodes.append(helper.make_node("Concat", [left, right], [name], name=name, axis=1))
        return name

    def head(self, source: str) -> str:
        features = self.conv_relu("conv_final", source)
        self.nodes += [
            helper.make_node("GlobalAveragePool", [features], ["pool_final"], name="pool_final"),
            helper.make_node("Flatten", ["pool_final"], ["scores"], name="flatten", axis=1),
            helper.make_node("Softmax", ["scores"], [OUTPUT_NAME], name="softmax", axis=1),
        ]
        return OUTPUT_NAME


def build_model(
    layers: Sequence[CompressedLayer],
    *,
    weights: WeightsFactory = float_weights,
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """The SqueezeNet 1.0 model: input `data` [N,3,227,227] float32 (BGR, mean subtracted),
    output `probabilities` [N,1000] float32. `metadata` goes to metadata_props, sorted."""
    builder = _GraphBuilder(layers, weights)
    tensor = builder.conv_relu("conv1", INPUT_NAME)
    tensor = builder.max_pool("pool1", tensor)
    for index, _, _ in FIRE_MODULES:
        tensor = builder.fire(index, tensor)
        if f"fire{index}" in POOL_AFTER:
            tensor = builder.max_pool(f"pool{index}", tensor)
    output = builder.head(tensor)

    graph = helper.make_graph(
        builder.nodes,
        "squeezenet1.0",
        [
            helper.make_tensor_value_info(
                INPUT_NAME,
                TensorProto.FLOAT,
                [BATCH_DIM, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE],
            )
        ],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [BATCH_DIM, NUM_CLASSES])],
        initializer=builder.initializers,
        doc_string="SqueezeNet 1.0 (Iandola et al., arXiv:1602.07360) with the authors' "
        "Deep-Compression weights (github.com/songhan/SqueezeNet-Deep-Compression).",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
    )
    if metadata:
        helper.set_model_props(model, dict(sorted(metadata.items())))
    return model


def serialize(model: onnx.ModelProto) -> bytes:
    """Deterministic bytes of a model (protobuf's deterministic mode fixes map ordering)."""
    return model.SerializeToString(deterministic=True)
