"""Where a prediction's input comes from: a multipart upload, a raw `image/...` body, a URL,
or a multi-input `.json` naming each input by URL or by a local path.

Everything lands in the request's scratch files. URLs go through `safety.urls` and take a
slot of the URL-download gate (`concurrency`); a multi-input `.json` may name local files
only inside `sample_data/` or the data folder (`MODELHUB_DATA_DIR`); any other path is
refused alike, whether or not it exists.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import request

from . import uploads
from .concurrency import Gate
from .pythonapi import check_input_names, input_reference, is_url, package_path
from .safety import files, urls
from .safety.errors import InputError
from .scratch import Scratch
from .settings import Settings

# A POST body of this Content-Type is the input itself (`curl --data-binary`), not a form.
RAW_BODY_PREFIX = "image/"


class Inputs:
    """Fetches the inputs of the requests of one app, under its settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url_limits = urls.Limits.for_callers(settings)
        self._url_downloads = Gate(settings.url_downloads, "URL downloads")

    def receive(self, scratch: Scratch) -> str:
        """Save the request's input (upload, raw body or URL) in a scratch file; its path."""
        destination = scratch.new_path("input")
        if request.method == "POST" and request.mimetype.startswith(RAW_BODY_PREFIX):
            uploads.save_body(request.stream, destination)
            return destination
        if request.method == "POST":
            uploads.save_file_field(request.stream, request.content_type or "", destination)
            return destination
        url = request.args.get("fileurl", "")
        if not url:
            raise InputError(
                'Give the input as ?fileurl=<http(s) URL>, or POST it in the form field "file".'
            )
        with self._url_downloads.slot():
            urls.download(url, destination, self._url_limits)
        return destination

    def fetch_all(
        self, json_path: str, scratch: Scratch, config: dict, contrib_src_dir: str
    ) -> dict:
        """A multi-input request with every input the config declares made a local file:
        URLs downloaded to scratch files, local paths confined. Entries the config does
        not declare are dropped, so a request cannot make the server fetch more than the
        model needs."""
        inputs = _read_json_object(json_path)
        fetched: dict[str, Any] = {"format": inputs["format"]} if "format" in inputs else {}
        for number, name in enumerate(check_input_names(inputs, config)):
            reference = input_reference(name, inputs[name])
            if is_url(reference):
                path = self._download(reference, scratch, f"input-{number}")
            else:
                path = _confine(reference, contrib_src_dir, self._settings.data_dir)
            fetched[name] = {**inputs[name], "fileurl": path}
        return fetched

    def _download(self, url: str, scratch: Scratch, name: str) -> str:
        """Download one input of a multi-input request and check it is a sound file.

        It is checked against its own sniffed type, not the config's per-input formats:
        ModelHub configs spell those inconsistently (`type` or `format`, lists or strings),
        and the model's loaders refuse what they cannot read anyway.
        """
        destination = scratch.new_path(name)
        with self._url_downloads.slot():
            urls.download(url, destination, self._url_limits)
        mime = files.sniff_mime(destination)
        if mime is None:
            raise InputError("Incorrect file type.")
        files.check_input_file(destination, [mime], self._settings)
        return scratch.add_suffix(destination, files.file_suffix(mime))


def _confine(reference: str, contrib_src_dir: str, data_dir: str | None) -> str:
    """The real path of a local input if it lies in `sample_data/` or `data_dir`.

    Existence is not checked (the model reports a missing file itself, as in ModelHub),
    so the one refusal below says nothing about paths outside those folders.
    """
    allowed = [os.path.join(contrib_src_dir, "sample_data")]
    if data_dir:
        allowed.append(data_dir)
    try:
        path = os.path.realpath(package_path(contrib_src_dir, reference))
        for folder in allowed:
            root = os.path.realpath(folder)
            if os.path.commonpath([root, path]) == root:
                return path
    except ValueError:
        pass
    raise InputError("Local input files must be in sample_data/ or the data folder.")


def _read_json_object(path: str) -> dict:
    """A multi-input request: a JSON object with one entry per input."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError):
        content = None
    if not isinstance(content, dict):
        raise InputError("A multi-input request must be a JSON object with one entry per input.")
    return content
