"""ModelHub's Python API: one contributor model and its package, seen from Python.

`ModelHubAPI(model, contrib_src_dir)` is what notebooks (`from modelapi import model`), the
REST API and the command line all talk to. Its public names and return shapes are
ModelHub's contract (camelCase `numpyToFile` included): every `get_*` returns a dict, or
`{"error": ...}` when the package is broken, and `predict` never raises.

Callers that must tell failures apart (the REST API answers 4xx or 500, the CLI picks an
exit code) use `predict_or_raise`, which reports each kind of failure as its own exception:
`InputError` (the caller's input), `ConfigError` (the package's `model/config.json`) and
`ModelError` (the model itself; what it raised is the `__cause__`).

Multi-input requests (a dict, or a path to a `.json` file, with one entry per input named in
the config) are checked against the config's input names and handed to the model with
relative local paths anchored at the package. The Python API trusts its caller with local
paths and URLs, as ModelHub did: confining paths and downloading URLs is the REST layer's job,
because only there do they come from strangers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from . import distribution, outputs
from .safety.errors import InputError
from .settings import Settings

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%d-%H-%M-%S-%f"
# Keys of config["model"]["io"]["input"] that describe the input as a whole, not a named input.
_NOT_INPUT_NAMES = frozenset({"format", "single"})
# "scheme://": what makes a reference in a multi-input request a URL rather than a local path.
_URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# The legal texts of get_legal: result key, where the file lives, how an error names it.
_LEGAL_FILES = (
    ("modelhub_license", "framework", "LICENSE"),
    ("modelhub_acknowledgements", "framework", "NOTICE"),
    ("model_license", "package", os.path.join("license", "model")),
    ("sample_data_license", "package", os.path.join("license", "sample_data")),
)


class ConfigError(Exception):
    """The package's `model/config.json` is missing, unreadable, or lacks what a request needs.

    The message names files relative to the package, so it is safe to show to anyone.
    """


class ModelError(Exception):
    """The contributor's model failed.

    Either its `infer` raised (that exception is the `__cause__`) or what it returned does not
    fit the outputs its config declares.
    """


def input_names(config: dict) -> list[str]:
    """Names of the inputs a multi-input config declares; empty for a single-input model."""
    section = _io_section(config, "input")
    return [
        name
        for name, spec in section.items()
        if name not in _NOT_INPUT_NAMES and isinstance(spec, dict)
    ]


def is_url(reference: str) -> bool:
    """True if a reference in a multi-input request is a URL (any scheme), not a local path."""
    return bool(_URL_PATTERN.match(reference))


def package_path(contrib_src_dir: str, reference: str) -> str:
    """Where a local path named in a multi-input request points.

    Relative paths are relative to the contributor package (ModelHub ran models with the
    package as the current directory and its examples say `sample_data/...`), so requests
    work the same whatever the current directory of this process is.
    """
    return os.path.join(contrib_src_dir, reference)


def input_reference(name: str, entry: Any) -> str:
    """The `fileurl` of one entry of a multi-input request; InputError if it has none."""
    if not isinstance(entry, dict) or "fileurl" not in entry:
        raise InputError(f'Input "{name}" must be an object with a "fileurl".')
    return str(entry["fileurl"])


def check_input_names(inputs: dict, config: dict) -> list[str]:
    """The config's input names, after checking that `inputs` has an entry for each."""
    names = input_names(config)
    missing = [name for name in names if name not in inputs]
    if missing:
        listed = ", ".join(f'"{name}"' for name in missing)
        raise InputError(f"The inputs do not match the model's config: missing {listed}.")
    return names


