"""Loader for medical formats (NIfTI, NRRD, DICOM, MetaImage, ...) via SimpleITK.

SimpleITK is optional (the package leaves this loader out when it is not
installed) and heavy (about 90 MB of memory), so it is imported on the first
file that reaches this loader, not when the engine starts: a model fed only
photos, which Pillow reads first, never pays for it.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from .imageLoader import ImageLoader

if TYPE_CHECKING:
    import SimpleITK


def simpleitk() -> ModuleType:
    """The SimpleITK module, imported on first use."""
    import SimpleITK

    return SimpleITK


class SitkImageLoader(ImageLoader):
    """Reads any file SimpleITK can and returns the `SimpleITK.Image`."""

    def _load(self, input: Any) -> SimpleITK.Image:
        return simpleitk().ReadImage(input)

    def _getImageDimensions(self, image: SimpleITK.Image) -> list[int]:
        """`GetSize()` (x, y[, z]) reversed to [depth, height, width]; a 2-D image has depth 1.

        So a 64x32 NRRD gives [1, 32, 64] and a single-slice DICOM (size
        256x256x1) gives [1, 256, 256].
        """
        size = list(image.GetSize())
        if len(size) == 2:
            size.append(1)
        return size[::-1]
