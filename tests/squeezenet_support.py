"""Shared helpers of the SqueezeNet, init and CLI tests: where the assets are, a built package.

The assets (weights, labels, photos, ImageNet sample) are found the way the init step finds
them: by name in the MODELHUB_MIRROR folders; when that is unset, in ../shared/assets beside
the repository (the CI sets MODELHUB_MIRROR to that folder). A missing asset fails the test
with a message saying so: these tests never skip.
"""

from __future__ import annotations

import functools
import os
import sys

import pytest

from modelhubapi import externalfiles, settings

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRIB_DIR = os.path.join(REPO_DIR, "contrib_src")
FRAMEWORK_DIR = os.path.join(REPO_DIR, "framework")
DEFAULT_MIRROR = os.path.normpath(os.path.join(REPO_DIR, "..", "shared", "assets"))


def mirrors() -> list[str]:
    return [os.path.abspath(path) for path in settings.mirror_dirs()] or [DEFAULT_MIRROR]


def asset(name: str) -> str:
    """Path of the asset file called `name` in the mirror folders."""
    found = externalfiles.find_in_mirrors(name, mirrors())
    if not found:
        pytest.fail(f"asset {name} not found in {mirrors()} (set MODELHUB_MIRROR)")
    return found[0]


def asset_dir(name: str) -> str:
    """Path of the asset folder called `name` (e.g. imagenet-sample-100) in the mirrors."""
    for mirror in mirrors():
        for folder, subfolders, _ in os.walk(mirror):
            if name in subfolders:
                return os.path.join(folder, name)
    pytest.fail(f"asset folder {name} not found in {mirrors()} (set MODELHUB_MIRROR)")


def reference_file(name: str) -> str:
    """A file of the shared reference folder (../shared/reference), beside the assets."""
    candidates = [os.path.join(REPO_DIR, "..", "shared", "reference", name)]
    candidates += [os.path.join(mirror, "..", "reference", name) for mirror in mirrors()]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    pytest.fail(f"reference file {name} not found in {candidates}")


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python running the engine and the package as `make` does."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([FRAMEWORK_DIR, CONTRIB_DIR])
    env["MODELHUB_MIRROR"] = os.pathsep.join(mirrors())
    env.update(extra)
    return env


@functools.cache
def ensure_built() -> str:
    """Run the real init step into contrib_src once per session (idempotent); the package dir.

    Also puts contrib_src on sys.path, as PYTHONPATH does for `make test`.
    """
    externalfiles.run_init(CONTRIB_DIR, mirrors=mirrors(), progress=False)
    if CONTRIB_DIR not in sys.path:
        sys.path.insert(0, CONTRIB_DIR)
    return CONTRIB_DIR


def contrib_on_path() -> None:
    """Make the package's modules importable without building anything."""
    if CONTRIB_DIR not in sys.path:
        sys.path.insert(0, CONTRIB_DIR)
