"""The upload rule: what a file is comes from its bytes, and only what the model accepts goes on.

ModelHub trusted the name or the declared content type of an upload; a renamed file
then reached a decoder it was never meant for. Here the type is sniffed from magic
numbers (and, for JSON, from parsing) and checked against the model's accepted formats.
Then the size of the picture is read from the header *before* anything is decoded
(a few-KB PNG can claim 20000x20000 pixels, a small .nii.gz can inflate to gigabytes)
and checked against the settings' `max_pixels`.

The pixels themselves are decoded once, by the model: decoding them here as well would add
a third to the pre-processing of a photo. When the model then fails, `blame_corrupt_files`
decodes its inputs: a truncated or corrupt file is answered as such (400, a plain message)
instead of as the model's failure.

MIME names are those ModelHub configs use (`image/png`, `application/dicom`,
`application/nii-gzip`, ...); `_ALIASES` lists other spellings configs use for them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image, ImageMode

from ..settings import Settings
from .errors import InputError

# The limits of a call given none: the built-in defaults (an app passes its own settings).
DEFAULT_LIMITS = Settings()

# How many leading bytes sniffing looks at: enough for DICOM (132) and a NIfTI-1 header (348).
_HEAD_BYTES = 512
# JSON has no magic number, so it is recognised by parsing; only small files qualify
# (ModelHub's multi-input descriptions are a few hundred bytes).
_JSON_MAX_BYTES = 1024 * 1024
# An NRRD header is a few lines of text; anything longer is not one worth reading.
_NRRD_HEADER_MAX_BYTES = 64 * 1024
_NIFTI_HEADER_BYTES = 348
_NIFTI_SIZES = {b"\x5c\x01\x00\x00": "<", b"\x00\x00\x01\x5c": ">"}  # sizeof_hdr -> byte order
_NIFTI_MAGICS = (b"n+1\x00", b"ni1\x00")
_BMP_INFO_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# Progressive JPEGs from encoders have about 10 scans; libjpeg's own tools allow 100s.
_MAX_JPEG_SCANS = 100
_START_OF_SCAN = b"\xff\xda"
_SCAN_CHUNK_BYTES = 1024 * 1024

_PREFIX_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x93NUMPY", "application/npy"),
    (b"NRRD", "application/nrrd"),
)

# Sniffed type -> the Pillow plugin that must decode it (and nothing else may claim it).
_PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/webp": "WEBP",
}

# Other spellings a config may list for a sniffed type. `image/jpg` is in ModelHub's own
# test configs; ModelHub mapped `.npy` to `application/octet-stream`; SimpleITK reads NIfTI
# compressed or not, and ModelHub's example inputs label plain `.nii` files `nii-gzip`.
_ALIASES = {
    "image/jpeg": frozenset({"image/jpg", "image/pjpeg"}),
    "image/bmp": frozenset({"image/x-ms-bmp", "image/x-bmp"}),
    "application/npy": frozenset({"application/octet-stream", "application/x-npy"}),
    "application/nii": frozenset({"application/nii-gzip"}),
    "application/nii-gzip": frozenset({"application/nii"}),
}

# File name suffix a sniffed type is stored under, for loaders that go by the name
# (SimpleITK picks its NIfTI/NRRD reader by suffix; the NumPy loader wants `.npy`).
_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "image/webp": ".webp",
    "application/json": ".json",
    "application/npy": ".npy",
    "application/nii": ".nii",
    "application/nii-gzip": ".nii.gz",
    "application/dicom": ".dcm",
    "application/nrrd": ".nrrd",
}

_CORRUPT = "The file is truncated or corrupt."


def sniff_mime(path: str) -> str | None:
    """MIME type decided from the file's bytes (not its name); None if unknown.

    One of image/png, image/jpeg, image/gif, image/bmp, image/tiff, image/webp,
    application/json (a small file holding a JSON object or array), application/npy
    (NumPy .npy), application/nii (NIfTI-1), application/nii-gzip (gzip whose content
    starts with a NIfTI-1 header), application/dicom, application/nrrd.
    """
    head = _read_head(path, _HEAD_BYTES)
    return (
        _sniff_magic(head)
        or _sniff_nifti(path, head)
        or _sniff_dicom(head)
        or _sniff_json(path, head)
    )


def check_input_file(
    path: str, accepted_formats: list[str], limits: Settings = DEFAULT_LIMITS
) -> str:
    """The sniffed MIME type of `path` if the model may be given it; else InputError (400).

    Refuses empty files, types not in `accepted_formats` ('Incorrect file type.'), more
    than `limits.max_pixels` pixels (voxels for NIfTI, NRRD and .npy), read from the
    header before anything is decoded, headers that cannot be parsed (truncated or
    corrupt), and NRRD headers that point at a separate data file. Pixels are not decoded
    (see `blame_corrupt_files`).
    """
    if os.path.getsize(path) == 0:
        raise InputError("The file is empty.")
    mime = sniff_mime(path)
    if mime is None or not _is_accepted(mime, accepted_formats):
        raise InputError("Incorrect file type.")
    if mime in _PILLOW_FORMATS:
        _check_raster_header(path, _PILLOW_FORMATS[mime], limits)
    elif mime in _SHAPE_READERS:
        _check_pixel_count(_read_shape(path, _SHAPE_READERS[mime]), limits.max_pixels)
    return mime


@contextlib.contextmanager
def blame_corrupt_files(
    paths: Iterable[str], limits: Settings = DEFAULT_LIMITS
) -> Iterator[None]:
    """Run a model on checked files: if it fails and one of `paths` is a raster image that
    does not decode whole, raise InputError('The file is truncated or corrupt.') instead.

    The file, not the model, is then at fault, and the caller deserves a plain 400.
    """
    try:
        yield
    except Exception:
        for path in paths:
            _check_decodes_whole(path, limits.max_pixels)
        raise


def file_suffix(mime: str) -> str:
    """File name suffix (with its dot) to store a file of sniffed type `mime` under; '' if none."""
    return _SUFFIXES.get(mime, "")


def _is_accepted(mime: str, accepted_formats: list[str]) -> bool:
    """True if the config lists `mime` or a spelling of it (see `_ALIASES`)."""
    names = {mime} | _ALIASES.get(mime, frozenset())
    return any(str(accepted).strip().lower() in names for accepted in accepted_formats)


def _read_head(path: str, size: int) -> bytes:
    with open(path, "rb") as file:
        return file.read(size)


def _gunzip_head(path: str, size: int) -> bytes:
    """The first `size` bytes of a gzip file's content (fewer if it is shorter or broken).

    Only that much is ever inflated (`max_length`), so a gzip bomb costs nothing here.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    content = b""
    try:
        with open(path, "rb") as file:
            while len(content) < size and not inflater.eof:
                compressed = inflater.unconsumed_tail or file.read(_HEAD_BYTES)
                if not compressed:
                    break
                content += inflater.decompress(compressed, size - len(content))
    except zlib.error:
        pass
    return content


