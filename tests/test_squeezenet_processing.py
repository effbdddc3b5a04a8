"""SqueezeNet preprocessing: the training recipe, EXIF orientation, every Pillow mode; top-5."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from squeezenet_support import CONTRIB_DIR, asset, ensure_built

ensure_built()

import processing  # noqa: E402
from processing import ImageProcessor, to_rgb, warp_and_crop  # noqa: E402


@pytest.fixture(scope="module")
def processor():
    with open(f"{CONTRIB_DIR}/model/config.json", encoding="utf-8") as handle:
        return ImageProcessor(json.load(handle))


def saved(tmp_path, image, name="image.png", **params):
    path = tmp_path / name
    image.save(path, **params)
    return str(path)


def gradient(width=80, height=60):
    """An RGB picture with distinct rows and columns, so any rotation or flip shows."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def test_solid_colour_becomes_bgr_minus_the_mean(tmp_path, processor):
    path = saved(tmp_path, Image.new("RGB", (300, 200), (200, 100, 50)))

    array = processor.loadAndPreprocess(path)

    assert array.shape == (1, 3, 227, 227) and array.dtype == np.float32
    assert array.flags["C_CONTIGUOUS"]
    assert np.all(array[0, 0] == 50 - 104)  # blue first
    assert np.all(array[0, 1] == 100 - 117)
    assert np.all(array[0, 2] == 200 - 123)


def test_image_is_warped_not_letterboxed_then_centre_cropped(tmp_path, processor):
    # 600x100, left half red, right half blue: warped to 256x256, the edge sits at column 128,
    # i.e. column 114 of the crop (offset 14). Keeping the aspect ratio would move it.
    image = Image.new("RGB", (600, 100), (255, 0, 0))
    image.paste((0, 0, 255), (300, 0, 600, 100))
    array = processor.loadAndPreprocess(saved(tmp_path, image))

    red = array[0, 2, 100] + 123  # R channel of one row, back to 0..255
    assert np.all(red[:113] == 255) and np.all(red[116:] == 0)


def test_one_resize_equals_warp_then_crop_within_rounding():
    """The crop is resampled directly: within 1 of warping to 256x256, then cropping."""
    folder = os.path.join(CONTRIB_DIR, "sample_data")
    for name in sorted(os.listdir(folder)):
        with Image.open(os.path.join(folder, name)) as image:
            image.draft("RGB", (256, 256))
            warped = to_rgb(image).resize((256, 256), Image.Resampling.BILINEAR)
            expected = np.asarray(warped.crop((14, 14, 241, 241)), dtype=np.int16)
        with Image.open(os.path.join(folder, name)) as image:
            actual = np.asarray(warp_and_crop(image), dtype=np.int16)
        assert np.abs(actual - expected).max() <= 1, name


def test_exif_orientation_is_honoured(tmp_path, processor):
    upright = gradient()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera writes ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with "rotate 90 CW to display"
    rotated_file = saved(tmp_path, stored, "camera.png", exif=exif)
    upright_file = saved(tmp_path, upright, "upright.png")

    np.testing.assert_array_equal(
        processor.loadAndPreprocess(rotated_file), processor.loadAndPreprocess(upright_file)
    )


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's own notice, expected here
@pytest.mark.parametrize("exif", [b"garbage!", b"MM\x00\x2a\x00\x00\x00\x08\x00\x05\xff"])
def test_unreadable_exif_leaves_the_pixels_as_stored(tmp_path, processor, exif):
    stored = gradient()
    upright = processor.loadAndPreprocess(saved(tmp_path, stored, "plain.png"))
    damaged = processor.loadAndPreprocess(saved(tmp_path, stored, "damaged.png", exif=exif))
    np.testing.assert_array_equal(damaged, upright)


def _grey(mode, image):
    """The grey picture as 16-bit (I;16), 32-bit integer (I) or float 0..1 (F) pixels."""
    values = np.asarray(image.convert("L"))
    wide = {
        "I;16": values.astype(np.uint16) * 257,
        "I": values.astype(np.int32) * 257,
        "F": values.astype(np.float32) / 255,
    }[mode]
    converted = Image.fromarray(wide)
    assert converted.mode == mode
    return converted


@pytest.mark.parametrize("mode", ["L", "LA", "I;16", "I", "F"])
def test_grey_modes_equal_the_8_bit_grey_picture(mode, processor):
    base = gradient()
    image = _grey(mode, base) if mode in ("I;16", "I", "F") else base.convert(mode)
    expected = warp_and_crop(base.convert("L").convert("RGB"))
    np.testing.assert_allclose(
        np.asarray(warp_and_crop(image), dtype=float), np.asarray(expected, dtype=float), atol=1
    )


