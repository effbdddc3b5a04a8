"""Loader for medical formats (NIfTI, NRRD, DICOM, MetaImage, ...) via SimpleITK.

Importing this module fails when SimpleITK is not installed; the package
then leaves this loader out, as SimpleITK is an optional dependency.
"""

from __future__ import annotations

from typing import Any

import SimpleITK as sitk

from .imageLoader import ImageLoader


class SitkImageLoader(ImageLoader):
    """Reads any file SimpleITK can and returns the `SimpleITK.Image`."""

    def _load(self, input: Any) -> sitk.Image:
        return sitk.ReadImage(input)

    def _getImageDimensions(self, image: sitk.Image) -> list[int]:
        """`GetSize()` (x, y[, z]) reversed to [depth, height, width]; a 2-D image has depth 1.

        So a 64x32 NRRD gives [1, 32, 64] and a single-slice DICOM (size
        256x256x1) gives [1, 256, 256].
        """
        size = list(image.GetSize())
        if len(size) == 2:
            size.append(1)
        return size[::-1]
