"""Build hook of the init step: derive model/model.onnx (and, when asked, the compact and
int8 variants, see squeezenet.variants) from the published compressed weights.

`python -m modelhubapi init` runs `main()` once the external files are verified (see
modelhubapi.externalfiles). The ONNX file is generated rather than downloaded because the
paper's weights exist only in the authors' Deep-Compression format; building it here keeps
the provenance checkable end to end (checksummed weights in, deterministic bytes out).

Idempotent and fast when nothing changed: the file records the SHA-256 of the weights and of
the builder code in its metadata, and is rebuilt only when either differs.

The fp32 model is always built (ModelHub's tools expect model.onnx, and int8 is quantised from
it); another variant only when MODELHUB_VARIANT names it (`modelhub init --variant NAME` sets
it), as quantising int8 takes far longer than everything else the init step does.

`model_bytes` builds the same bytes in memory: a package fetched without the init step (as
ModelHub's start script fetches it: the tracked files and the external files, nothing built)
still serves, from a read-only folder, in about 0.2 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import onnx

from squeezenet import architecture, graph, weights
from squeezenet.modelfiles import (
    DEFAULT_VARIANT,
    MODEL_DIR,
    WEIGHTS_PATH,
    build_stamp,
    check_variant,
    check_weights,
    is_up_to_date,
    missing_model,
    model_path,
    requested_variant,
    write_model,
)
from squeezenet.variants import build_compact_model, build_variants


def fp32_model(weights_path: str = WEIGHTS_PATH) -> onnx.ModelProto:
    """The fp32 model from the weights at `weights_path`, checked with onnx.checker."""
    stamp = build_stamp(weights_path, (architecture, weights, graph))
    model = graph.build_model(weights.decode_file(weights_path), metadata=stamp)
    onnx.checker.check_model(model, full_check=True)
    return model


# The variants quick enough to build each time a model loads without its file.
_IN_MEMORY_BUILDS = {
    "fp32": fp32_model,
    "compact": lambda path: build_compact_model(weights.decode_file(path)),
}


def model_bytes(variant: str) -> bytes:
    """The serialized model of `variant` (fp32 or compact), built from the checked weights:
    the same bytes the init step writes to its file."""
    if variant not in _IN_MEMORY_BUILDS:
        raise missing_model(variant)
    return graph.serialize(_IN_MEMORY_BUILDS[variant](check_weights()))


def build_fp32(weights_path: str = WEIGHTS_PATH, output_path: str | None = None) -> bool:
    """Build the fp32 model unless it is up to date; True if it was (re)built."""
    output_path = output_path or model_path("fp32")
    stamp = build_stamp(weights_path, (architecture, weights, graph))
    if is_up_to_date(output_path, stamp):
        return False
    started = time.perf_counter()
    write_model(output_path, fp32_model(weights_path), started)
    return True


def main(variants: Iterable[str] | None = None) -> None:
    """Build fp32 and the `variants` (by default the one MODELHUB_VARIANT names), each only
    when it is not up to date."""
    others = {check_variant(name) for name in variants or [requested_variant()]}
    others.discard(DEFAULT_VARIANT)
    build_fp32()
    if others:
        build_variants(MODEL_DIR, weights.decode_file(WEIGHTS_PATH), others)


if __name__ == "__main__":
    main()
