"""The engine's configuration: every environment variable it reads, in one place.

`Settings.from_environment()` reads them once, into an immutable `Settings`, which the
app factories (`ModelHubRESTAPI`, `ModelHubAPI`, `webservice.start`, the CLI) are handed;
nothing reads the environment per request. Built without one, those factories read the
environment when they are constructed. Tests build apps with their own `Settings(...)` or
`dataclasses.replace(...)`. Defaults are the safe choice: loopback only, bounded sizes,
private addresses refused.

Variables (default, meaning):
- HOST (127.0.0.1; 0.0.0.0 in the image): address the web service binds.
- PORT (8080; 80 in the image): port the web service binds.
- MODELHUB_THREADS (8): request threads of the web service.
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
(MODELHUB_VARIANT is a contributor package's own setting, read by the package, not here.)
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import tempfile
import threading
from collections.abc import Mapping
from functools import cache

from . import scratch

_MIB = 1024 * 1024
# Shared memory: files there never touch a disk. On ext4 creating, writing and removing a
# request's upload costs about 0.4 ms more than in memory, some 5 % of a SqueezeNet answer.
_MEMORY_FOLDER = "/dev/shm"
_default_working: list[str] = []  # the per-process working folder, once made
_default_working_lock = threading.Lock()


class SettingsError(ValueError):
    """An environment variable holds a value the engine cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of the engine; see the module docstring for each variable.

    `working_dir` and `output_dir` are None for a per-process temporary folder, made on
    first use (`working_folder()`, `output_folder()`).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    server_threads: int = 8
    working_dir: str | None = None
    output_dir: str | None = None
    output_max_age: int = 3600
    data_dir: str | None = None
    max_upload_bytes: int = 32 * _MIB
    max_pixels: int = 40_000_000
    max_image_bytes: int = 320 * _MIB
    url_timeout: float = 10.0
    url_downloads: int = 2
    max_connections: int = 1000
    allow_private_urls: bool = False
    mirror_dirs: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment (`os.environ` unless given) holds; SettingsError
        naming the variable if one is malformed."""
        env = _Environment(os.environ if environ is None else environ)
        return cls(
            host=env.text("HOST", cls.host),
            port=env.number("PORT", cls.port),
            server_threads=env.number("MODELHUB_THREADS", cls.server_threads),
            working_dir=env.text("MODELHUB_WORKING_DIR", "") or None,
            output_dir=env.text("MODELHUB_OUTPUT_DIR", "") or None,
            output_max_age=env.number("MODELHUB_OUTPUT_MAX_AGE", cls.output_max_age),
            data_dir=env.text("MODELHUB_DATA_DIR", "") or None,
            max_upload_bytes=env.mebibytes("MODELHUB_MAX_UPLOAD_MB", cls.max_upload_bytes),
            max_pixels=env.number("MODELHUB_MAX_PIXELS", cls.max_pixels),
            max_image_bytes=env.mebibytes("MODELHUB_MAX_IMAGE_MB", cls.max_image_bytes),
            url_timeout=float(env.number("MODELHUB_URL_TIMEOUT", int(cls.url_timeout))),
            url_downloads=env.number("MODELHUB_URL_DOWNLOADS", cls.url_downloads),
            max_connections=env.number("MODELHUB_MAX_CONNECTIONS", cls.max_connections),
            allow_private_urls=env.flag("MODELHUB_ALLOW_PRIVATE_URLS"),
            mirror_dirs=tuple(
                path for path in env.text("MODELHUB_MIRROR", "").split(os.pathsep) if path
            ),
        )

    def working_folder(self) -> str:
        """Scratch space for uploads and downloads: `working_dir`, else a per-process folder,
        in memory (/dev/shm) when that has room for every request thread's largest upload."""
        needed = self.server_threads * self.max_upload_bytes
        return self.working_dir or _default_working_dir(needed)

    def output_folder(self) -> str:
        """Where array outputs are written: `output_dir`, else a per-process folder."""
        return self.output_dir or _process_temp_dir("output")


class _Environment:
    """Typed reads of environment variables; blank counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, "").strip() or default

    def number(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None

    def mebibytes(self, name: str, default_bytes: int) -> int:
        """A size given in MiB, in bytes."""
        return self.number(name, default_bytes // _MIB) * _MIB

    def flag(self, name: str) -> bool:
        return self.text(name, "0").lower() in {"1", "true", "yes", "on"}


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


def _default_working_dir(needed: int) -> str:
    """Decided once per process, by the first caller: the room in /dev/shm may change, the
    folder must not."""
    with _default_working_lock:
        if not _default_working:
            _default_working.append(
                _process_temp_dir("working", _memory_folder_with_room(needed))
            )
        return _default_working[0]


def _memory_folder_with_room(needed: int) -> str | None:
    """`/dev/shm` if this process may write there and it has `needed` bytes of room (Docker
    gives containers 64 MB of it); else None. Should it fill up all the same (other
    processes, multi-input requests), a request that cannot write its files is answered 503."""
    try:
        usage = os.statvfs(_MEMORY_FOLDER)
    except OSError:
        return None
    room = usage.f_bavail * usage.f_frsize
    if room < needed or not os.access(_MEMORY_FOLDER, os.W_OK | os.X_OK):
        return None
    return _MEMORY_FOLDER
