"""Array outputs written to HDF5 files, which `/api/output/<name>` then serves.

A segmentation mask or a volume is too big to answer as nested JSON lists, so ModelHub
writes it to a file in the output folder and answers its URL. ModelHub named the file
after the current time only, so two requests in the same microsecond wrote the same file;
here every name also carries a random part, and the file appears under that name only when
complete (written under a hidden name, then renamed), so it is never served half-written.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import h5py
import numpy as np

# Readers of ModelHub's files expect the time first; the random part makes the name unique.
_NAME_FORMAT = "%Y-%m-%d-%H-%M-%S-%f"


def write_hdf5(array: np.ndarray, folder: str, dataset_name: str) -> str:
    """Write `array` as dataset `dataset_name` of a new HDF5 file in `folder`; return the
    file's name (not its path: callers turn it into a URL).

    The dataset's `type` attribute holds the dtype's name, as ModelHub wrote it.
    """
    os.makedirs(folder, exist_ok=True)
    name = f"{datetime.now().strftime(_NAME_FORMAT)}-{uuid.uuid4().hex[:12]}.h5"
    partial = os.path.join(folder, f".{name}.part")
    try:
        with h5py.File(partial, "w") as file:
            dataset = file.create_dataset(_dataset_key(dataset_name), data=array)
            dataset.attrs["type"] = np.bytes_(str(array.dtype))
        os.replace(partial, os.path.join(folder, name))
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return name


def _dataset_key(name: str) -> str:
    """An HDF5 dataset name for an output name: `/` would make groups, empty is invalid."""
    return name.replace("/", "_") or "output"