def _sniff_magic(head: bytes) -> str | None:
    """Formats with a magic number at offset 0 (BMP and WebP need a second field to be sure)."""
    for magic, mime in _PREFIX_MAGICS:
        if head.startswith(magic):
            return mime
    if head[:2] == b"BM" and len(head) >= 18:
        (info_header_size,) = struct.unpack_from("<I", head, 14)
        if info_header_size in _BMP_INFO_HEADER_SIZES:
            return "image/bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _sniff_nifti(path: str, head: bytes) -> str | None:
    """NIfTI-1, plain or gzip-compressed (only its header is inflated)."""
    if _is_nifti_header(head):
        return "application/nii"
    if head.startswith(b"\x1f\x8b") and _is_nifti_header(_gunzip_head(path, _NIFTI_HEADER_BYTES)):
        return "application/nii-gzip"
    return None


def _is_nifti_header(header: bytes) -> bool:
    """A NIfTI-1 header: `sizeof_hdr` 348 (either byte order) and its magic at offset 344."""
    return (
        len(header) >= _NIFTI_HEADER_BYTES
        and header[:4] in _NIFTI_SIZES
        and header[344:348] in _NIFTI_MAGICS
    )


def _sniff_dicom(head: bytes) -> str | None:
    """DICOM Part 10: a 128-byte preamble, then `DICM`."""
    return "application/dicom" if head[128:132] == b"DICM" else None


def _sniff_json(path: str, head: bytes) -> str | None:
    """A small file that parses as a JSON object or array.

    A bare JSON number or string is refused: nearly any text file is one, so it would
    make JSON a catch-all for text.
    """
    if head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] not in (b"{", b"["):
        return None
    data = _read_head(path, _JSON_MAX_BYTES + 1)
    if len(data) > _JSON_MAX_BYTES:
        return None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return "application/json" if isinstance(document, dict | list) else None


def _check_raster_header(path: str, pillow_format: str, limits: Settings) -> None:
    """The header parses, the pixel count it declares is within the limit, and so is the
    memory its pixels will take (`_check_memory`); a JPEG has few enough scans."""
    image = _open_image(path, pillow_format, limits.max_pixels)
    try:
        _check_pixel_count(image.size, limits.max_pixels)
        _check_memory(image, limits.max_image_bytes)
    finally:
        image.close()
    if pillow_format == "JPEG":
        _check_jpeg_scans(path)


def _check_memory(image: Image.Image, max_bytes: int) -> None:
    """Refuse an image whose decoded pixels would take more than `max_bytes`,
    from its header: pixels x samples x bytes per sample. What a package's pre-processing
    needs beyond that is the package's to keep small (SqueezeNet's rescales samples deeper
    than 8 bits a block of rows at a time); lower MODELHUB_MAX_IMAGE_MB for one that is not."""
    mode = ImageMode.getmode(image.mode)
    cost = math.prod(image.size) * len(mode.bands) * np.dtype(mode.typestr).itemsize
    if cost > max_bytes:
        limit = max_bytes // 2**20
        raise InputError(
            f"The image is too large: its pixels would take more than {limit} MB of memory."
        )


