"""Loader for the common 2-D formats (PNG, JPEG, GIF, BMP, TIFF, WebP, ...) via Pillow."""

from __future__ import annotations

from typing import Any

from PIL import Image

from .imageLoader import ImageLoader


class PilImageLoader(ImageLoader):
    """Reads raster images with Pillow and returns the `PIL.Image.Image`.

    `Image.open` reads only the header, so the size can be checked against
    `dim_limits` before any pixel is decoded; decoding happens when the image
    is converted to numpy (or a contributor's preprocessing touches pixels).
    """

    def _load(self, input: Any) -> Image.Image:
        return Image.open(input)

    def _getImageDimensions(self, image: Image.Image) -> list[int]:
        """[number of bands, height, width], e.g. [3, h, w] for RGB, [1, h, w] for L."""
        width, height = image.size
        return [len(image.getbands()), height, width]

    def _checkConfigCompliance(self, image: Image.Image, id: str | None = None) -> None:
        """Check as every loader does, and close a refused image.

        The lazily opened image holds its file open until decoded; a refused
        one is never decoded, so it is closed here rather than left to the
        garbage collector.
        """
        try:
            super()._checkConfigCompliance(image, id)
        except OSError:
            image.close()
            raise