def describe_error(error: BaseException) -> str:
    """The text `predict` reports for a failure: the message of our own errors, else the
    exception's class name and message (what ModelHub's clients search for, e.g.
    `NotImplementedError`)."""
    if isinstance(error, InputError):
        return error.message
    if isinstance(error, ModelError) and error.__cause__ is not None:
        error = error.__cause__
    elif isinstance(error, ConfigError | ModelError):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class ModelHubAPI:
    """Generic access to one model: its config, legal texts, samples and predictions.

    Attributes (ModelHub's names): `model`, `contrib_src_dir`, `output_folder` (where array
    outputs are written as HDF5; callers may change it at any time) and `framework_dir` (the
    folder holding the engine's LICENSE and NOTICE); `settings`, the engine's settings
    (read from the environment at construction when not given).
    """

    # (path and stat signature, text) of the config file last read; see get_config.
    _remembered: tuple[tuple, str] | None = None

    def __init__(
        self, model: Any, contrib_src_dir: str, settings: Settings | None = None
    ) -> None:
        self.model = model
        self.contrib_src_dir = contrib_src_dir
        self.settings = settings or Settings.from_environment()
        self.output_folder = self.settings.output_folder()
        self.framework_dir = distribution.licence_dir()

    def get_config(self) -> dict:
        """The parsed `model/config.json`, or `{"error": ...}`.

        Every request reads it, so its text is kept while the file's inode, size and
        modification time stay the same: a stat instead of an open and a read. It is parsed
        anew for each call, so a caller may change what it gets.
        """
        config = self._load_json(
            os.path.join(self.contrib_src_dir, "model", "config.json"), self._remembered_text
        )
        if not isinstance(config, dict):
            return {"error": "model/config.json is not a JSON object."}
        return config

    def get_legal(self) -> dict:
        """The engine's licence and acknowledgements and the model's and sample data's
        licences, keyed `modelhub_license`, `modelhub_acknowledgements`, `model_license`,
        `sample_data_license`; `{"error": ...}` if one is missing."""
        folders = {"framework": self.framework_dir, "package": self.contrib_src_dir}
        legal = {}
        for key, folder, name in _LEGAL_FILES:
            try:
                with open(os.path.join(folders[folder], name), encoding="utf-8") as handle:
                    legal[key] = handle.read()
            except (OSError, UnicodeDecodeError):
                where = "the engine's" if folder == "framework" else "the package's"
                return {"error": f"Could not read {where} {name}."}
        return legal

    def get_model_io(self) -> dict:
        """`config["model"]["io"]`: the model's inputs and outputs; or `{"error": ...}`."""
        config = self.get_config()
        if "error" in config:
            return config
        try:
            return _section(config, "model", "io")
        except ConfigError as error:
            return {"error": str(error)}

    def accepted_formats(self, config: dict | None = None) -> list[str]:
        """The MIME types the model's input accepts: `input.format`, or `input.single.format`
        when only that is given. Every entry point checks files against this one list.

        `config`: the config already read (by default it is read now).

        Raises:
            ConfigError: the config is unreadable or lists no input formats.
        """
        section = _io_section(self.get_config() if config is None else config, "input")
        accepted = section.get("format")
        if accepted is None and isinstance(section.get("single"), dict):
            accepted = section["single"].get("format")
        if not isinstance(accepted, list):
            raise ConfigError("model/config.json lists no input formats.")
        return accepted

    def get_samples(self) -> dict:
        """`{"folder": <package>/sample_data, "files": [names]}`, or `{"error": ...}`.

        Hidden files are left out: no route would serve them.
        """
        folder = os.path.join(self.contrib_src_dir, "sample_data")
        try:
            with os.scandir(folder) as entries:
                files = sorted(
                    entry.name
                    for entry in entries
                    if entry.is_file() and not entry.name.startswith(".")
                )
        except OSError:
            return {"error": "The package has no sample_data folder."}
        return {"folder": folder, "files": files}

    def predict(self, input: Any, numpyToFile: bool = True, url_root: str = "") -> dict:
        """Run the model on `input` (a file path, a `.json` multi-input file, or a dict of
        inputs) and format its outputs as the config describes; `{"error": ...}` on any
        failure, never an exception (see `predict_or_raise`).

        `numpyToFile`: write array outputs to HDF5 files in `output_folder` and answer their
        URL (`url_root` + `api/output/<name>`), or, if False, answer them as nested lists.
        """
        try:
            return self.predict_or_raise(input, numpyToFile, url_root)
        except Exception as error:
            logger.debug("Prediction failed", exc_info=error)
            return {"error": describe_error(error)}

    def predict_or_raise(
        self, input: Any, numpyToFile: bool = True, url_root: str = "", config: dict | None = None
    ) -> dict:
        """`predict`, but failures raise `InputError`, `ConfigError` or `ModelError`
        (anything else is a fault of the engine or the machine).

        The model runs before the config is required, so a package without a config still
        reports what its model does (ModelHub's clients rely on that order). `config`: the
        config the caller already read (by default it is read now).
        """
        if config is None:
            config = self.get_config()
        model_input = self._unpack_inputs(input, config)
        started = time.perf_counter()
        try:
            output = self.model.infer(model_input)
        except Exception as error:
            raise ModelError("The model failed.") from error
        processing_time = time.perf_counter() - started
        if "error" in config:
            raise ConfigError(config["error"])
        return {
            "output": self._format_outputs(output, config, numpyToFile, url_root),
            "timestamp": datetime.now().strftime(TIMESTAMP_FORMAT),
            "processing_time": round(processing_time, 3),
            "model": {
                "id": _section(config, "id"),
                "name": _section(config, "meta", "name"),
            },
        }

    # -------------------------------------------------------------------------
    # Private helpers (ModelHub's names where its tests or subclasses use them)
    # -------------------------------------------------------------------------

    def _load_json(self, file_path: str, read: Callable[[str], str] | None = None) -> Any:
        """The parsed JSON file (its text from `read`, by default read now), or
        `{"error": ...}` naming it relative to the package."""
        try:
            return json.loads((read or _read_text)(file_path))
        except OSError as error:
            reason = error.strerror or "unreadable"
            return {"error": f"Could not read {self._display_name(file_path)}: {reason}."}
        except ValueError:
            return {"error": f"{self._display_name(file_path)} is not valid JSON."}

    def _write_json(self, file_path: str, output_dict: Any) -> dict | None:
        """Write `output_dict` as JSON to `file_path`: None, or `{"error": ...}` if it cannot
        be written. ModelHub's engine has this helper and its tests call it."""
        try:
            with open(file_path, "w", encoding="utf-8") as handle:
                json.dump(output_dict, handle, ensure_ascii=False)
        except (OSError, TypeError, ValueError) as error:
            return {"error": str(error)}
        return None

    def _remembered_text(self, file_path: str) -> str:
        """The text of `file_path`, read again only when the file has changed."""
        status = os.stat(file_path)
        key = (file_path, status.st_ino, status.st_size, status.st_mtime_ns)
        remembered = self._remembered
        if remembered is None or remembered[0] != key:
            remembered = self._remembered = (key, _read_text(file_path))
        return remembered[1]

    def _display_name(self, file_path: str) -> str:
        """A file's name for messages: relative to the package, never a full server path."""
        package = os.path.realpath(self.contrib_src_dir)
        path = os.path.realpath(file_path)
        if os.path.commonpath([package, path]) == package:
            return os.path.relpath(path, package)
        return os.path.basename(path)

    def _unpack_inputs(self, input: Any, config: dict) -> Any:
        """What the model's `infer` gets: a multi-input dict checked against the config, or
        the caller's input unchanged (a path as a string)."""
        if isinstance(input, os.PathLike):
            input = os.fspath(input)
        if isinstance(input, dict):
            return self._check_input_compliance(input, config)
        if (
            isinstance(input, str)
            and input.lower().endswith(".json")
            and self._is_multi_input(config)
        ):
            return self._check_input_compliance(self._read_input_json(input), config)
        return input

    def _is_multi_input(self, config: dict) -> bool:
        """True if the config names inputs (a `.json` input then lists them); a single-input
        model that accepts JSON gets the file itself."""
        if "error" in config:
            raise ConfigError(config["error"])
        return bool(input_names(config))

    def _read_input_json(self, file_path: str) -> dict:
        """A multi-input `.json` file's content; InputError if it is not a JSON object."""
        content = self._load_json(file_path)
        if isinstance(content, dict) and set(content) == {"error"}:
            raise InputError(content["error"])
        if not isinstance(content, dict):
            raise InputError("The input JSON file must hold an object with one entry per input.")
        return content

    def _check_input_compliance(self, input_dict: dict, config: dict) -> dict:
        """The inputs, checked to name every input of the config, with each declared
        input's `fileurl` a string and relative local paths anchored at the package."""
        if "error" in config:
            raise ConfigError(config["error"])
        inputs = dict(input_dict)
        for name in check_input_names(input_dict, config):
            reference = input_reference(name, input_dict[name])
            if not is_url(reference) and not os.path.isabs(reference):
                reference = package_path(self.contrib_src_dir, reference)
            inputs[name] = {**input_dict[name], "fileurl": reference}
        return inputs

    def _format_outputs(
        self, output: Any, config: dict, numpyToFile: bool, url_root: str
    ) -> list[dict]:
        """One entry per output, in the config's order."""
        specs = _section(config, "model", "io", "output")
        if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
            raise ConfigError("model/config.json must list the outputs in model.io.output.")
        values = self._correct_output_list_wrapping(output, config)
        if len(values) > len(specs):
            raise ModelError(
                f"The model returned {len(values)} outputs; its config declares {len(specs)}."
            )
        return [
            self._format_output(value, spec, numpyToFile, url_root)
            for value, spec in zip(values, specs, strict=False)
        ]

    def _correct_output_list_wrapping(self, output: Any, config: dict) -> list:
        """The model's outputs as a list: a single output (anything but a list, a list when
        the config declares one output, or a label list) is wrapped."""
        if not isinstance(output, list):
            return [output]
        single_output = len(_section(config, "model", "io", "output")) == 1
        is_label_list = bool(output) and all(isinstance(item, dict) for item in output)
        return [output] if single_output or is_label_list else output

    def _format_output(self, value: Any, spec: dict, numpyToFile: bool, url_root: str) -> dict:
        """One output: its prediction, shape, and type, name and description from the config."""
        name = str(spec.get("name", ""))
        if isinstance(value, np.ndarray):
            shape = list(value.shape)
            if numpyToFile:
                file_name = outputs.write_hdf5(
                    value, self.output_folder, name, self.settings.output_max_age
                )
                prediction = f"{url_root}api/output/{file_name}"
            else:
                prediction = value.tolist()
        else:
            shape = [len(value)] if isinstance(value, list | tuple | dict) else []
            prediction = _jsonable(value)
        return {
            "prediction": prediction,
            "shape": shape,
            "type": spec.get("type"),
            "name": name,
            "description": spec.get("description", ""),
        }


def _read_text(file_path: str) -> str:
    with open(file_path, encoding="utf-8") as handle:
        return handle.read()


def _section(config: dict, *keys: str) -> Any:
    """`config[k1][k2]...`, or ConfigError naming the missing part."""
    value: Any = config
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            path = ".".join(keys[: depth + 1])
            raise ConfigError(f"model/config.json has no {path}.")
        value = value[key]
    return value


def _io_section(config: dict, direction: str) -> dict:
    """`config["model"]["io"][direction]` as a dict, or ConfigError."""
    if "error" in config:
        raise ConfigError(config["error"])
    section = _section(config, "model", "io", direction)
    if not isinstance(section, dict):
        raise ConfigError(f"model/config.json: model.io.{direction} must be an object.")
    return section


def _jsonable(value: Any) -> Any:
    """`value` with NumPy scalars and arrays inside lists and dicts made plain Python, so a
    model may answer e.g. `{"probability": np.float32(0.7)}` and still be served as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