def _check_jpeg_scans(path: str) -> None:
    """Refuse a JPEG of more than `_MAX_JPEG_SCANS` scans: each is a pass of the decoder over
    the whole picture, and a small progressive file can repeat one thousands of times.
    Counts start-of-scan markers, which entropy-coded data cannot contain (a 0xFF there is
    always followed by 0x00 or a restart number); a thumbnail inside the metadata adds its
    own few."""
    scans = 0
    carry = b""
    with open(path, "rb") as file:
        while chunk := file.read(_SCAN_CHUNK_BYTES):
            scans += (carry + chunk).count(_START_OF_SCAN)
            carry = chunk[-1:]
            if scans > _MAX_JPEG_SCANS:
                raise InputError(
                    f"The JPEG has too many scans: at most {_MAX_JPEG_SCANS} are allowed."
                )


def _open_image(path: str, pillow_format: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only) with the one plugin the sniffed type calls for.

    Any failure of a parser on hostile bytes means the file is corrupt, whatever the
    exception type, so all are answered alike; Pillow's own bomb guard (far above ours)
    is reported as too many pixels.
    """
    try:
        return Image.open(path, formats=[pillow_format])
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except Exception:
        raise InputError(_CORRUPT) from None


def _check_decodes_whole(path: str, max_pixels: int) -> None:
    """InputError if `path` is a raster image whose header or (first frame's) pixels do
    not decode; nothing for other files. JPEG is decoded at 1/8 scale, which still reads
    every byte of it."""
    try:
        pillow_format = _PILLOW_FORMATS.get(sniff_mime(path) or "")
    except OSError:  # not there (a missing local input): the model's error stands
        return
    if pillow_format is None:
        return
    image = _open_image(path, pillow_format, max_pixels)
    try:
        if image.format == "JPEG":
            image.draft(image.mode, (1, 1))
        image.load()
    except Exception:
        raise InputError(_CORRUPT) from None
    finally:
        image.close()


def _check_pixel_count(shape: Sequence[int], limit: int) -> None:
    """Refuse a picture (or volume) of more than `limit` elements."""
    if math.prod(shape) > limit:
        raise _too_many_pixels(limit)


def _too_many_pixels(limit: int) -> InputError:
    return InputError(f"The image is too large: at most {limit} pixels are allowed.")


def _read_shape(path: str, reader: Callable[[str], Sequence[int]]) -> Sequence[int]:
    """The array shape a volume's header declares; a header that cannot be read is corrupt."""
    try:
        shape = tuple(reader(path))
    except InputError:
        raise
    except Exception:
        raise InputError(_CORRUPT) from None
    if not shape or min(shape) < 0:
        raise InputError(_CORRUPT)
    return shape


def _npy_shape(path: str) -> Sequence[int]:
    """Shape from a .npy header (NumPy's own reader, which bounds the header size)."""
    with open(path, "rb") as file:
        version = npy_format.read_magic(file)
        if version == (1, 0):
            shape, _, _ = npy_format.read_array_header_1_0(file)
        elif version in ((2, 0), (3, 0)):
            shape, _, _ = npy_format.read_array_header_2_0(file)
        else:
            raise ValueError("unknown .npy version")
    return shape or (1,)


def _nifti_shape(header: bytes) -> Sequence[int]:
    """Shape from a NIfTI-1 header: `dim[0]` dimensions in `dim[1:]` (int16 at offset 40)."""
    dims = struct.unpack_from(_NIFTI_SIZES[header[:4]] + "8h", header, 40)
    if not 1 <= dims[0] <= 7:
        raise ValueError("bad NIfTI dim[0]")
    return dims[1 : dims[0] + 1]


def _nrrd_shape(path: str) -> Sequence[int]:
    """Shape from an NRRD header's `sizes:` field.

    An NRRD header may name a separate data file (`data file:`), which SimpleITK would
    read from the server's disk: only self-contained files are accepted.
    """
    head = _read_head(path, _NRRD_HEADER_MAX_BYTES)
    header = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    fields = {}
    for line in header.splitlines()[1:]:
        key, _, value = line.partition(b":")
        fields[key.strip().lower()] = value
    if b"data file" in fields or b"datafile" in fields:
        raise InputError("NRRD files with a separate data file are not accepted.")
    return [int(size) for size in fields[b"sizes"].split()]


_SHAPE_READERS: dict[str, Callable[[str], Sequence[int]]] = {
    "application/npy": _npy_shape,
    "application/nii": lambda path: _nifti_shape(_read_head(path, _NIFTI_HEADER_BYTES)),
    "application/nii-gzip": lambda path: _nifti_shape(_gunzip_head(path, _NIFTI_HEADER_BYTES)),
    "application/nrrd": _nrrd_shape,
}
