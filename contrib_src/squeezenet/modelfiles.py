"""Where each model variant lives, and whether a built file still matches its inputs.

Variants (fp32 by default; others such as an int8 or a compact build) sit side by side in
`model/`: fp32 is `model.onnx`, the name ModelHub's tools and viewer expect, and any other
variant is `model_<variant>.onnx`. A built file records in its ONNX metadata the SHA-256 of
the weights it came from and of the builder code that made it; the init step rebuilds only
when either differs, which keeps `make install` idempotent and quick.

The package reads its own settings (the variant) and checks its own weights, so it runs on
any ModelHub engine: it imports nothing of the engine's beyond modelhublib's base classes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)
MODEL_DIR = os.path.join(PACKAGE_DIR, "model")
WEIGHTS_PATH = os.path.join(PACKAGE_DIR, "weights", "compressed_SqueezeNet.net")
# The authors' Deep-Compression release; init/init.json pins the same digest (a test keeps
# the two equal), this copy is for a package that was fetched without the init step.
WEIGHTS_SHA256 = "e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261"
DEFAULT_VARIANT = "fp32"
VARIANTS = (DEFAULT_VARIANT, "compact", "int8")
VARIANT_VARIABLE = "MODELHUB_VARIANT"


def check_variant(variant: str) -> str:
    """`variant` if this package has it; else a ValueError that lists the ones it has."""
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown model variant {variant!r}: choose one of {', '.join(VARIANTS)} "
            f"({VARIANT_VARIABLE}, or `modelhub init --variant NAME` to build one)."
        )
    return variant


def requested_variant() -> str:
    """The variant MODELHUB_VARIANT names (fp32 when unset), checked."""
    return check_variant(os.environ.get(VARIANT_VARIABLE, "").strip() or DEFAULT_VARIANT)


def model_filename(variant: str = DEFAULT_VARIANT) -> str:
    """model.onnx for fp32, model_<variant>.onnx for the others."""
    check_variant(variant)
    return "model.onnx" if variant == DEFAULT_VARIANT else f"model_{variant}.onnx"


def model_path(variant: str = DEFAULT_VARIANT, model_dir: str = MODEL_DIR) -> str:
    return os.path.join(model_dir, model_filename(variant))


def missing_model(variant: str) -> FileNotFoundError:
    """The error for a variant whose file was not built and cannot be built here."""
    return FileNotFoundError(
        f"Model file model/{model_filename(variant)} for variant {variant!r} is missing: "
        f"run `modelhub init --variant {variant}` to build it."
    )


def file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_weights(path: str = WEIGHTS_PATH) -> str:
    """`path`, once its SHA-256 is the published weights'; a clear error otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The weights file weights/{os.path.basename(path)} is missing: fetch the package's "
            "external files (init/init.json) first."
        )
    if file_sha256(path) != WEIGHTS_SHA256:
        raise ValueError(
            f"The weights file weights/{os.path.basename(path)} is not the published one "
            f"(SHA-256 differs from {WEIGHTS_SHA256}): fetch it again."
        )
    return path


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it: readers see the old file or
    the whole new one, never a part."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def source_sha256(paths: Iterable[str]) -> str:
    """One digest of the builder's source files: any change to them forces a rebuild, and
    nobody has to remember to bump a version number."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def build_stamp(weights_path: str, builder_modules: Iterable[ModuleType]) -> dict[str, str]:
    """Metadata identifying a build: the weights' SHA-256 and a digest of the builder sources."""
    return {
        "squeezenet.weights_sha256": file_sha256(weights_path),
        "squeezenet.builder_sha256": source_sha256(module.__file__ for module in builder_modules),
    }


def is_up_to_date(path: str, stamp: Mapping[str, str]) -> bool:
    """True when `path` is a readable ONNX file whose metadata holds every entry of `stamp`."""
    import onnx  # build-time dependency only; inference never calls this
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(path)
    except (OSError, DecodeError):
        return False
    recorded = {prop.key: prop.value for prop in model.metadata_props}
    return all(recorded.get(key) == value for key, value in stamp.items())


def write_model(path: str, model: onnx.ModelProto, started: float) -> None:
    """Serialize `model` deterministically to `path` (atomically) and report the build,
    timed from `started` (a time.perf_counter() value), on stderr."""
    from . import graph

    data = graph.serialize(model)
    write_atomically(path, data)
    print(
        f"built model/{os.path.basename(path)} ({len(data) / 1e6:.2f} MB) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
