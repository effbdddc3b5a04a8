"""Image converters: the step of `ImageProcessorBase.loadAndPreprocess` that makes a numpy array.

`DEFAULT_CHAIN` matches the loader chain: Pillow, SimpleITK (only when it
imports), then NumPy pass-through.
"""

from .imageConverter import ImageConverter
from .numpyToNumpyConverter import NumpyToNumpyConverter
from .pilToNumpyConverter import PilToNumpyConverter

try:
    from .sitkToNumpyConverter import SitkToNumpyConverter
except ImportError:  # SimpleITK is optional: without it, no SimpleITK image can reach the chain.
    DEFAULT_CHAIN: tuple[type[ImageConverter], ...] = (PilToNumpyConverter, NumpyToNumpyConverter)
else:
    DEFAULT_CHAIN = (PilToNumpyConverter, SitkToNumpyConverter, NumpyToNumpyConverter)
