"""A loopback stand-in for the parts of GitHub that ModelHub's start.py reads: the model
index (models.json), the contents API listing of the model's repository, and raw files.

The model's repository is this one as git tracks it (tracked files, read from the working
tree); the external files of init/init.json are served from the asset mirror, at their
upstream URLs. Every URL `https://HOST/PATH` is served at `/HOST/PATH` (the `sitecustomize`
beside this file sends urllib there), by `loopback_servers.serving`.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from loopback_servers import Handler, Route, Server, answering, serving
from squeezenet_support import REPO_DIR, external_files, tracked_files

MODEL_REPO = "modelhub-ai/squeezenet"
INDEX_PATH = "/raw.githubusercontent.com/modelhub-ai/modelhub/master/models.json"
CONTENTS = f"/api.github.com/repos/{MODEL_REPO}/contents"
RAW = f"/raw.githubusercontent.com/{MODEL_REPO}/master"


@contextmanager
def github_standin(models_json: str) -> Iterator[Server]:
    """A loopback server playing GitHub with this repository as MODEL_REPO, until the block
    ends; its `requests` record what start.py asked for."""
    with serving(_routes(models_json)) as server:
        yield server


def _routes(models_json: str) -> dict[str, Route]:
    tracked = tracked_files()
    routes = {INDEX_PATH: _file(models_json)}
    for entry in external_files():
        url = urllib.parse.urlsplit(entry["src_url"])
        routes[f"/{url.netloc}{url.path}"] = _file(entry["asset"])
    for path in tracked:
        routes[f"{RAW}/{path}"] = _file(os.path.join(REPO_DIR, path))
    folders = {os.path.dirname(path) for path in tracked}
    folders |= {parent for folder in folders for parent in _parents(folder)}
    for folder in folders:
        listing = json.dumps(_listing(tracked, folder)).encode()
        routes[f"{CONTENTS}/{folder}".rstrip("/")] = answering(200, listing)
    return routes


def _parents(folder: str) -> Iterator[str]:
    while folder:
        folder = os.path.dirname(folder)
        yield folder


def _listing(tracked: list[str], folder: str) -> list[dict]:
    """The contents API's answer for `folder`: its files and subfolders."""
    prefix = f"{folder}/" if folder else ""
    entries = {}
    for path in sorted(tracked):
        if not path.startswith(prefix):
            continue
        name, _, deeper = path[len(prefix) :].partition("/")
        entries[name] = {
            "name": name,
            "type": "dir" if deeper else "file",
            "download_url": None if deeper else f"https:/{RAW}/{path}",
        }
    return list(entries.values())


def _file(path: str) -> Route:
    def route(handler: Handler) -> None:
        with open(path, "rb") as handle:
            handler.answer(200, handle.read())

    return route
