"""A request's own files in the working folder, all removed when the request ends, and those
of a process that was killed, removed when the next one starts.

Each request reserves a unique name with `mkstemp` (an empty file, kept until the request
ends) and names every file it writes after it: `request-<random>-input` for the upload,
`request-<random>-input-0` for a multi-input request's first download, each renamed with the
suffix of its type once that is known (some loaders pick their reader by the name: SimpleITK
for NIfTI, NumPy for .npy). As long as the reservation exists no other request can be given
that name, so none can reach another's files (`mkstemp` names never contain a second `-`).
Files rather than a folder per request: making and removing a folder costs about 0.25 ms
per request, a few percent of a SqueezeNet prediction.

A request holds an exclusive `flock` on its reservation while it runs. The kernel releases
it when the process ends however it ends (`kill -9` too), so a reservation whose lock can be
taken belongs to nobody: the first request of a process in a folder removes such files
(`remove_abandoned`), and a process removes its own at exit. Folders made for one process
(see `settings`) are locked the same way, whole (`own_folder`, `remove_abandoned_folders`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

PREFIX = "request-"
# A file is judged abandoned only once it is this old: a reservation is made a moment
# before it is locked, and a folder a moment before it is owned.
_SETTLE_SECONDS = 2.0
_swept: set[str] = set()  # folders this process has swept (once each)
_live: set[Scratch] = set()  # the requests running now, removed at exit if still there
_lock = threading.Lock()
_owned_folders: list[int] = []  # descriptors of the folders this process owns, held open


class Scratch:
    """The files of one request, named after `path` (the reservation, an empty file, locked
    while the request runs), in `folder`, which is made if it does not exist."""

    def __init__(self, folder: str) -> None:
        _sweep_once(folder)
        try:
            self._handle, self.path = tempfile.mkstemp(prefix=PREFIX, dir=folder)
        except FileNotFoundError:  # made on first use (and again if it was removed)
            os.makedirs(folder, exist_ok=True)
            self._handle, self.path = tempfile.mkstemp(prefix=PREFIX, dir=folder)
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        self._paths = [self.path]
        with _lock:
            _live.add(self)

    def new_path(self, name: str) -> str:
        """A further path of this request's own (not created), removed with the others."""
        path = f"{self.path}-{name}"
        self._paths.append(path)
        return path

    def add_suffix(self, path: str, suffix: str) -> str:
        """Rename one of this request's files (a `new_path`) to end with `suffix`; the new
        path, which takes the old one's place among the files to remove."""
        renamed = path + suffix
        os.replace(path, renamed)
        self._paths[self._paths.index(path)] = renamed
        return renamed

    def remove(self) -> None:
        """Remove every file, the reservation last: until then its name stays taken. Calling
        it again does nothing."""
        with _lock:
            if self not in _live:
                return
            _live.discard(self)
        for path in reversed(self._paths):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(self._handle)


@contextlib.contextmanager
def scratch_files(folder: str) -> Iterator[Scratch]:
    """A `Scratch` in `folder` for the `with` block, its files removed whatever happens."""
    scratch = Scratch(folder)
    try:
        yield scratch
    finally:
        scratch.remove()


def remove_abandoned(folder: str) -> list[str]:
    """Remove the request files in `folder` that no running process holds (left by a killed
    one); the names removed."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    reservations = {
        name for name in names if name.startswith(PREFIX) and "-" not in name[len(PREFIX) :]
    }
    abandoned = {name for name in reservations if _is_abandoned(os.path.join(folder, name))}
    removed = []
    requests = [name for name in names if name.startswith(PREFIX)]
    for name in sorted(requests, key=len, reverse=True):  # each reservation after its files
        path = os.path.join(folder, name)
        owner = name if name in reservations else name[: name.find("-", len(PREFIX))]
        if owner in abandoned or (owner not in reservations and _is_old(path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(name)
    return removed


def own_folder(folder: str) -> None:
    """Hold `folder` (made for this process) for as long as the process lives, so that
    `remove_abandoned_folders` in another process leaves it alone."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(handle, fcntl.LOCK_EX)
    _owned_folders.append(handle)


def remove_abandoned_folders(root: str, prefix: str) -> list[str]:
    """Remove the folders `root/<prefix>*` that no running process owns (see `own_folder`):
    the per-process folders of killed processes. The paths removed."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(root):
            mine = entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False)
            if mine and _is_abandoned(entry.path):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    return removed


def _sweep_once(folder: str) -> None:
    with _lock:
        if folder in _swept:
            return
        _swept.add(folder)
    remove_abandoned(folder)


def _is_old(path: str) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > _SETTLE_SECONDS
    except FileNotFoundError:
        return False


def _is_abandoned(path: str) -> bool:
    """Old enough, and nobody holds its lock (taking it for a moment tells)."""
    if not _is_old(path):
        return False
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(handle)
    return True


@atexit.register
def remove_unfinished() -> None:
    """Remove the files of the requests running now: at exit, those a shutdown cut short."""
    for scratch in list(_live):
        scratch.remove()
