"""The model variants built beside the fp32 model.onnx: `compact` (the paper's size) and `int8`.

- compact (model_compact.onnx, about 1.3 MB instead of 5 MB): every convolution's weights are
  stored as the Deep-Compression file has them, a dense uint8 tensor of codebook indices (0 =
  pruned) plus the layer's 256-entry float32 codebook; a Cast and a Gather rebuild the float
  weights. Both inputs are constants, so ONNX Runtime folds them once when the session is
  created: inference then runs on exactly the fp32 model's weights, at the fp32 model's speed.
- int8 (model_int8.onnx): ONNX Runtime static quantisation, QDQ format, int8 per-channel
  weights and uint8 activations, calibrated on the 16 bundled sample photos and deterministic
  synthetic crops, flips and rescalings of them (never on the ImageNet test images), each
  preprocessed by the package's own ImageProcessor so the calibration sees exactly what the
  model sees. INT8_RECIPE is the recipe that met the goals (see the engineer's report).

`build_variants` is the init step's hook (build.py calls it after the fp32 build). Like the fp32
build it is idempotent: each file records in its metadata the hashes of everything it was made
from, and is rebuilt only when one of them changed. Both builds give the same bytes from the
same inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageOps

from squeezenet import architecture, graph
from squeezenet.modelfiles import (
    file_sha256,
    is_up_to_date,
    model_path,
    source_sha256,
    write_model,
)
from squeezenet.weights import CompressedLayer

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_DIR = os.path.join(os.path.dirname(HERE), "sample_data")
CONFIG_PATH = os.path.join(os.path.dirname(HERE), "model", "config.json")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# --- compact: codebook indices + Gather --------------------------------------------------


def codebook_weights(
    layer: CompressedLayer,
) -> tuple[list[onnx.NodeProto], list[TensorProto], str]:
    """A graph.WeightsFactory storing a layer as uint8 indices + its 256-entry codebook.

    ONNX's Gather takes int32/int64 indices only, so a Cast widens the uint8 codes first; the
    indices keep the conv weight's 4-D shape, so Gather's output is already that shape and no
    Reshape is needed.
    """
    name = layer.spec.name
    codes, codebook, wide, weight = (
        f"{name}/codes",
        f"{name}/codebook",
        f"{name}/codes_int32",
        f"{name}/weight",
    )
    nodes = [
        helper.make_node("Cast", [codes], [wide], name=f"{name}/cast", to=TensorProto.INT32),
        helper.make_node("Gather", [codebook, wide], [weight], name=f"{name}/gather", axis=0),
    ]
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(layer.indices, dtype=np.uint8), codes),
        numpy_helper.from_array(np.ascontiguousarray(layer.codebook, dtype=np.float32), codebook),
    ]
    return nodes, initializers, weight


def layers_sha256(layers: Sequence[CompressedLayer]) -> str:
    """Digest of the decoded layers (names, codebooks, indices, biases): compact's input."""
    digest = hashlib.sha256()
    for layer in layers:
        digest.update(layer.spec.name.encode())
        for array in (layer.codebook, layer.indices, layer.bias):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def compact_stamp(layers: Sequence[CompressedLayer]) -> dict[str, str]:
    modules = (architecture, graph, sys.modules[__name__])
    return {
        "squeezenet.variant": "compact",
        "squeezenet.layers_sha256": layers_sha256(layers),
        "squeezenet.builder_sha256": source_sha256([module.__file__ for module in modules]),
    }


def build_compact_model(layers: Sequence[CompressedLayer]) -> onnx.ModelProto:
    """The compact model, checked with onnx.checker (metadata: its build stamp)."""
    model = graph.build_model(layers, weights=codebook_weights, metadata=compact_stamp(layers))
    onnx.checker.check_model(model, full_check=True)
    return model


# --- int8: calibration data ----------------------------------------------------------------


def sample_images(sample_dir: str = SAMPLE_DIR) -> list[str]:
    """The bundled sample photos, sorted by name (the calibration set's originals)."""
    return sorted(
        os.path.join(sample_dir, name)
        for name in os.listdir(sample_dir)
        if name.lower().endswith(_IMAGE_SUFFIXES)
    )


def _augmentations(
    image: Image.Image, count: int, rng: np.random.Generator
) -> Iterator[Image.Image]:
    """The photo itself, its mirror image, then random crops (8-100 % of the area, aspect
    3:4-4:3), each possibly mirrored and possibly shrunk to 35-100 % first, as a camera or
    web image of the same scene might arrive. Only geometry and resolution change: the
    colour statistics stay those of real photos."""
    yield image
    yield ImageOps.mirror(image)
    width, height = image.size
    for _ in range(count - 2):
        area = rng.uniform(0.08, 1.0) * width * height
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        crop_w = int(min(width, max(32, round(np.sqrt(area * aspect)))))
        crop_h = int(min(height, max(32, round(np.sqrt(area / aspect)))))
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        crop = image.crop((left, top, left + crop_w, top + crop_h))
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        if rng.random() < 0.5:
            scale = rng.uniform(0.35, 1.0)
            smaller = (max(32, round(crop_w * scale)), max(32, round(crop_h * scale)))
            crop = crop.resize(smaller, Image.Resampling.BILINEAR)
        yield crop


