"""Image loaders: the first step of `ImageProcessorBase.loadAndPreprocess`.

`DEFAULT_CHAIN` is the order the processor tries them in: Pillow first (the
common case, and it reads only the header), then SimpleITK for medical
formats, then NumPy. `SitkImageLoader` exists only when SimpleITK imports.
"""

from .imageLoader import ImageLoader
from .numpyImageLoader import NumpyImageLoader
from .pilImageLoader import PilImageLoader

try:
    from .sitkImageLoader import SitkImageLoader
except ImportError:  # SimpleITK is optional: without it, medical formats are simply not read.
    DEFAULT_CHAIN: tuple[type[ImageLoader], ...] = (PilImageLoader, NumpyImageLoader)
else:
    DEFAULT_CHAIN = (PilImageLoader, SitkImageLoader, NumpyImageLoader)
