"""Files that appear whole or not at all: the engine's one way of writing a file in place.

A file is written under a hidden temporary name beside its destination (same folder, so
the final `os.replace` is an atomic rename) and takes the destination's name only when the
writer finished cleanly; on any failure the temporary file is removed. A reader (a request
serving an output, a server loading a model, the init step checking a digest) therefore
sees the old file or the whole new one, never a part.

`durable` adds the fsyncs that make the result survive a power cut (the file before the
rename, so a crash cannot leave a complete-looking but empty file; the folder after, so the
rename itself persists). Install-time files want it; a request's own files, which live no
longer than the process, skip its cost.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

# mkstemp makes files 0600; a file in place must be readable by a service user too.
_MODE = 0o644


@contextlib.contextmanager
def replacing(dest: str, *, durable: bool = False) -> Iterator[str]:
    """The path of an empty temporary file beside `dest`, for a writer that wants a path
    (h5py, for instance); it replaces `dest` if the block finishes cleanly. The folder is
    made if missing. The temporary name starts with a dot, so folder listings that skip
    hidden files never show it."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=folder
    )
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, _MODE)
        if durable:
            _fsync(temporary, os.O_RDONLY)
        os.replace(temporary, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if durable:
        _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)


@contextlib.contextmanager
def atomic_output(dest: str, *, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary file open for writing that replaces `dest` if the block finishes cleanly
    (see `replacing`)."""
    with replacing(dest, durable=durable) as temporary, open(temporary, "wb") as handle:
        yield handle


def write_atomically(dest: str, data: bytes, *, durable: bool = True) -> None:
    """Replace `dest` with `data`, durably unless told otherwise."""
    with atomic_output(dest, durable=durable) as handle:
        handle.write(data)


def _fsync(path: str, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
