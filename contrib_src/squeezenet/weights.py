"""Decoder of the Deep-Compression weight file published with the SqueezeNet paper.

Format (little-endian; see SQUEEZENET.md): 26 uint32 counts `n` of stored weights, then per
convolution a 256-entry float32 codebook (entry 0 is 0.0), C_out float32 biases, `n` uint8
codebook indices and ceil(n/2) bytes of 4-bit gaps (low nibble first). The k-th stored weight
sits at flat position sum_{j<=k}(gap_j + 1) - 1 of the (C_out, C_in, kH, kW) tensor.

The file carries no shapes, names or checksum of its own, so a damaged file would otherwise
decode into a silently wrong network. Every structural fact that can be checked is checked,
and anything off is a ValueError that says which layer and what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from squeezenet.architecture import CONV_SPECS, ConvSpec

CODEBOOK_SIZE = 256
_HEADER_BYTES = 4 * len(CONV_SPECS)


@dataclass(frozen=True)
class CompressedLayer:
    """One convolution as stored: dense uint8 codebook indices (0 = pruned) plus codebook.

    Keeping the indices rather than only the float weights lets a graph variant store the
    layer the paper's way (uint8 indices + codebook) without decoding the file again.
    """

    spec: ConvSpec
    codebook: np.ndarray  # (256,) float32, codebook[0] == 0.0
    indices: np.ndarray  # uint8, spec.weight_shape
    bias: np.ndarray  # (C_out,) float32
    stored: int  # entries in the file for this layer, filler entries included

    @property
    def weight(self) -> np.ndarray:
        """The float32 weight tensor (C_out, C_in, kH, kW)."""
        return self.codebook[self.indices]


def _read(data: bytes, offset: int, dtype: str, count: int) -> np.ndarray:
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset)


def _decode_layer(data: bytes, offset: int, spec: ConvSpec, stored: int) -> CompressedLayer:
    gap_bytes = (stored + 1) // 2
    needed = 4 * CODEBOOK_SIZE + 4 * spec.out_channels + stored + gap_bytes
    if offset + needed > len(data):
        raise ValueError(
            f"truncated: layer {spec.name} needs {needed} bytes at offset {offset}, "
            f"only {len(data) - offset} left"
        )
    codebook = _read(data, offset, "<f4", CODEBOOK_SIZE).astype(np.float32)
    offset += 4 * CODEBOOK_SIZE
    bias = _read(data, offset, "<f4", spec.out_channels).astype(np.float32)
    offset += 4 * spec.out_channels
    codes = _read(data, offset, "u1", stored)
    offset += stored
    packed = _read(data, offset, "u1", gap_bytes)

    if not (np.isfinite(codebook).all() and np.isfinite(bias).all()):
        raise ValueError(f"layer {spec.name}: codebook or bias holds NaN or infinity")
    if codebook[0] != 0.0:
        raise ValueError(f"layer {spec.name}: codebook entry 0 is {codebook[0]}, not 0.0")

    gaps = np.empty(2 * gap_bytes, dtype=np.int64)
    gaps[0::2] = packed & 0x0F
    gaps[1::2] = packed >> 4
    positions = np.cumsum(gaps[:stored] + 1) - 1
    if stored and positions[-1] >= spec.weight_count:
        raise ValueError(
            f"layer {spec.name}: stored weights run past the end of the layer "
            f"(position {positions[-1]} of {spec.weight_count})"
        )
    indices = np.zeros(spec.weight_count, dtype=np.uint8)
    indices[positions] = codes
    return CompressedLayer(spec, codebook, indices.reshape(spec.weight_shape), bias, stored)


def decode(data: bytes) -> list[CompressedLayer]:
    """Decode the whole file (bytes) into the 26 layers of CONV_SPECS, in network order."""
    if len(data) < _HEADER_BYTES:
        raise ValueError(f"truncated: {len(data)} bytes, the header alone has {_HEADER_BYTES}")
    counts = _read(data, 0, "<u4", len(CONV_SPECS))
    layers = []
    offset = _HEADER_BYTES
    for spec, stored in zip(CONV_SPECS, counts.tolist(), strict=True):
        if stored > spec.weight_count:
            raise ValueError(
                f"layer {spec.name}: header says {stored} stored weights, "
                f"the layer has only {spec.weight_count}"
            )
        layer = _decode_layer(data, offset, spec, stored)
        offset += 4 * CODEBOOK_SIZE + 4 * spec.out_channels + stored + (stored + 1) // 2
        layers.append(layer)
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} unexpected bytes after the last layer")
    return layers


def decode_file(path: str | os.PathLike[str]) -> list[CompressedLayer]:
    """Decode a weight file; errors name the file."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return decode(data)
    except ValueError as error:
        raise ValueError(f"{os.path.basename(path)}: {error}") from None
