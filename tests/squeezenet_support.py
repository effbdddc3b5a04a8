"""Shared helpers of the SqueezeNet, init and CLI tests: where the assets are, a built package.

The assets (weights, labels, photos, ImageNet sample) are found the way the init step finds
them: by name in the MODELHUB_MIRROR folders; when that is unset, in ../shared/assets beside
the repository (the CI sets MODELHUB_MIRROR to that folder). A missing asset fails the test
with a message saying so: these tests never skip.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest

from modelhubapi import externalfiles
from modelhubapi.settings import Settings

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRIB_DIR = os.path.join(REPO_DIR, "contrib_src")
FRAMEWORK_DIR = os.path.join(REPO_DIR, "framework")
DEFAULT_MIRROR = os.path.normpath(os.path.join(REPO_DIR, "..", "shared", "assets"))


def mirrors() -> list[str]:
    found = Settings.from_environment().mirror_dirs
    return [os.path.abspath(path) for path in found] or [DEFAULT_MIRROR]


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
    """Environment for a child Python running the installed engine and the package: the
    package's folder on the path, as ModelHub runs it (the CLI adds it by itself too)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = CONTRIB_DIR
    env["MODELHUB_MIRROR"] = os.pathsep.join(mirrors())
    env.update(extra)
    return env


@functools.cache
def ensure_built() -> str:
    """Run the real init step into contrib_src once per session (idempotent), building every
    model variant, which the tests compare; the package dir (which conftest put on sys.path).
    """
    externalfiles.run_init(CONTRIB_DIR, mirrors=mirrors(), build=False, progress=False)
    import build  # the package's build hook, contrib_src/build.py
    from squeezenet.modelfiles import VARIANTS

    build.main(VARIANTS)
    return CONTRIB_DIR


@functools.cache
def squeezenet_model() -> Any:
    """The real SqueezeNet model, loaded once per test session (it is thread-safe)."""
    ensure_built()
    from inference import Model

    return Model()


SERVING = re.compile(r"Serving on http://127\.0\.0\.1:(\d+)")


class ServerProcess:
    """`python -m modelhubapi serve [args]` on a free loopback port, its output in a file.

    Its working and output folders are in `folder`; `env` adds or overrides variables
    (MODELHUB_WORKING_DIR="" gives the server its own per-process folder instead).
    """

    def __init__(self, folder, *args: str, **env: str):
        self.log_path = os.path.join(folder, "server.log")
        working = os.path.join(folder, "working")
        os.makedirs(working)
        defaults = {
            "HOST": "127.0.0.1",
            "PORT": "0",
            "PYTHONUNBUFFERED": "1",
            "MODELHUB_WORKING_DIR": working,
            "MODELHUB_OUTPUT_DIR": os.path.join(folder, "output"),
        }
        environment = subprocess_env(**{**defaults, **env})
        self.working_folder = working
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelhubapi", "serve", *args],
                cwd=REPO_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.port = self._wait_for_port()
        except BaseException:  # the caller never gets the object to stop
            stop_process(self.process, timeout=30)
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = SERVING.search(self.log())
            if found:
                return int(found.group(1))
            assert self.process.poll() is None, self.log()
            time.sleep(0.05)
        pytest.fail(f"the server did not start:\n{self.log()}")

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as file:
            return file.read()

    def access_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if "modelhubapi.access" in line]

    def rss_kib(self, key: str = "VmRSS") -> int:
        """The process's memory in KiB: resident now (VmRSS), or at its peak (VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as file:
            for line in file:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
        raise AssertionError(f"no {key}")

    def stop(self) -> None:
        stop_process(self.process, timeout=30)


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if `process` has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tracked_files(folder: str = "") -> list[str]:
    """The files git tracks in this repository (below `folder`), relative to it."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", *([folder] if folder else [])],
        cwd=REPO_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return list(filter(None, listing.split("\0")))


def external_files() -> list[dict]:
    """init/init.json's external files (`src_url`, `dest_file_path`, `sha256`), each with
    `asset`: the mirror's copy, which its upstream host would serve."""
    with open(os.path.join(REPO_DIR, "init", "init.json"), encoding="utf-8") as handle:
        entries = json.load(handle)["external_contrib_files"]
    return [
        {**entry, "asset": asset(os.path.basename(entry["dest_file_path"]))} for entry in entries
    ]


def fetched_package(destination: str) -> str:
    """A copy of the package made as ModelHub's start script makes it: the git-tracked files
    of contrib_src/ plus init.json's external files, nothing built. Returns its folder."""
    copies = [(os.path.join(REPO_DIR, path), path) for path in tracked_files("contrib_src")]
    copies += [(entry["asset"], entry["dest_file_path"].lstrip("/")) for entry in external_files()]
    for source, relative in copies:
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
    return os.path.join(destination, "contrib_src")
