"""ModelHub's REST API: the Flask app in front of one `ModelHubAPI`.

The routes, their answers and the attributes `app`, `api` and `working_folder` are ModelHub's
contract. This module owns the routes and the request's life; the Python API does the
model's work, and two modules beside this one do the rest:

- `inputs`: where a prediction's input comes from (upload, raw body, URL, multi-input
  `.json`), each request's files in its own scratch files inside `working_folder`, removed
  when the request ends whatever happens; nothing else in the working folder is touched.
- `httperrors`: every error as JSON `{"error": ...}`.

What a file is comes from its bytes (`safety.files`), and names picked by callers go
through `safety.names`. How many requests run the model at once, and how many slow
downloads may run, is `concurrency`'s rule; shutting down gently is `lifecycle`'s.

The app is built with one immutable `Settings` (read from the environment at construction
when not given) and reads no environment variable afterwards. `working_folder` and `api`
(with its `output_folder`) are read on every request, so callers may change them after
construction, as ModelHub's tests do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request, send_file, send_from_directory
from werkzeug.exceptions import NotFound, ServiceUnavailable

from . import metrics
from .concurrency import MODEL_FILE_DOWNLOADS, Gate, model_runs
from .distribution import engine_version
from .httperrors import SHUTTING_DOWN, register_error_handlers
from .inputs import Inputs
from .lifecycle import Draining
from .pythonapi import ConfigError, ModelHubAPI, input_names
from .safety import files, names
from .safety.errors import InputError
from .scratch import Scratch, scratch_files
from .settings import Settings

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("modelhubapi.access")

OPENAPI_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")
_STARTED_KEY = "modelhubapi.started"
# What a draining server still answers: a load balancer's probes.
_PROBES = frozenset({"ready", "health"})


class ModelHubRESTAPI:
    """The Flask app (`app`) serving one model through its Python API (`api`), under
    `settings`."""

    def __init__(
        self, model: Any, contrib_src_dir: str, settings: Settings | None = None
    ) -> None:
        self.settings = settings or Settings.from_environment()
        self.api = ModelHubAPI(model, contrib_src_dir, self.settings)
        self.working_folder = self.settings.working_folder()
        self.app = Flask(__name__)
        # Werkzeug answers 413 from the Content-Length before the body is read, and cuts a
        # body without one at the limit.
        self.app.config["MAX_CONTENT_LENGTH"] = self.settings.max_upload_bytes
        self._ready = False
        self.draining = Draining()
        self._inputs = Inputs(self.settings)
        self._model_file_downloads = Gate(MODEL_FILE_DOWNLOADS, "model-file downloads")
        self._model_runs = model_runs()
        self._warm_up_lock = threading.Lock()
        self._add_routes()
        self._add_hooks()
        register_error_handlers(self.app)
        self._instrument()

    @property
    def model(self) -> Any:
        """The model the Python API runs (ModelHub's attribute)."""
        return self.api.model

    @property
    def contrib_src_dir(self) -> str:
        """The contributor package folder (ModelHub's attribute)."""
        return self.api.contrib_src_dir

    # -------------------------------------------------------------------------
    # Routes: the model card
    # -------------------------------------------------------------------------

    def get_config(self) -> Response:
        """GET /api/get_config: the model's config."""
        return self._jsonify(self.api.get_config())

    def get_legal(self) -> Response:
        """GET /api/get_legal: the licences of the engine, the model and the samples."""
        return self._jsonify(self.api.get_legal())

    def get_model_io(self) -> Response:
        """GET /api/get_model_io: the model's inputs and outputs."""
        return self._jsonify(self.api.get_model_io())

    def get_samples(self) -> Response:
        """GET /api/get_samples: absolute URLs of the sample files, for the web app."""
        samples = self.api.get_samples()
        if "error" in samples:
            return self._jsonify(samples)
        return jsonify(
            [f"{request.url_root}api/samples/{quote(name)}" for name in samples["files"]]
        )

    def get_model_files(self) -> Response:
        """GET /api/get_model_files: the whole `model/` folder as a zip.

        Built in an unnamed temporary file (model folders can be hundreds of MB, too much to
        hold in memory per request), which disappears when the response is closed. A client
        that does not read holds its download until the connection times out: so only a
        few run at once (`concurrency`).
        """
        model_folder = os.path.join(self.contrib_src_dir, "model")
        if not os.path.isdir(model_folder):
            raise ConfigError("The package has no model folder.")
        gate = self._model_file_downloads
        gate.enter()
        # Not a `with` block: the response reads the file after this returns, then closes it.
        # In the system's temporary folder, not the working folder, which may be in memory.
        archive = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            _zip_folder(model_folder, "model", archive)
            size = archive.tell()
            archive.seek(0)
        except BaseException:
            archive.close()
            gate.leave()
            raise
        response = Response(
            _file_chunks(archive), mimetype="application/zip", direct_passthrough=True
        )
        response.content_length = size
        name = f"{self._model_name().lower()}_model.zip"
        response.headers.set("Content-Disposition", "attachment", filename=name)
        response.call_on_close(archive.close)
        response.call_on_close(gate.leave)
        return response

    # -------------------------------------------------------------------------
    # Routes: files picked by name
    # -------------------------------------------------------------------------

    def _samples(self, sample_name: str) -> Response:
        """GET /api/samples/<name>: a sample file, with its MIME type."""
        return _send_named(os.path.join(self.contrib_src_dir, "sample_data"), sample_name)

    def _thumbnail(self, thumbnail_name: str) -> Response:
        """GET /api/thumbnail/<name>: a file of `model/` (the web app asks for thumbnail.jpg)."""
        return _send_named(os.path.join(self.contrib_src_dir, "model"), thumbnail_name)

    def _output(self, output_name: str) -> Response:
        """GET /api/output/<name>: an array output written by a prediction."""
        return _send_named(self.api.output_folder, output_name, mimetype="application/x-hdf5")

    # -------------------------------------------------------------------------
    # Routes: predictions
    # -------------------------------------------------------------------------

    def predict(self) -> Response:
        """POST /api/predict (multipart field `file`, or the whole body with an `image/...`
        Content-Type) or GET /api/predict?fileurl=URL."""
        config = self.api.get_config()
        accepted = self.api.accepted_formats(config)
        with self._scratch() as scratch:
            path = self._inputs.receive(scratch)
            mime = files.check_input_file(path, accepted, self.settings)
            path = scratch.add_suffix(path, files.file_suffix(mime))
            return jsonify(self._run(path, mime, scratch, request.url_root, config))

    def predict_sample(self) -> Response:
        """GET /api/predict_sample?filename=NAME: run the model on a sample file.

        An unknown name is a 400, not the file routes' 404: ModelHub's clients expect it.
        """
        folder = os.path.join(self.contrib_src_dir, "sample_data")
        try:
            path = names.resolve_name(folder, request.args.get("filename", ""))
        except InputError as error:
            raise InputError(error.message, 400) from None
        return jsonify(self._predict_sample(path, request.url_root))

    # -------------------------------------------------------------------------
    # Routes: operations and the web UI
    # -------------------------------------------------------------------------

    def health(self) -> Response:
        """GET /api/health: the process is up and answering."""
        return jsonify({"status": "ok"})

    def ready(self) -> Response:
        """GET /api/ready: 200 once the model has answered a warm-up prediction, else 503;
        503 again from the moment the server starts shutting down."""
        if self.draining.active:
            response = jsonify({"status": "draining", "error": SHUTTING_DOWN})
            response.status_code = 503
            return response
        if self.warm_up():
            return jsonify({"status": "ready"})
        response = jsonify(
            {"status": "not ready", "error": "The model has not answered a warm-up prediction."}
        )
        response.status_code = 503
        return response

    def index(self) -> Response:
        """GET /: the web UI."""
        return send_from_directory(self.app.static_folder, "index.html", max_age=0)

    def openapi(self) -> Response:
        """GET /api/openapi.json: the OpenAPI document describing these routes."""
        if not os.path.isfile(OPENAPI_PATH):
            raise NotFound()
        return send_file(OPENAPI_PATH, mimetype="application/json", max_age=0)

    def warm_up(self) -> bool:
        """Run the model once on the first sample, until that succeeds; True once it has.

        Called by the web service before it starts serving (so the first user does not pay
        for lazy initialisation) and by /api/ready. While one warm-up runs, other callers get
        False at once instead of queueing behind it: a load balancer's probe must stay quick.
        """
        if self._ready:
            return True
        if not self._warm_up_lock.acquire(blocking=False):
            return False
        try:
            if not self._ready:
                self._ready = self._predict_first_sample()
        finally:
            self._warm_up_lock.release()
        return self._ready

    # -------------------------------------------------------------------------
    # Set-up
    # -------------------------------------------------------------------------

    def _add_routes(self) -> None:
        # Werkzeug would answer a doubled slash (`/api/thumbnail//config.json`) with an HTML
        # redirect to the merged path, before any handler runs: such a path is simply unknown.
        self.app.url_map.merge_slashes = False
        routes = (
            ("/", "index", self.index, ["GET"]),
            ("/api/get_config", "get_config", self.get_config, ["GET"]),
            ("/api/get_legal", "get_legal", self.get_legal, ["GET"]),
            ("/api/get_model_io", "get_model_io", self.get_model_io, ["GET"]),
            ("/api/get_model_files", "get_model_files", self.get_model_files, ["GET"]),
            ("/api/get_samples", "get_samples", self.get_samples, ["GET"]),
            ("/api/samples/<sample_name>", "samples", self._samples, ["GET"]),
            ("/api/thumbnail/<thumbnail_name>", "thumbnail", self._thumbnail, ["GET"]),
            ("/api/output/<output_name>", "output", self._output, ["GET"]),
            ("/api/predict", "predict", self.predict, ["GET", "POST"]),
            ("/api/predict_sample", "predict_sample", self.predict_sample, ["GET"]),
            ("/api/health", "health", self.health, ["GET"]),
            ("/api/ready", "ready", self.ready, ["GET"]),
            ("/api/openapi.json", "openapi", self.openapi, ["GET"]),
        )
        for rule, endpoint, view, methods in routes:
            self.app.add_url_rule(rule, endpoint, view, methods=methods)

    def _add_hooks(self) -> None:
        self.app.before_request(self._admit)
        self.app.teardown_request(self._release)
        self.app.before_request(_start_request)
        self.app.after_request(_allow_cross_origin)
        self.app.after_request(_log_access)

    def _instrument(self) -> None:
        """Prometheus metrics at /metrics (see `metrics`), labelled with the model's card."""
        config = self.api.get_config()
        meta = config.get("meta")
        metrics.instrument(
            self.app,
            model_id=str(config.get("id", "unknown")),
            model_name=str(meta.get("name", "unknown")) if isinstance(meta, dict) else "unknown",
            engine_version=engine_version(),
        )

    # -------------------------------------------------------------------------
    # Private helpers
    # -------------------------------------------------------------------------

    def _admit(self) -> None:
        """Count the request in; while draining, refuse it unless it is a probe."""
        self.draining.enter()
        if self.draining.active and request.endpoint not in _PROBES:
            raise ServiceUnavailable(retry_after=1)

    def _release(self, error: BaseException | None) -> None:
        self.draining.leave()

    def _jsonify(self, content: Any) -> Response:
        """JSON of a Python API answer: 400 if it is `{"error": ...}` (ModelHub's rule)."""
        response = jsonify(content)
        if isinstance(content, dict) and "error" in content:
            response.status_code = 400
        return response

    def _scratch(self) -> contextlib.AbstractContextManager[Scratch]:
        """This request's own files in the working folder, removed when it ends."""
        return scratch_files(self.working_folder)

    def _model_name(self) -> str:
        meta = self.api.get_config().get("meta")
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) and name else "model"

    def _predict_sample(self, path: str, url_root: str, numpyToFile: bool = True) -> dict:
        """Predict on a sample file (trusted: it ships with the package, so no type check)."""
        with self._scratch() as scratch:
            return self._run(
                path, files.sniff_mime(path), scratch, url_root, self.api.get_config(), numpyToFile
            )

    def _predict_first_sample(self) -> bool:
        """The warm-up: one prediction on the first sample, arrays answered inline so it
        leaves no file behind. Failures are logged, not raised."""
        samples = self.api.get_samples()
        if not samples.get("files"):
            logger.warning("Not ready: the package has no sample to warm the model up on.")
            return False
        path = os.path.join(samples["folder"], samples["files"][0])
        try:
            self._predict_sample(path, url_root="", numpyToFile=False)
        except Exception:
            logger.exception("Warm-up prediction on sample %s failed", samples["files"][0])
            return False
        logger.info("Warm-up prediction on sample %s succeeded", samples["files"][0])
        return True

    def _run(
        self,
        path: str,
        mime: str | None,
        scratch: Scratch,
        url_root: str,
        config: dict,
        numpyToFile: bool = True,
    ) -> dict:
        """Run the Python API on a file: a multi-input `.json` first has its inputs fetched.

        `config` is the one the request read at its start: every step of a request sees the
        same config, even if the file changes meanwhile.
        """
        model_input: str | dict = path
        input_files = [path]
        if mime == "application/json" and "error" not in config and input_names(config):
            model_input = self._inputs.fetch_all(path, scratch, config, self.contrib_src_dir)
            input_files = [model_input[name]["fileurl"] for name in input_names(config)]
        with (
            self._model_runs,
            metrics.inference_timer(),
            files.blame_corrupt_files(input_files, self.settings),
        ):
            return self.api.predict_or_raise(model_input, numpyToFile, url_root, config)