def calibration_tensors(
    per_image: int, sample_dir: str = SAMPLE_DIR, seed: int = 0
) -> list[np.ndarray]:
    """`per_image` preprocessed [1,3,227,227] tensors per sample photo, deterministic for a seed.

    Each augmented picture goes through the package's ImageProcessor steps after loading
    (warp, crop, BGR, mean), so calibration sees the model's real input distribution.
    """
    from processing import ImageProcessor  # the package's module; contrib_src is on the path

    with open(CONFIG_PATH, encoding="utf-8") as handle:
        processor = ImageProcessor(json.load(handle))
    rng = np.random.default_rng(seed)
    tensors = []
    for path in sample_images(sample_dir):
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        for picture in _augmentations(image, per_image, rng):
            prepared = processor._preprocessBeforeConversionToNumpy(picture)
            array = processor._convertToNumpy(prepared)
            tensors.append(processor._preprocessAfterConversionToNumpy(array))
    return tensors


class _TensorReader:
    """onnxruntime.quantization.CalibrationDataReader over a list of input tensors."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray]):
        self._input_name = input_name
        self._tensors = tensors
        self._next, self._end = 0, len(tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        self._next += 1
        return {self._input_name: self._tensors[self._next - 1]}

    def __len__(self) -> int:
        return len(self._tensors)

    def set_range(self, start_index: int, end_index: int) -> None:
        """The quantizer calibrates in slices (CalibStridedMinMax) to bound its memory."""
        self._next, self._end = start_index, min(end_index, len(self._tensors))


# --- int8: quantisation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Int8Recipe:
    """Everything that decides the int8 model besides the fp32 model and the sample photos."""

    calibrate_method: str = "MinMax"  # MinMax, Entropy or Percentile
    percentile: float = 99.999  # Percentile only
    per_image: int = 12  # calibration tensors per sample photo (16 photos x 12 = 192)
    seed: int = 0
    exclude_nodes: tuple[str, ...] = ()  # conv names kept in float
    activation_symmetric: bool = False
    reduce_range: bool = False
    shared_concat_ranges: bool = True  # see shared_concat_ranges()

    def describe(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


# Chosen by measurement (100 ImageNet test images, fp32 top-1/top-5 0.64/0.83): MinMax on 192
# tensors gave 0.64/0.84 and the same top-1 as fp32 on 92 of 100 images; Entropy 0.66/0.85,
# Percentile (99.999) 0.65/0.85, within noise of it but 4-6x slower to build; 64 or 384
# tensors changed top-5 by at most 1 image. Keeping conv1 in float made it 2.2-2.7x slower
# (layout changes around it), conv_final 15-20 %; symmetric activations 30-45 %. Weights stay
# 8-bit (no reduce_range): this CPU has AVX-512 VNNI, which does not saturate.
# Sharing each concat's range with its inputs (shared_concat_ranges) made the model 7-9 %
# faster at 2 threads and gave 0.64/0.86: the smaller input loses a little resolution.
INT8_RECIPE = Int8Recipe()
# The quantizer calibrates in slices of this many tensors (extra tensors are left out).
_CALIBRATION_SLICE = 16


def _ort_calibration_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "MinMax": CalibrationMethod.MinMax,
        "Entropy": CalibrationMethod.Entropy,
        "Percentile": CalibrationMethod.Percentile,
    }[name]


def quantize_int8(
    fp32_path: str,
    tensors: Sequence[np.ndarray],
    recipe: Int8Recipe = INT8_RECIPE,
    calibration_cache: str | None = None,
) -> onnx.ModelProto:
    """Static QDQ quantisation of the fp32 model at `fp32_path`, calibrated on `tensors`.

    Weights are int8 per output channel (symmetric), activations uint8. The softmax (and the
    global average pool feeding it) stay in float: quantising probabilities to 256 levels
    would tie the low-ranked classes and scramble the top 5. `calibration_cache` (a JSON
    path) keeps the computed activation ranges so trying several recipes with the same
    calibration does not re-run it; an existing one is trusted to come from this model and
    these tensors.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    extra_options = {
        "ActivationSymmetric": recipe.activation_symmetric,
        "WeightSymmetric": True,
        # Calibrate 16 images at a time: the histogram calibrators keep every activation of
        # every image they are given (about 20 MB each) until they summarise them.
        "CalibStridedMinMax": _CALIBRATION_SLICE,
    }
    if recipe.calibrate_method == "Percentile":
        extra_options["CalibPercentile"] = recipe.percentile
    whole_slices = len(tensors) - len(tensors) % _CALIBRATION_SLICE
    if whole_slices == 0:
        raise ValueError(
            f"int8 calibration needs at least {_CALIBRATION_SLICE} tensors, got {len(tensors)}."
        )
    tensors = tensors[:whole_slices]  # the quantizer calibrates whole slices only
    input_name = onnx.load(fp32_path, load_external_data=False).graph.input[0].name
    # The quantizer advises (on the root logger) to run its pre-processing first: shape
    # inference and clean-ups this graph does not need, as it is built fully shaped.
    logging.getLogger().addFilter(_drop_preprocessing_advice)
    try:
        with tempfile.TemporaryDirectory(prefix="squeezenet-int8-") as scratch:
            output = os.path.join(scratch, "model_int8.onnx")
            cache = calibration_cache or os.path.join(scratch, "calibration.json")

            def quantize(overrides: dict) -> None:
                quantize_static(
                    fp32_path,
                    output,
                    _TensorReader(input_name, tensors),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv", "Relu", "MaxPool", "Concat"],
                    per_channel=True,
                    reduce_range=recipe.reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(recipe.exclude_nodes),
                    calibrate_method=_ort_calibration_method(recipe.calibrate_method),
                    extra_options={**extra_options, "TensorQuantOverrides": overrides},
                    calibration_cache_path=cache,
                )

            if not recipe.shared_concat_ranges:
                quantize({})
            else:  # the overrides need the calibrated ranges: calibrate first, unless cached
                if not os.path.isfile(cache):
                    quantize({})
                quantize(shared_concat_ranges(fp32_path, cache))
            return onnx.load(output)
    finally:
        logging.getLogger().removeFilter(_drop_preprocessing_advice)


