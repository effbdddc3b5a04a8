"""Prometheus metrics for the REST API, scraped at `GET /metrics`.

`instrument(app, ...)` adds request metrics (count by route template and status, latency
histogram, requests in flight), build info and the `/metrics` route to one Flask app, in a
registry of its own so several apps in one process (tests) never share counters.

Inference time and model load time are facts about the process, not about one request, so
they are recorded through module functions (`observe_inference`, `inference_timer`,
`record_model_load`) that reach every instrumented app alive in the process. The model is
usually loaded before the app exists, so the load time is remembered and given to apps
instrumented later.

With several worker processes set `PROMETHEUS_MULTIPROC_DIR` (an empty folder) before the
workers start: prometheus_client then keeps values in files there, and `/metrics` adds up
all processes.
"""

from __future__ import annotations

import os
import platform
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Kept in the WSGI environ, which belongs to one request (flask.g is shared by requests
# nested in one app context).
_STARTED_KEY = "modelhub.metrics_started"
# Label for requests no route matched (404s, bad methods): keeps label cardinality bounded
# whatever paths clients invent.
UNMATCHED_ROUTE = "<unmatched>"
# The same for methods: any method clients make up is counted under one label.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
OTHER_METHOD = "other"
# Inference of one image takes milliseconds on a small CNN and seconds on a 3-D segmentation.
_INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _AppMetrics:
    """The metric objects of one instrumented app, all in the app's own registry."""

    def __init__(self, model_id: str, model_name: str, engine_version: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelhub_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelhub_http_request_duration_seconds",
            "Time from the start of a request to its response, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelhub_http_requests_in_flight",
            "Requests being handled right now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.inference = Histogram(
            "modelhub_inference_duration_seconds",
            "Time of one prediction (pre-processing, inference and post-processing).",
            buckets=_INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.model_load = Gauge(
            "modelhub_model_load_seconds",
            "Time taken to load the model when the process started.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        build_info = Gauge(
            "modelhub_build_info",
            "Always 1; the labels say which engine, Python and model this process runs.",
            ["engine_version", "python_version", "model_id", "model_name"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        build_info.labels(engine_version, platform.python_version(), model_id, model_name).set(1)


# Every instrumented app still alive (its hooks hold its metrics); an app going away takes
# its metrics with it.
_live_metrics: weakref.WeakSet[_AppMetrics] = weakref.WeakSet()
_model_load_seconds: float | None = None


def instrument(app: flask.Flask, *, model_id: str, model_name: str, engine_version: str) -> None:
    """Count and time every request of `app` and serve the metrics at `GET /metrics`."""
    metrics = _AppMetrics(model_id, model_name, engine_version)
    if _model_load_seconds is not None:
        metrics.model_load.set(_model_load_seconds)
    _live_metrics.add(metrics)

    @app.before_request
    def _start_timer() -> None:
        flask.request.environ[_STARTED_KEY] = time.perf_counter()
        metrics.in_flight.inc()

    @app.after_request
    def _count(response: flask.Response) -> flask.Response:
        # A response made by an earlier before_request hook (say, a size check) skipped
        # _start_timer: it is still counted, but has no start time to measure from.
        route = flask.request.url_rule.rule if flask.request.url_rule else UNMATCHED_ROUTE
        method = flask.request.method
        method = method if method in KNOWN_METHODS else OTHER_METHOD
        metrics.requests.labels(method, route, str(response.status_code)).inc()
        started = flask.request.environ.get(_STARTED_KEY)
        if started is not None:
            metrics.latency.labels(method, route).observe(time.perf_counter() - started)
        return response

    @app.teardown_request
    def _leave(_error: BaseException | None) -> None:
        # Teardown runs whatever happened, so the in-flight gauge cannot drift upwards.
        if flask.request.environ.pop(_STARTED_KEY, None) is not None:
            metrics.in_flight.dec()

    # prometheus_client's own variable (not one of settings.py's), read once like it: when it
    # is set at import, the library keeps values in files, and the scrape must add up every
    # process's files instead of reading this process's registry.
    multiprocess_mode = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    app.add_url_rule("/metrics", "metrics", lambda: _scrape(metrics, multiprocess_mode))


def _scrape(metrics: _AppMetrics, multiprocess_mode: bool) -> flask.Response:
    if multiprocess_mode:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    return flask.Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def observe_inference(seconds: float) -> None:
    """Record the duration of one prediction in every instrumented app."""
    for metrics in list(_live_metrics):
        metrics.inference.observe(seconds)


@contextmanager
def inference_timer() -> Iterator[None]:
    """Time the body of a `with` block as one prediction, even if it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_inference(time.perf_counter() - started)


def record_model_load(seconds: float) -> None:
    """Remember how long loading the model took; apps instrumented later report it too."""
    global _model_load_seconds
    _model_load_seconds = seconds
    for metrics in list(_live_metrics):
        metrics.model_load.set(seconds)
