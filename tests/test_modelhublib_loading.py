"""Loading inputs: the loaders, their chain, `dim_limits` checks, and the processor built on them.

Test files are generated into a temporary folder (nothing binary is committed):
a 4x2 grey ramp 50..200 as PNG and NRRD, an RGB PNG, a 64x32 checkerboard NRRD,
a 3x4x4 `.npy`, a 91x109x91 NIfTI and a 256x256 single-slice DICOM.
"""

import importlib
import re
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from modelhublib.imageloaders import (
    DEFAULT_CHAIN,
    ImageLoader,
    NumpyImageLoader,
    PilImageLoader,
    SitkImageLoader,
)
from modelhublib.processor import ImageProcessorBase

RAMP = np.tile(np.array([50, 100, 150, 200], dtype=np.uint8), (2, 1))
RAMP_AS_MODEL_INPUT = [[[[50.0, 100.0, 150.0, 200.0], [50.0, 100.0, 150.0, 200.0]]]]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Path (str) of each test file by short name."""
    folder = tmp_path_factory.mktemp("modelhublib")
    paths = {}

    def path(name):
        paths[name] = str(folder / name)
        return folder / name

    Image.fromarray(RAMP).save(path("ramp.png"))
    sitk.WriteImage(sitk.GetImageFromArray(RAMP), path("ramp.nrrd"))
    Image.new("RGB", (5, 3), (10, 20, 30)).save(path("rgb.png"))
    checkers = (np.indices((32, 64)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(checkers), path("checkers.nrrd"))
    np.save(path("array.npy"), np.arange(48, dtype=np.float32).reshape(3, 4, 4))
    np.save(path("flat.npy"), np.zeros((4, 4)))
    np.save(path("pickled.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(path("archive.npz"), a=np.zeros(3), b=np.ones(3))
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((91, 109, 91), np.int16)), path("brain.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((256, 256), np.int16)), path("slice.dcm"))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path("noise.png"))
    png = path("noise.png").read_bytes()
    path("truncated.png").write_bytes(png[: len(png) // 2])
    path("notes.txt").write_text("not an image")
    return paths


@pytest.fixture
def config():
    """A single-input config with open limits (tests tighten them)."""
    return {"model": {"io": {"input": {"format": ["image/png"], "single": _open_input()}}}}


@pytest.fixture
def multi_config():
    """A multi-input config: "name" is open, "name2" accepts nothing, "single" is absent."""
    refuse_all = {"format": ["image/png"], "dim_limits": [{"max": 0}, {"max": 0}, {"max": 0}]}
    inputs = {"format": ["application/json"], "name": _open_input(), "name2": refuse_all}
    return {"model": {"io": {"input": inputs}}}


def _open_input():
    return {"format": ["image/png"], "dim_limits": [{}, {}, {}]}


def _limits(config, key="single"):
    return config["model"]["io"]["input"][key]["dim_limits"]


# --- ImageLoader: the chain of responsibility ---------------------------------------------


class Recorder(ImageLoader):
    """Loads nothing, but remembers what it was asked, to watch the chain at work."""

    def __init__(self, config):
        super().__init__(config)
        self.asked = []

    def _load(self, input):
        self.asked.append(input)
        raise ValueError("not mine")


class FixedDims(ImageLoader):
    """Loads anything as a stand-in image whose dimensions are numpy integers."""

    def _load(self, input):
        return input

    def _getImageDimensions(self, image):
        return np.array([1, 2, 4])


def test_base_loader_is_abstract():
    loader = ImageLoader(None)
    with pytest.raises(NotImplementedError):
        loader._load(None)
    with pytest.raises(NotImplementedError):
        loader._getImageDimensions(None)
    with pytest.raises(NotImplementedError):
        loader._checkConfigCompliance(None)


def test_last_loader_failing_names_the_file():
    with pytest.raises(OSError, match=r'^Was not able to load the file "nonexistent\.png"\.$'):
        ImageLoader(None).load("nonexistent.png")


def test_last_loader_failing_names_the_type_of_a_non_string():
    with pytest.raises(OSError, match=r'^Was not able to load input of type "NoneType"\.$'):
        ImageLoader(None).load(None)


def test_failure_is_handed_to_the_successor_with_the_input_id(files, multi_config):
    first, second = Recorder(multi_config), Recorder(multi_config)
    first.setSuccessor(second)
    second.setSuccessor(PilImageLoader(multi_config))
    with pytest.raises(OSError, match="do not comply"):
        first.load(files["ramp.png"], id="name2")
    assert first.asked == second.asked == [files["ramp.png"]]
    with first.load(files["ramp.png"], id="name") as image:
        assert image.size == (4, 2)


def test_successor_can_be_given_to_the_constructor(files, config):
    chain = ImageLoader(config, successor=NumpyImageLoader(config))
    assert chain.load(files["array.npy"]).shape == (3, 4, 4)


def test_refusal_message_shows_plain_integers(config):
    _limits(config)[2]["max"] = 3
    with pytest.raises(OSError) as refused:
        FixedDims(config).load("anything")
    assert str(refused.value) == "Image dimensions (1, 2, 4) do not comply with input requirements"


@pytest.mark.parametrize(
    ("axis", "bound", "value", "complies"),
    [
        (0, "min", 1, True),
        (0, "min", 2, False),
        (0, "max", 1, True),
        (1, "min", 3, False),
        (1, "max", 1, False),
        (2, "min", 4, True),
        (2, "max", 4, True),
        (2, "max", 3, False),
    ],
)
def test_each_bound_of_each_axis_is_checked(config, axis, bound, value, complies):
    _limits(config)[axis][bound] = value
    if complies:
        assert FixedDims(config).load("anything") == "anything"
    else:
        with pytest.raises(OSError, match="do not comply"):
            FixedDims(config).load("anything")


def test_fewer_limits_than_axes_check_only_those_given(config):
    _limits(config)[:] = [{"min": 1, "max": 1}]
    assert FixedDims(config).load("anything") == "anything"


def test_limits_beyond_the_third_axis_are_not_checked(config):
    # The schema documents a 4th entry for time series; ModelHub checks [c/z, h, w] only.
    _limits(config).append({"min": 5})
    assert FixedDims(config).load("anything") == "anything"


def test_config_written_before_multi_input_keeps_its_limits_under_input():
    flat = {"model": {"io": {"input": {"format": ["image/png"], "dim_limits": [{}, {"max": 1}]}}}}
    with pytest.raises(OSError, match="do not comply"):
        FixedDims(flat).load("anything")
    flat["model"]["io"]["input"]["dim_limits"][1]["max"] = 2
    assert FixedDims(flat).load("anything") == "anything"


# --- PilImageLoader -----------------------------------------------------------------------


def test_pil_loads_image_with_dims_bands_height_width(files, config):
    loader = PilImageLoader(config)
    with loader.load(files["ramp.png"]) as grey, loader.load(files["rgb.png"]) as colour:
        assert grey.size == (4, 2)
        assert loader._getImageDimensions(grey) == [1, 2, 4]
        assert loader._getImageDimensions(colour) == [3, 3, 5]


def test_pil_refuses_image_outside_limits_and_closes_it(files, config):
    class Spy(PilImageLoader):
        def _load(self, input):
            self.opened = super()._load(input)
            return self.opened

    loader = Spy(config)
    _limits(config)[2]["min"] = 5
    with pytest.raises(OSError, match=r"^Image dimensions \(1, 2, 4\) do not comply"):
        loader.load(files["ramp.png"])
    with pytest.raises(ValueError, match="closed image"):
        loader.opened.load()


def test_pil_reads_only_the_header_when_loading(files, config):
    """A truncated file passes the loader (size known); decoding fails later, at conversion."""
    image = PilImageLoader(config).load(files["truncated.png"])
    assert image.size == (64, 64)
    with pytest.raises(OSError, match="truncated"):
        image.load()
    image.close()


def test_pil_refuses_a_file_it_cannot_read(files, config):
    with pytest.raises(OSError, match=r"^Was not able to load the file .*ramp\.nrrd"):
        PilImageLoader(config).load(files["ramp.nrrd"])


# --- NumpyImageLoader ---------------------------------------------------------------------


def test_numpy_loads_array_with_its_shape_as_dims(files, config):
    loader = NumpyImageLoader(config)
    array = loader.load(files["array.npy"])
    assert array.shape == (3, 4, 4)
    assert loader._getImageDimensions(array) == (3, 4, 4)


@pytest.mark.parametrize("name", ["pickled.npy", "archive.npz", "ramp.png"])
def test_numpy_refuses_pickles_archives_and_other_files(files, config, name):
    with pytest.raises(OSError, match=f'^Was not able to load the file ".*{name}"'):
        NumpyImageLoader(config).load(files[name])


def test_numpy_array_missing_a_bounded_axis_is_refused(files, config):
    loader = NumpyImageLoader(config)
    assert loader.load(files["flat.npy"]).shape == (4, 4)
    _limits(config)[2]["min"] = 1
    with pytest.raises(OSError, match=r"^Image dimensions \(4, 4\) do not comply"):
        loader.load(files["flat.npy"])


# --- SitkImageLoader ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "dims"),
    [
        ("checkers.nrrd", (64, 32), [1, 32, 64]),
        ("brain.nii.gz", (91, 109, 91), [91, 109, 91]),
        ("slice.dcm", (256, 256, 1), [1, 256, 256]),
    ],
)
def test_sitk_loads_medical_formats_with_dims_depth_height_width(files, config, name, size, dims):
    loader = SitkImageLoader(config)
    image = loader.load(files[name])
    assert isinstance(image, sitk.Image)
    assert image.GetSize() == size
    assert loader._getImageDimensions(image) == dims


def test_sitk_refuses_image_outside_limits(files, config):
    _limits(config)[0]["min"] = 1
    _limits(config)[2]["max"] = 1
    with pytest.raises(OSError, match=r"^Image dimensions \(1, 32, 64\) do not comply"):
        SitkImageLoader(config).load(files["checkers.nrrd"])


# --- multi-input: limits of the input named by id -----------------------------------------


@pytest.mark.parametrize(
    ("loader", "name", "dims"),
    [
        (PilImageLoader, "ramp.png", (1, 2, 4)),
        (SitkImageLoader, "checkers.nrrd", (1, 32, 64)),
        (NumpyImageLoader, "array.npy", (3, 4, 4)),
    ],
)
def test_multi_input_refuses_by_the_limits_of_the_named_input(
    files, multi_config, loader, name, dims
):
    with pytest.raises(OSError, match=re.escape(f"Image dimensions {dims} do not comply")):
        loader(multi_config).load(files[name], id="name2")


def test_multi_input_loads_what_the_named_input_accepts(files, multi_config):
    with PilImageLoader(multi_config).load(files["ramp.png"], id="name") as image:
        assert image.size == (4, 2)
    nrrd = SitkImageLoader(multi_config).load(files["checkers.nrrd"], id="name")
    assert nrrd.GetSize() == (64, 32)
    assert NumpyImageLoader(multi_config).load(files["array.npy"], id="name").shape == (3, 4, 4)


def test_multi_input_limits_can_be_tightened(files, multi_config):
    _limits(multi_config, "name")[2]["min"] = 5
    with pytest.raises(OSError, match=r"^Image dimensions \(1, 2, 4\) do not comply"):
        PilImageLoader(multi_config).load(files["ramp.png"], id="name")


def test_default_loader_chain_is_pil_then_sitk_then_numpy():
    assert (PilImageLoader, SitkImageLoader, NumpyImageLoader) == DEFAULT_CHAIN


# --- ImageProcessorBase -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ramp.png", "ramp.nrrd"])
def test_processor_gives_the_ramp_as_batch_channel_height_width(files, config, name):
    for axis, size in ((1, 2), (2, 4)):
        _limits(config)[axis].update(min=size, max=size)
    array = ImageProcessorBase(config).loadAndPreprocess(files[name])
    assert array.dtype == np.float32
    assert array.tolist() == RAMP_AS_MODEL_INPUT


@pytest.mark.parametrize("name", ["ramp.png", "ramp.nrrd"])
def test_processor_refuses_input_outside_limits(files, config, name):
    _limits(config)[1]["min"] = 3
    with pytest.raises(OSError, match=r"^Image dimensions \(1, 2, 4\) do not comply"):
        ImageProcessorBase(config).loadAndPreprocess(files[name])


def test_processor_passes_numpy_input_through(files, config):
    array = ImageProcessorBase(config).loadAndPreprocess(files["array.npy"])
    assert array.tolist() == np.arange(48).reshape(3, 4, 4).tolist()


def test_processor_names_a_file_nothing_can_read(files, config):
    with pytest.raises(OSError, match=r'^Was not able to load the file ".*notes\.txt"\.$'):
        ImageProcessorBase(config).loadAndPreprocess(files["notes.txt"])


def test_processor_names_an_image_that_cannot_be_decoded(files, config):
    with pytest.raises(OSError, match=r'^Could not convert image of type "PngImageFile"'):
        ImageProcessorBase(config).loadAndPreprocess(files["truncated.png"])


def test_processor_uses_the_limits_of_the_input_id(files, multi_config):
    processor = ImageProcessorBase(multi_config)
    assert processor.loadAndPreprocess(files["ramp.png"], id="name").shape == (1, 1, 2, 4)
    with pytest.raises(OSError, match="do not comply"):
        processor.loadAndPreprocess(files["ramp.png"], id="name2")


def test_processor_keeps_config_and_builds_both_chains(config):
    processor = ImageProcessorBase(config)
    assert processor._config is config

    def chain_names(handler):
        names = []
        while handler is not None:
            names.append(type(handler).__name__)
            handler = handler._successor
        return names

    assert chain_names(processor._imageLoader) == [
        "PilImageLoader",
        "SitkImageLoader",
        "NumpyImageLoader",
    ]
    assert chain_names(processor._imageToNumpyConverter) == [
        "PilToNumpyConverter",
        "SitkToNumpyConverter",
        "NumpyToNumpyConverter",
    ]


def test_compute_output_is_abstract(config):
    with pytest.raises(NotImplementedError):
        ImageProcessorBase(config).computeOutput(None)


def test_processor_runs_the_four_overridable_steps_in_order(files, config):
    steps = []

    class Processor(ImageProcessorBase):
        def _load(self, input, id=None):
            steps.append(("load", id))
            return super()._load(input, id)

        def _preprocessBeforeConversionToNumpy(self, image):
            steps.append(("before", type(image).__name__))
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

        def _convertToNumpy(self, image):
            steps.append(("convert", type(image).__name__))
            return super()._convertToNumpy(image)

        def _preprocessAfterConversionToNumpy(self, npArr):
            steps.append(("after", npArr.shape))
            return npArr / 50

    array = Processor(config).loadAndPreprocess(files["ramp.png"])
    assert steps == [
        ("load", None),
        ("before", "PngImageFile"),
        ("convert", "Image"),
        ("after", (1, 1, 2, 4)),
    ]
    assert array.tolist() == [[[[4.0, 3.0, 2.0, 1.0]] * 2]]


def test_preprocessing_may_hand_an_array_to_the_converters(files, config):
    """Contributors often return a numpy array from `_preprocessBeforeConversionToNumpy`."""

    class Processor(ImageProcessorBase):
        def _preprocessBeforeConversionToNumpy(self, image):
            return np.moveaxis(np.asarray(image), -1, 0)[np.newaxis] / 10

    array = Processor(config).loadAndPreprocess(files["rgb.png"])
    assert array.shape == (1, 3, 3, 5)
    assert array[0, :, 2, 4].tolist() == [1.0, 2.0, 3.0]


def test_contributor_can_extend_the_loader_chain(config):
    class Processor(ImageProcessorBase):
        def __init__(self, config):
            super().__init__(config)
            self._imageLoader._successor._successor.setSuccessor(FixedDims(config))

    assert Processor(config)._load("only FixedDims takes this") == "only FixedDims takes this"


# --- SimpleITK is optional ----------------------------------------------------------------


@pytest.fixture
def without_simpleitk(monkeypatch):
    """modelhublib imported afresh while `import SimpleITK` fails, restored afterwards."""
    monkeypatch.setitem(sys.modules, "SimpleITK", None)
    for name in [name for name in sys.modules if name.split(".")[0] == "modelhublib"]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("modelhublib")


def test_without_simpleitk_everything_else_works(without_simpleitk, files, config):
    processor_module = importlib.import_module("modelhublib.processor")
    loaders = importlib.import_module("modelhublib.imageloaders")
    converters = importlib.import_module("modelhublib.imageconverters")

    assert not hasattr(loaders, "SitkImageLoader")
    assert not hasattr(converters, "SitkToNumpyConverter")
    assert [cls.__name__ for cls in loaders.DEFAULT_CHAIN] == ["PilImageLoader", "NumpyImageLoader"]
    assert [cls.__name__ for cls in converters.DEFAULT_CHAIN] == [
        "PilToNumpyConverter",
        "NumpyToNumpyConverter",
    ]

    processor = processor_module.ImageProcessorBase(config)
    assert processor.loadAndPreprocess(files["ramp.png"]).tolist() == RAMP_AS_MODEL_INPUT
    assert processor.loadAndPreprocess(files["array.npy"]).shape == (3, 4, 4)
    with pytest.raises(OSError, match=r'^Was not able to load the file ".*ramp\.nrrd"\.$'):
        processor.loadAndPreprocess(files["ramp.nrrd"])


def test_without_simpleitk_importing_its_loader_fails(without_simpleitk):
    with pytest.raises(ImportError):
        from modelhublib.imageloaders import SitkImageLoader  # noqa: F401
    with pytest.raises(ImportError):
        from modelhublib.imageconverters import SitkToNumpyConverter  # noqa: F401


def test_simpleitk_is_imported_only_when_a_file_reaches_its_loader(files):
    # SimpleITK costs about 90 MB of memory: a model fed photos must not pay for it.
    script = f"""
import subprocess
import sys
from modelhublib.processor import ImageProcessorBase
config = {{"model": {{"io": {{"input": {{"single": {{"dim_limits": [{{}}, {{}}, {{}}]}}}}}}}}}}
processor = ImageProcessorBase(config)
processor.loadAndPreprocess({str(files["ramp.png"])!r})
print("SimpleITK" in sys.modules)
processor.loadAndPreprocess({str(files["ramp.nrrd"])!r})
print("SimpleITK" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", "True"]