@pytest.mark.parametrize(
    "values",
    [
        np.arange(0, 65535, 7, dtype=np.uint16)[: 97 * 61].reshape(97, 61),
        (np.arange(97 * 61, dtype=np.int32).reshape(97, 61) * 5 - 40),
        np.linspace(-0.5, 1.5, 97 * 61, dtype=np.float32).reshape(97, 61),
        np.where(np.eye(97, 61, dtype=bool), np.nan, 0.25).astype(np.float32),
    ],
    ids=["I;16", "I", "F", "F with NaN"],
)
def test_deep_grey_is_rescaled_block_by_block_as_in_one_piece(values, monkeypatch):
    """Row blocks (here of 2-3 rows) give the same pixels as rescaling the whole picture at
    once in float64: NaN as 0, the type's range (or the peak) as white, rounded, clipped."""
    image = Image.fromarray(values)
    whole = np.nan_to_num(values.astype(np.float64))
    full = processing._nominal_range(image.mode, float(whole.max()))
    expected = np.clip(np.rint(whole * (255.0 / full)), 0, 255).astype(np.uint8)
    monkeypatch.setattr(processing, "_BLOCK_PIXELS", 150)
    np.testing.assert_array_equal(np.asarray(processing._wide_grey_to_l(image)), expected)


@pytest.mark.parametrize("mode", ["RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "P", "PA", "1", "HSV"])
def test_colour_modes_become_rgb(mode):
    image = gradient().convert(mode)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == image.size


def test_transparent_palette_and_alpha_are_dropped(tmp_path, processor):
    image = gradient().convert("P")
    image.info["transparency"] = 0
    palette_file = saved(tmp_path, image, "palette.png")
    rgba = gradient().convert("RGBA")
    rgba.putalpha(0)  # fully transparent: the colours are still what the model sees
    alpha_file = saved(tmp_path, rgba, "alpha.png")

    assert processor.loadAndPreprocess(palette_file).shape == (1, 3, 227, 227)
    np.testing.assert_array_equal(
        processor.loadAndPreprocess(alpha_file),
        processor.loadAndPreprocess(saved(tmp_path, gradient(), "plain.png")),
    )


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "CMYK"),
        ("TIFF", "I;16"),
        ("TIFF", "F"),
        ("GIF", "P"),
        ("BMP", "1"),
        ("WEBP", "RGBA"),
        ("PNG", "LA"),
    ],
)
def test_files_in_every_format_load(tmp_path, processor, fmt, mode):
    base = gradient()
    image = _grey(mode, base) if mode in ("I;16", "F") else base.convert(mode)
    array = processor.loadAndPreprocess(saved(tmp_path, image, f"image.{fmt.lower()}", format=fmt))
    assert array.shape == (1, 3, 227, 227) and np.isfinite(array).all()


def test_draft_decoding_of_a_large_jpeg_changes_little():
    photo = Image.open(asset("bagel.jpg")).resize((2400, 1600), Image.Resampling.BICUBIC)
    data = io.BytesIO()
    photo.save(data, "JPEG", quality=95)

    full = np.asarray(warp_and_crop(Image.open(io.BytesIO(data.getvalue())), draft=False), float)
    fast = np.asarray(warp_and_crop(Image.open(io.BytesIO(data.getvalue())), draft=True), float)

    assert np.abs(full - fast).mean() < 2.0  # of 255


def test_damaged_pixels_fail_instead_of_passing_half_decoded(tmp_path, processor):
    """Reading a PNG's EXIF decodes its pixels: a failure there is the file's, not
    unreadable EXIF to be ignored (which left the pixels decoded so far)."""
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 64).convert("RGB").save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    for offset in range(start + length // 2, start + length - 4):
        data[offset] ^= 0x5A  # damage the second half of the compressed pixels...
    crc = zlib.crc32(data[start - 4 : start + length])
    data[start + length : start + length + 4] = struct.pack(">I", crc)  # ...checksum intact
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(OSError):
        processor.loadAndPreprocess(str(path))


def test_non_picture_input_is_refused(tmp_path, processor):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros((3, 64, 64), np.float32))
    with pytest.raises(OSError, match="2-D picture"):
        processor.loadAndPreprocess(str(path))


def test_compute_output_is_the_top_five_highest_first(processor):
    probabilities = np.zeros((1, 1000), np.float32)
    probabilities[0, [3, 7, 1, 999, 500, 2]] = [0.30, 0.25, 0.20, 0.15, 0.05, 0.05]

    output = processor.computeOutput(probabilities)

    assert [entry["label"] for entry in output] == [
        "tiger shark, Galeocerdo cuvieri",
        "cock",
        "goldfish, Carassius auratus",
        "toilet tissue, toilet paper, bathroom tissue",
        "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
    ]  # the tie 500 / 2 goes to the lower class index
    assert [entry["probability"] for entry in output] == pytest.approx(
        [0.30, 0.25, 0.20, 0.15, 0.05]
    )
    assert all(type(entry["probability"]) is float for entry in output)


def test_compute_output_refuses_a_wrong_size(processor):
    with pytest.raises(ValueError, match="Expected 1000 class probabilities, got 10"):
        processor.computeOutput(np.ones(10))
