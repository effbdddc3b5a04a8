"""The init step: put a contributor package's external files in place, verified, then build.

ModelHub packages list files too big for git in `init/init.json` under
`external_contrib_files`, each with ModelHub's keys `src_url` and `dest_file_path` (relative to
the folder holding `init/`; ModelHub writes it with a leading "/"). This engine also requires a
`sha256` per file: a model that silently runs on a wrong or damaged file is worse than one that
does not start.

For each file: a destination that already has the right SHA-256 is left alone (not even
rewritten, so a second run changes nothing); otherwise the file is taken from a mirror folder
(`MODELHUB_MIRROR`, searched recursively by file name: offline set-ups and CI) or downloaded
(the engine's HTTP client, `safety.urls`: http/https only, a timeout on every wait, size
cap). Bytes are hashed while they are written to a temporary file beside the destination,
which replaces the destination only when the hash matches (`atomicfiles`, durably): a wrong
checksum or a broken download leaves nothing half-written and names the file in the error.

Convention: when the package ships `build.py` next to `inference.py`, its `main()` runs after
the files are in place, to derive model files from the fetched ones (e.g. an ONNX model from
published weights). It must be idempotent itself; it runs in this process with the package
folder on sys.path, as the package's own code does when it is served.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from tqdm import tqdm

from modelhubapi.atomicfiles import atomic_output
from modelhubapi.safety import urls
from modelhubapi.safety.errors import InputError
from modelhubapi.settings import Settings

# Generous: ModelHub models reach a few hundred MB. It bounds a server that streams forever.
MAX_DOWNLOAD_BYTES = 4 * 1024**3
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class InitError(Exception):
    """The init step failed: init.json invalid, a file not obtainable, or build.py failed.

    The message names the file concerned."""


@dataclass(frozen=True)
class ExternalFile:
    url: str
    sha256: str
    dest: str  # absolute path
    label: str  # dest_file_path as written in init.json, for messages

    @property
    def names(self) -> tuple[str, ...]:
        """File names to look for in mirror folders: the upstream name, then the local one."""
        upstream = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(self.url).path))
        local = os.path.basename(self.dest)
        return tuple(dict.fromkeys(name for name in (upstream, local) if name))


@dataclass(frozen=True)
class Outcome:
    file: ExternalFile
    source: str  # "present", "mirror" or "download"
    origin: str = ""  # mirror path or URL the file came from


# --- init.json -------------------------------------------------------------------------------


def load_manifest(init_json: str) -> list[ExternalFile]:
    """The external files of an init.json; destinations are resolved against its package root."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(init_json)))
    try:
        with open(init_json, encoding="utf-8") as handle:
            entries = json.load(handle).get("external_contrib_files", [])
    except (OSError, ValueError, AttributeError) as error:
        raise InitError(f"Cannot read {init_json}: {error}") from None
    if not isinstance(entries, list):
        raise InitError(f"{init_json}: external_contrib_files must be a list")
    return [_parse_entry(entry, root, init_json) for entry in entries]


def _parse_entry(entry: object, root: str, init_json: str) -> ExternalFile:
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key), str) for key in ("src_url", "dest_file_path", "sha256")
    ):
        raise InitError(
            f"{init_json}: each external file needs string fields src_url, dest_file_path and "
            f"sha256, got {entry!r}"
        )
    label = entry["dest_file_path"]
    sha256 = entry["sha256"].lower()
    if not _SHA256.fullmatch(sha256):
        raise InitError(f"{label}: sha256 must be 64 hexadecimal digits")
    dest = os.path.normpath(os.path.join(root, label.lstrip("/")))
    if os.path.commonpath([root, dest]) != root or dest == root:
        raise InitError(f"{label}: destination must be a file inside {root}")
    return ExternalFile(entry["src_url"], sha256, dest, label.lstrip("/"))


# --- writing ---------------------------------------------------------------------------------


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class _ChecksumMismatch(Exception):
    def __init__(self, actual: str):
        super().__init__(f"SHA-256 {actual}")
        self.actual = actual


class _HashingWriter:
    def __init__(self, target: BinaryIO):
        self._target = target
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._target.write(data)


@contextlib.contextmanager
def _verified_output(file: ExternalFile) -> Iterator[_HashingWriter]:
    with atomic_output(file.dest, durable=True) as handle:
        writer = _HashingWriter(handle)
        yield writer
        actual = writer.digest.hexdigest()
        if actual != file.sha256:
            raise _ChecksumMismatch(actual)


# --- sources ---------------------------------------------------------------------------------


def _mirror_index(mirrors: Sequence[str]) -> dict[str, list[str]]:
    """File name -> paths under the mirror folders, in mirror order then sorted path order."""
    index: dict[str, list[str]] = {}
    for mirror in mirrors:
        for folder, subfolders, names in os.walk(os.path.abspath(mirror)):
            subfolders.sort()
            for name in sorted(names):
                index.setdefault(name, []).append(os.path.join(folder, name))
    return index


def find_in_mirrors(name: str, mirrors: Sequence[str]) -> list[str]:
    """Paths of files called `name` anywhere under the mirror folders, first match first."""
    return _mirror_index(mirrors).get(name, [])


