"""Image loaders: the first step of `ImageProcessorBase.loadAndPreprocess`.

`DEFAULT_CHAIN` is the order the processor tries them in: Pillow first (the
common case, and it reads only the header), then SimpleITK for medical
formats, then NumPy. `SitkImageLoader` exists only when SimpleITK is installed.
"""

from importlib.util import find_spec

from .imageLoader import ImageLoader
from .numpyImageLoader import NumpyImageLoader
from .pilImageLoader import PilImageLoader

if find_spec("SimpleITK") is None:  # optional: without it, medical formats are not read
    DEFAULT_CHAIN: tuple[type[ImageLoader], ...] = (PilImageLoader, NumpyImageLoader)
else:
    from .sitkImageLoader import SitkImageLoader

    DEFAULT_CHAIN = (PilImageLoader, SitkImageLoader, NumpyImageLoader)
