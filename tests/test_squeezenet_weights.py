"""The Deep-Compression decoder: the paper's counts, the format's details, damaged files refused."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from squeezenet_support import asset

from squeezenet.architecture import CONV_SPECS
from squeezenet.weights import decode, decode_file


@pytest.fixture(scope="module")
def weights_bytes() -> bytes:
    with open(asset("compressed_SqueezeNet.net"), "rb") as handle:
        return handle.read()


def encode(layers: list[tuple[np.ndarray, np.ndarray, list[int], list[int]]]) -> bytes:
    """A file in the Deep-Compression format from (codebook, bias, codes, gaps) per layer."""
    header = struct.pack(f"<{len(layers)}I", *(len(codes) for _, _, codes, _ in layers))
    body = b""
    for codebook, bias, codes, gaps in layers:
        padded = [*gaps, 0] if len(gaps) % 2 else list(gaps)
        pairs = zip(padded[0::2], padded[1::2], strict=True)
        nibbles = bytes(low | (high << 4) for low, high in pairs)
        body += codebook.astype("<f4").tobytes() + bias.astype("<f4").tobytes()
        body += bytes(codes) + nibbles
    return header + body


def synthetic_layers(first_codes=(3, 0, 5), first_gaps=(2, 15, 0)):
    """All 26 layers empty except conv1, with the given codes and gaps."""
    layers = []
    for spec in CONV_SPECS:
        codebook = np.arange(256, dtype=np.float32) / 256
        bias = np.full(spec.out_channels, 0.5, dtype=np.float32)
        layers.append((codebook, bias, [], []))
    codebook, bias, _, _ = layers[0]
    layers[0] = (codebook, bias, list(first_codes), list(first_gaps))
    return layers


def test_the_published_file_holds_the_papers_network(weights_bytes):
    layers = decode(weights_bytes)

    assert [layer.spec.name for layer in layers] == [spec.name for spec in CONV_SPECS]
    assert len(layers) == 26
    assert sum(layer.weight.size + layer.bias.size for layer in layers) == 1_248_424
    assert sum(layer.stored for layer in layers) == 422_083
    for layer in layers:
        assert layer.weight.shape == layer.spec.weight_shape
        assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
        assert layer.codebook[0] == 0.0
        # Fillers (code 0) bridge long gaps, so at most `stored` weights are non-zero.
        assert 0 < np.count_nonzero(layer.indices) <= layer.stored
    assert layers[0].spec.weight_shape == (96, 3, 7, 7)
    assert layers[-1].spec.weight_shape == (1000, 512, 1, 1)


def test_gaps_are_low_nibble_first_and_code_zero_is_a_filler():
    layers = decode(encode(synthetic_layers(first_codes=(3, 0, 5), first_gaps=(2, 15, 0))))
    conv1 = layers[0].weight.reshape(-1)

    # positions: cumsum(gap + 1) - 1 = 2, 18, 19; the filler at 18 stays zero.
    assert np.flatnonzero(conv1).tolist() == [2, 19]
    assert conv1[2] == np.float32(3 / 256) and conv1[19] == np.float32(5 / 256)
    assert np.all(layers[0].bias == 0.5)
    assert all(not layer.weight.any() for layer in layers[1:])


@pytest.mark.parametrize("keep", [0, 50, 104, 104 + 1000, 300_000, -1])
def test_truncated_file_is_refused(weights_bytes, keep):
    with pytest.raises(ValueError, match="truncated"):
        decode(weights_bytes[:keep])


def test_extra_bytes_are_refused(weights_bytes):
    with pytest.raises(ValueError, match="1 unexpected bytes after the last layer"):
        decode(weights_bytes + b"\0")


def test_count_larger_than_the_layer_is_refused(weights_bytes):
    corrupt = struct.pack("<I", 10**6) + weights_bytes[4:]
    with pytest.raises(ValueError, match="conv1: header says 1000000 stored weights"):
        decode(corrupt)


def test_weights_running_past_the_layer_are_refused():
    size = CONV_SPECS[0].weight_count  # 14112 positions; 1000 gaps of 15 reach 16000
    with pytest.raises(ValueError, match="conv1: stored weights run past the end"):
        decode(encode(synthetic_layers(first_codes=[1] * 1000, first_gaps=[15] * 1000)))
    assert size < 1000 * 16


def test_codebook_without_zero_entry_is_refused():
    layers = synthetic_layers()
    codebook, bias, codes, gaps = layers[3]
    layers[3] = (codebook + 1.0, bias, codes, gaps)
    with pytest.raises(ValueError, match=r"fire2/conv3x3_2: codebook entry 0 is 1\.0"):
        decode(encode(layers))


def test_nan_in_bias_is_refused():
    layers = synthetic_layers()
    codebook, bias, codes, gaps = layers[5]
    bias = bias.copy()
    bias[7] = np.nan
    layers[5] = (codebook, bias, codes, gaps)
    with pytest.raises(ValueError, match="NaN or infinity"):
        decode(encode(layers))


def test_errors_name_the_file(tmp_path, weights_bytes):
    damaged = tmp_path / "compressed_SqueezeNet.net"
    damaged.write_bytes(weights_bytes[:-10])
    with pytest.raises(ValueError, match=r"^compressed_SqueezeNet\.net: truncated"):
        decode_file(damaged)