def _download(file: ExternalFile, out: _HashingWriter, progress: bool, wait: float) -> None:
    """Download through the engine's one HTTP client (`safety.urls`), with its redirect,
    connection and size rules; private hosts and the environment's proxy allowed (init.json
    is the package's own configuration, and mirrors on a local network are common), no
    overall deadline (files reach hundreds of MB) but `wait` seconds for any one wait."""
    limits = urls.Limits(
        max_bytes=MAX_DOWNLOAD_BYTES,
        deadline=None,
        wait=wait,
        allow_private=True,
        use_proxy=True,
    )
    with urls.open_url(file.url, limits) as body, tqdm(
        total=body.length,
        unit="B",
        unit_scale=True,
        desc=os.path.basename(file.dest),
        disable=not progress,
        leave=False,
    ) as bar:
        body.copy_to(_Progress(out, bar))


class _Progress:
    """A writer that moves a progress bar by what it passes on."""

    def __init__(self, target: _HashingWriter, bar: tqdm) -> None:
        self._target = target
        self._bar = bar

    def write(self, data: bytes) -> int:
        self._bar.update(len(data))
        return self._target.write(data)


def _describe(error: BaseException) -> str:
    if isinstance(error, urls.TooLarge):
        return f"more than the {error.limit}-byte cap"
    if isinstance(error, InputError):
        return error.message
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


def _fetch(
    file: ExternalFile, mirror_index: dict[str, list[str]], progress: bool, wait: float
) -> Outcome:
    """Put a verified copy at `file.dest`: from the first mirror copy that matches, else the URL."""
    problems = []
    for name in file.names:
        for candidate in mirror_index.get(name, []):
            try:
                with open(candidate, "rb") as source, _verified_output(file) as out:
                    shutil.copyfileobj(source, out, _CHUNK)
            except _ChecksumMismatch as mismatch:
                problems.append(f"mirror copy {candidate} has {mismatch}")
                continue
            except OSError as error:
                problems.append(f"copying mirror file {candidate} failed ({error.strerror})")
                continue
            return Outcome(file, "mirror", candidate)
    if not problems:
        problems.append("not found in the mirror folders (MODELHUB_MIRROR)")
    try:
        with _verified_output(file) as out:
            _download(file, out, progress, wait)
    except _ChecksumMismatch as mismatch:
        problems.append(f"download from {file.url} has {mismatch}")
    except (OSError, InputError, http.client.HTTPException) as error:
        problems.append(f"download from {file.url} failed: {_describe(error)}")
    else:
        return Outcome(file, "download", file.url)
    raise InitError(
        f"{file.label}: no copy with the expected SHA-256 {file.sha256}: " + "; ".join(problems)
    )


def ensure_files(
    files: Sequence[ExternalFile],
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
    settings: Settings | None = None,
) -> list[Outcome]:
    """Make every destination hold its verified file; see the module docstring for the order.

    With `progress`, downloads show a progress bar and each fetched file a line on stderr;
    nothing is printed for files already in place. `settings` (read from the environment
    when not given) set the download's longest wait (`url_timeout`) and the default of
    `mirrors`, `mirror_dirs` (relative paths are relative to the current directory, as for
    any path given in the environment).
    """
    settings = settings or Settings.from_environment()
    mirrors = settings.mirror_dirs if mirrors is None else mirrors
    index: dict[str, list[str]] | None = None
    outcomes = []
    for file in files:
        if os.path.isfile(file.dest) and file_sha256(file.dest) == file.sha256:
            outcomes.append(Outcome(file, "present"))
            continue
        if index is None:  # walk the mirrors only when something is actually missing
            index = _mirror_index(mirrors)
        outcome = _fetch(file, index, progress, settings.url_timeout)
        if progress:
            tqdm.write(f"fetched {file.label} from {outcome.origin}", file=sys.stderr)
        outcomes.append(outcome)
    return outcomes


# --- build hook ------------------------------------------------------------------------------


def run_build_hook(contrib_dir: str) -> bool:
    """Run `<contrib_dir>/build.py`'s main() if the package has one; True if it ran."""
    path = os.path.join(contrib_dir, "build.py")
    if not os.path.isfile(path):
        return False
    contrib_dir = os.path.abspath(contrib_dir)
    added = contrib_dir not in sys.path
    if added:  # the hook imports the package's own modules by name
        sys.path.insert(0, contrib_dir)
    spec = importlib.util.spec_from_file_location("modelhub_contrib_build", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        module.main()
    except Exception as error:
        raise InitError(f"{path} failed: {error}") from error
    finally:
        if added:  # another package's modules must not be found first later on
            sys.path.remove(contrib_dir)
    return True


def default_init_json(contrib_dir: str) -> str:
    """ModelHub's layout: init/init.json beside the contrib_src folder."""
    return os.path.join(os.path.dirname(os.path.abspath(contrib_dir)), "init", "init.json")


def run_init(
    contrib_dir: str,
    init_json: str | None = None,
    mirrors: Sequence[str] | None = None,
    build: bool = True,
    progress: bool = True,
    settings: Settings | None = None,
) -> list[Outcome]:
    """The whole init step: external files (see `ensure_files`), then the package's build
    hook."""
    manifest = load_manifest(init_json or default_init_json(contrib_dir))
    outcomes = ensure_files(manifest, mirrors, progress, settings)
    if build:
        run_build_hook(contrib_dir)
    return outcomes
