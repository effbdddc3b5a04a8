"""Array outputs written to HDF5 files, which `/api/output/<name>` then serves.

A segmentation mask or a volume is too big to answer as nested JSON lists, so ModelHub
writes it to a file in the output folder and answers its URL. ModelHub named the file
after the current time only, so two requests in the same microsecond wrote the same file;
here every name also carries a random part, and the file appears under that name only when
complete (`atomicfiles`: written under a hidden name, then renamed), so it is never served
half-written.

ModelHub kept every file for ever, so a long-running server filled its disk. Each write now
first removes the outputs older than the settings' `output_max_age` (an hour by default): long
enough for a client to fetch its result, short enough to bound the folder.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime

import h5py
import numpy as np

from . import atomicfiles

# Readers of ModelHub's files expect the time first; the random part makes the name unique.
_NAME_FORMAT = "%Y-%m-%d-%H-%M-%S-%f"


def write_hdf5(array: np.ndarray, folder: str, dataset_name: str, max_age: float) -> str:
    """Write `array` as dataset `dataset_name` of a new HDF5 file in `folder`, first removing
    the outputs older than `max_age` seconds there; return the file's name (not its path:
    callers turn it into a URL).

    The dataset's `type` attribute holds the dtype's name, as ModelHub wrote it.
    """
    os.makedirs(folder, exist_ok=True)
    remove_expired(folder, max_age)
    name = f"{datetime.now().strftime(_NAME_FORMAT)}-{uuid.uuid4().hex[:12]}.h5"
    with (
        atomicfiles.replacing(os.path.join(folder, name)) as partial,
        h5py.File(partial, "w") as file,
    ):
        dataset = file.create_dataset(_dataset_key(dataset_name), data=array)
        dataset.attrs["type"] = np.bytes_(str(array.dtype))
    return name


def remove_expired(folder: str, max_age: float) -> None:
    """Delete the output files in `folder` older than `max_age` seconds.

    Only files this module writes (`*.h5`, and `.*.h5.*.part` left by a crash) are touched;
    one that vanishes meanwhile (another request's clean-up) is fine.
    """
    oldest = time.time() - max_age
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith((".h5", ".part")) or not entry.is_file():
                continue
            try:
                if entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass


def _dataset_key(name: str) -> str:
    """An HDF5 dataset name for an output name: `/` would make groups, empty is invalid."""
    return name.replace("/", "_") or "output"
