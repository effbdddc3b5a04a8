"""Image converters: each turns one kind of image object into ModelHub's 4-D float array."""

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from modelhublib.imageconverters import (
    DEFAULT_CHAIN,
    ImageConverter,
    NumpyToNumpyConverter,
    PilToNumpyConverter,
    SitkToNumpyConverter,
)


class Doubler(ImageConverter):
    """A contributor-style converter: handles ints only."""

    def _convert(self, image):
        if not isinstance(image, int):
            raise OSError("not an int")
        return np.array([image * 2])


def test_base_convert_is_abstract():
    with pytest.raises(NotImplementedError):
        ImageConverter(None)._convert(None)


def test_last_converter_failing_names_the_type():
    with pytest.raises(OSError, match=r'^Could not convert image of type "str" to Numpy array\.$'):
        Doubler().convert("not an int")


def test_failure_is_handed_to_the_successor():
    first = PilToNumpyConverter(successor=Doubler())
    assert first.convert(21).tolist() == [42]


def test_set_successor_links_the_chain():
    first = Doubler()
    first.setSuccessor(NumpyToNumpyConverter())
    array = np.zeros((2, 2))
    assert first.convert(array) is array


@pytest.mark.parametrize(
    ("mode", "bands"), [("L", 1), ("1", 1), ("I;16", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)]
)
def test_pil_image_becomes_float32_batch_bands_height_width(mode, bands):
    array = PilToNumpyConverter().convert(Image.new(mode, (64, 32)))
    assert array.shape == (1, bands, 32, 64)
    assert array.dtype == np.float32


def test_pil_values_are_kept_and_bands_move_first():
    ramp = Image.fromarray(np.tile(np.array([50, 100, 150, 200], dtype=np.uint8), (2, 1)))
    assert PilToNumpyConverter().convert(ramp).tolist() == [[[[50, 100, 150, 200]] * 2]]

    colour = PilToNumpyConverter().convert(Image.new("RGB", (3, 2), (10, 20, 30)))
    assert colour[0, :, 1, 2].tolist() == [10, 20, 30]


def test_numpy_array_passes_through_unchanged():
    array = np.asarray([[1, 2, 3, 4], [2, 0, 0, 0], [1, 2, 3, 4]])
    assert NumpyToNumpyConverter().convert(array) is array


@pytest.mark.parametrize(("size", "shape"), [([4, 2], (1, 1, 2, 4)), ([4, 2, 3], (1, 3, 2, 4))])
def test_sitk_image_becomes_float32_batch_depth_height_width(size, shape):
    array = SitkToNumpyConverter().convert(sitk.Image(size, sitk.sitkInt8))
    assert array.shape == shape
    assert array.dtype == np.float32


def test_sitk_voxels_keep_their_place():
    image = sitk.Image([4, 2, 3], sitk.sitkInt16)
    image.SetPixel([3, 1, 2], 7)
    array = SitkToNumpyConverter().convert(image)
    assert array[0, 2, 1, 3] == 7
    assert array.sum() == 7


@pytest.mark.parametrize(
    ("converter", "wrong_input", "type_name"),
    [
        (PilToNumpyConverter, np.array([[1, 2], [3, 4]]), "ndarray"),
        (SitkToNumpyConverter, np.array([[1, 2], [3, 4]]), "ndarray"),
        (NumpyToNumpyConverter, Image.new("RGB", (64, 32)), "Image"),
    ],
)
def test_each_converter_refuses_other_types(converter, wrong_input, type_name):
    with pytest.raises(OSError, match=f'^Could not convert image of type "{type_name}"'):
        converter().convert(wrong_input)


def test_default_chain_is_pil_then_sitk_then_numpy():
    assert (PilToNumpyConverter, SitkToNumpyConverter, NumpyToNumpyConverter) == DEFAULT_CHAIN


def test_pil_image_that_cannot_be_decoded_is_refused_and_closed(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    image = Image.open(tmp_path / "half.png")
    with pytest.raises(OSError, match=r'^Could not convert image of type "PngImageFile"'):
        PilToNumpyConverter().convert(image)
    with pytest.raises(ValueError, match="closed image"):
        image.load()
