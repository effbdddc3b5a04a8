"""The engine's configuration: every environment variable it reads, in one place.

Each value is read when asked for, not at import, so a test (or a process
manager) can change the environment before starting a service. Defaults are
the safe choice: loopback only, bounded sizes, private addresses refused.

Variables (default, meaning):
- HOST (127.0.0.1; 0.0.0.0 in the image): address the web service binds.
- PORT (8080; 80 in the image): port the web service binds.
- MODELHUB_THREADS (8): request threads of the WSGI server.
- MODELHUB_WORKING_DIR (a per-process temporary folder, in memory (/dev/shm) when that
  has room for every request thread's largest upload; /working in the image): scratch
  space for uploads and downloads.
- MODELHUB_OUTPUT_DIR (a per-process temporary folder; /output in the image):
  where array outputs (HDF5) are written.
- MODELHUB_OUTPUT_MAX_AGE (3600): seconds an output file is kept before a later write
  removes it.
- MODELHUB_DATA_DIR (none; /data in the image): a folder besides sample_data/
  that multi-input JSON may name local files in.
- MODELHUB_MAX_UPLOAD_MB (32): largest upload or download, in MiB.
- MODELHUB_MAX_PIXELS (40000000): largest image, in pixels, read from its header.
- MODELHUB_MAX_IMAGE_MB (320): most memory one image's decoded pixels may take, in MiB,
  estimated from its header (see `safety.files`).
- MODELHUB_URL_TIMEOUT (10): seconds allowed for one URL download, in all.
- MODELHUB_URL_DOWNLOADS (2): URL downloads that may run at once; more are refused (503).
- MODELHUB_MAX_CONNECTIONS (1000): open connections the web service holds; idle ones are
  closed after 30 s.
- MODELHUB_ALLOW_PRIVATE_URLS (0): 1 lets URLs reach private and loopback hosts.
- MODELHUB_MIRROR (none): folders, separated by os.pathsep, searched for external files.
- MODELHUB_VARIANT (fp32): which model file a contributor package loads.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from functools import cache

from . import scratch


class SettingsError(ValueError):
    """An environment variable holds a value the engine cannot use."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _env_flag(name: str) -> bool:
    return _env(name, "0").lower() in {"1", "true", "yes", "on"}


# Shared memory: files there never touch a disk. On ext4 creating, writing and removing a
# request's upload costs about 0.4 ms more than in memory, some 5 % of a SqueezeNet answer.
_MEMORY_FOLDER = "/dev/shm"


@cache
def _process_temp_dir(purpose: str, root: str | None = None) -> str:
    """One private temporary folder per process and purpose (in `root`, else the system's
    temporary folder), made on first use and removed at exit if empty. Such folders left by
    killed processes are removed first (see `scratch`)."""
    prefix = f"modelhub-{purpose}-owned-"
    scratch.remove_abandoned_folders(root or tempfile.gettempdir(), prefix)
    folder = tempfile.mkdtemp(prefix=prefix, dir=root)
    scratch.own_folder(folder)
    atexit.register(_remove_if_empty, folder)
    return folder


def _remove_if_empty(folder: str) -> None:
    scratch.remove_unfinished()  # their files first
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def _memory_folder_with_room() -> str | None:
    """`/dev/shm` if this process may write there and it has room for the largest upload of
    every request thread at once (Docker gives containers 64 MB of it); else None. Should it
    fill up all the same (other processes, multi-input requests), a request that cannot
    write its files is answered 503."""
    try:
        usage = os.statvfs(_MEMORY_FOLDER)
    except OSError:
        return None
    room = usage.f_bavail * usage.f_frsize
    needed = server_threads() * max_upload_bytes()
    if room < needed or not os.access(_MEMORY_FOLDER, os.W_OK | os.X_OK):
        return None
    return _MEMORY_FOLDER


def host() -> str:
    return _env("HOST", "127.0.0.1")


def port() -> int:
    return _env_int("PORT", 8080)


def server_threads() -> int:
    return _env_int("MODELHUB_THREADS", 8)


def working_dir() -> str:
    return _env("MODELHUB_WORKING_DIR", "") or _default_working_dir()


@cache
def _default_working_dir() -> str:
    """Decided once per process: the room in /dev/shm may change, the folder must not."""
    return _process_temp_dir("working", _memory_folder_with_room())


def output_dir() -> str:
    return _env("MODELHUB_OUTPUT_DIR", "") or _process_temp_dir("output")


def output_max_age() -> int:
    return _env_int("MODELHUB_OUTPUT_MAX_AGE", 3600)


def data_dir() -> str | None:
    return _env("MODELHUB_DATA_DIR", "") or None


def max_upload_bytes() -> int:
    return _env_int("MODELHUB_MAX_UPLOAD_MB", 32) * 1024 * 1024


def max_pixels() -> int:
    return _env_int("MODELHUB_MAX_PIXELS", 40_000_000)


def max_image_bytes() -> int:
    return _env_int("MODELHUB_MAX_IMAGE_MB", 320) * 1024 * 1024


def url_timeout() -> float:
    return float(_env_int("MODELHUB_URL_TIMEOUT", 10))


def url_downloads() -> int:
    return _env_int("MODELHUB_URL_DOWNLOADS", 2)


def max_connections() -> int:
    return _env_int("MODELHUB_MAX_CONNECTIONS", 1000)


def allow_private_urls() -> bool:
    return _env_flag("MODELHUB_ALLOW_PRIVATE_URLS")


def mirror_dirs() -> list[str]:
    return [path for path in _env("MODELHUB_MIRROR", "").split(os.pathsep) if path]


def model_variant() -> str:
    return _env("MODELHUB_VARIANT", "fp32")
