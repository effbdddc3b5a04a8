"""What pip knows about the installed engine: its version and where its licence files are.

The version is written once, in framework/pyproject.toml, and read back here from the
installed metadata, so `modelhub --version`, the metrics and the REST API cannot disagree.
"""

from __future__ import annotations

import os
from importlib import metadata

DISTRIBUTION = "modelhub-engine"
_SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_LICENCE_FILE = "LICENSE"


def engine_version() -> str:
    """The installed engine's version; "0+unknown" when the source tree is imported without
    being installed (a plain PYTHONPATH), which has no metadata to read."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def licence_dir() -> str:
    """The folder holding the engine's LICENSE and NOTICE (ModelHub's `framework_dir`).

    In a source tree or an editable install that is framework/ itself; a regular install
    (a wheel) keeps them in its metadata folder (`<dist-info>/licenses/`), not beside the code.
    """
    if os.path.isfile(os.path.join(_SOURCE_DIR, _LICENCE_FILE)):
        return _SOURCE_DIR
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return _SOURCE_DIR
    for path in files:
        if path.name == _LICENCE_FILE and path.parent.name == "licenses":
            return os.path.dirname(str(path.locate()))
    return _SOURCE_DIR