def shared_concat_ranges(fp32_path: str, calibration_cache: str) -> dict[str, list[dict]]:
    """TensorQuantOverrides giving each Concat's inputs the range of its output (their union).

    With one scale and zero point on both sides, ONNX Runtime's QLinearConcat copies bytes
    instead of requantising each input through a lookup table: measured, the fire modules'
    concats took half the time and the whole model 7-9 % less at 2 threads. Only concats of
    ReLU outputs (every range starting at 0) are shared: the quantiser folds a ReLU into its
    output's range, and a range widened below 0 would let negatives through.
    """
    from onnxruntime.quantization.calibrate import load_tensors_data

    ranges = load_tensors_data(calibration_cache)
    overrides = {}
    for node in onnx.load(fp32_path, load_external_data=False).graph.node:
        if node.op_type != "Concat":
            continue
        names = [*node.input, *node.output]
        lows = [float(np.min(ranges[name].range_value[0])) for name in names]
        if any(low != 0.0 for low in lows):
            continue
        high = max(float(np.max(ranges[name].range_value[1])) for name in names)
        for name in names:
            overrides[name] = [{"rmin": np.float32(0.0), "rmax": np.float32(high)}]
    return overrides


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing" not in record.getMessage()


def int8_stamp(fp32_path: str, sample_dir: str, recipe: Int8Recipe) -> dict[str, str]:
    import processing  # the preprocessing the calibration tensors go through

    samples = hashlib.sha256()
    for path in sample_images(sample_dir):
        samples.update(os.path.basename(path).encode() + file_sha256(path).encode())
    return {
        "squeezenet.variant": "int8",
        "squeezenet.fp32_sha256": file_sha256(fp32_path),
        "squeezenet.calibration_sha256": samples.hexdigest(),
        "squeezenet.recipe": recipe.describe(),
        "squeezenet.builder_sha256": source_sha256([__file__, processing.__file__]),
    }


def build_int8_model(
    fp32_path: str, sample_dir: str = SAMPLE_DIR, recipe: Int8Recipe = INT8_RECIPE
) -> onnx.ModelProto:
    """The int8 model with its build stamp, checked with onnx.checker."""
    tensors = calibration_tensors(recipe.per_image, sample_dir, recipe.seed)
    model = quantize_int8(fp32_path, tensors, recipe)
    del model.metadata_props[:]
    helper.set_model_props(model, dict(sorted(int8_stamp(fp32_path, sample_dir, recipe).items())))
    onnx.checker.check_model(model, full_check=True)
    return model


# --- the init hook ---------------------------------------------------------------------------


def build_variants(
    model_dir: str,
    layers: Sequence[CompressedLayer],
    names: Collection[str] = ("compact", "int8"),
    sample_dir: str = SAMPLE_DIR,
) -> list[str]:
    """Build the variants `names` (compact, int8) in `model_dir`, each unless up to date.

    int8 needs the fp32 model.onnx in `model_dir` (it is quantised from it). Returns the paths
    that were (re)built.
    """
    built = []
    compact_path = model_path("compact", model_dir)
    if "compact" in names and not is_up_to_date(compact_path, compact_stamp(layers)):
        started = time.perf_counter()
        write_model(compact_path, build_compact_model(layers), started)
        built.append(compact_path)

    fp32_path = model_path("fp32", model_dir)
    int8_path = model_path("int8", model_dir)
    if "int8" in names and not is_up_to_date(
        int8_path, int8_stamp(fp32_path, sample_dir, INT8_RECIPE)
    ):
        started = time.perf_counter()
        write_model(int8_path, build_int8_model(fp32_path, sample_dir), started)
        built.append(int8_path)
    return built