def _file_chunks(file: IO[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    """The rest of `file`, a chunk at a time: the server asks for each one only once the
    client has taken the last, so the gate around the download sees the whole send."""
    while chunk := file.read(size):
        yield chunk


def _zip_folder(folder: str, archive_root: str, target: IO[bytes]) -> None:
    """Write `folder` into a zip as `archive_root/` with every file and subfolder below it
    (symbolic links are skipped: they could point outside the package)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(folder, archive_root + "/")
        for current, subfolders, file_names in os.walk(folder):
            subfolders.sort()
            relative = os.path.relpath(current, folder)
            prefix = archive_root if relative == "." else f"{archive_root}/{relative}"
            for name in subfolders:
                if not os.path.islink(os.path.join(current, name)):
                    archive.write(os.path.join(current, name), f"{prefix}/{name}/")
            for name in sorted(file_names):
                path = os.path.join(current, name)
                if not os.path.islink(path):
                    archive.write(path, f"{prefix}/{name}")


def _send_named(folder: str, name: str, mimetype: str | None = None) -> Response:
    """A file picked by a caller-given name: only a plain name directly in `folder`."""
    path = names.resolve_name(folder, name)
    return send_file(path, mimetype=mimetype, max_age=0)


def _start_request() -> None:
    """The start time of the request, for the access log."""
    request.environ[_STARTED_KEY] = time.perf_counter()


def _allow_cross_origin(response: Response) -> Response:
    """Open CORS: the ModelHub web app calls this API from another origin."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "Content-Type"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _log_access(response: Response) -> Response:
    """The access log line of a request the app answered."""
    started = request.environ.get(_STARTED_KEY)
    milliseconds = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    log_access(
        request.method, request.path, response.status_code, milliseconds, response.content_length
    )
    return response


def log_access(method: str, path: str, status: int, milliseconds: float, size: int | None) -> None:
    """One line per request: method, path, status, milliseconds, bytes (never contents).

    The path is escaped, so a caller cannot forge log lines with encoded line breaks.
    """
    access_logger.info(
        "%s %s %d %.1fms %s",
        method,
        path.encode("unicode_escape").decode("ascii"),
        status,
        milliseconds,
        size if size is not None else "-",
    )
