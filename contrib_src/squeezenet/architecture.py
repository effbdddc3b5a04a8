"""The SqueezeNet 1.0 topology as plain data, shared by the weight decoder and the graph builder.

Both must agree on the order and shape of the 26 convolutions: the compressed weight file
stores them in exactly this order and has no shape information of its own, so the shapes
below are what turns its byte stream into tensors. Names are those of the authors' Caffe
definition (SqueezeNet_deploy.prototxt) so a decoded layer can be traced back to it.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_CHANNELS = 3
INPUT_SIZE = 227
NUM_CLASSES = 1000

# (index, squeeze filters, filters of each expand branch); expands are 1x1 and 3x3 (padding 1).
FIRE_MODULES: tuple[tuple[int, int, int], ...] = (
    (2, 16, 64),
    (3, 16, 64),
    (4, 32, 128),
    (5, 32, 128),
    (6, 48, 192),
    (7, 48, 192),
    (8, 64, 256),
    (9, 64, 256),
)
# A 3x3/2 max-pool (Caffe rounds its output size up) follows these stages.
POOL_AFTER: frozenset[str] = frozenset({"conv1", "fire4", "fire8"})


@dataclass(frozen=True)
class ConvSpec:
    """One convolution (all have a bias and are followed by a ReLU)."""

    name: str
    out_channels: int
    in_channels: int
    kernel: int
    stride: int = 1
    pad: int = 0

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """(C_out, C_in, kH, kW): the order the compressed file walks the weights in."""
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    @property
    def weight_count(self) -> int:
        return self.out_channels * self.in_channels * self.kernel * self.kernel


def squeeze_name(fire: int) -> str:
    return f"fire{fire}/conv1x1_1"


def expand1x1_name(fire: int) -> str:
    return f"fire{fire}/conv1x1_2"


def expand3x3_name(fire: int) -> str:
    return f"fire{fire}/conv3x3_2"


def _conv_specs() -> tuple[ConvSpec, ...]:
    specs = [ConvSpec("conv1", 96, INPUT_CHANNELS, kernel=7, stride=2)]
    channels = 96
    for fire, squeeze, expand in FIRE_MODULES:
        specs += [
            ConvSpec(squeeze_name(fire), squeeze, channels, kernel=1),
            ConvSpec(expand1x1_name(fire), expand, squeeze, kernel=1),
            ConvSpec(expand3x3_name(fire), expand, squeeze, kernel=3, pad=1),
        ]
        channels = 2 * expand
    # conv_final really has padding 1 on a 1x1 kernel: the 13x13 map becomes 15x15 and the
    # global average includes the border (ReLU of the bias). The weights were trained so.
    specs.append(ConvSpec("conv_final", NUM_CLASSES, channels, kernel=1, pad=1))
    return tuple(specs)


CONV_SPECS: tuple[ConvSpec, ...] = _conv_specs()
