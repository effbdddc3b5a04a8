"""modelhubapi.metrics on a small Flask app of the test's own, scraped at /metrics."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import flask
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelhubapi import metrics

BUILD = {"model_id": "mock-id", "model_name": "mocknet", "engine_version": "9.9.9"}


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/items/<int:number>")
    def item(number: int):
        return {"number": number}

    @app.get("/boom")
    def boom():
        raise RuntimeError("a fault inside a view")

    @app.get("/scrape-inside")
    def scrape_inside():
        # Scraping while this request is still being handled shows it as in flight.
        return app.test_client().get("/metrics").get_data(as_text=True)

    metrics.instrument(app, **BUILD)
    return app


def sample(text: str, name: str, **labels: str) -> float | None:
    """Value of the sample `name` with exactly these labels in a Prometheus text scrape."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def scrape(app: flask.Flask) -> str:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture(autouse=True)
def no_model_load_recorded(monkeypatch):
    """Each test starts as if no model load had been recorded in this process."""
    monkeypatch.setattr(metrics, "_model_load_seconds", None)


def test_metrics_are_prometheus_text():
    response = make_app().test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE modelhub_http_requests_total counter" in response.get_data(as_text=True)


def test_requests_counted_by_route_template_and_status():
    app = make_app()
    client = app.test_client()
    for path in ("/items/1", "/items/2", "/nowhere/at/all", "/boom"):
        client.get(path)
    client.post("/items/1")
    text = scrape(app)

    def count(method: str, route: str, status: str) -> float | None:
        return sample(text, "modelhub_http_requests_total", method=method, route=route,
                      status=status)

    assert count("GET", "/items/<int:number>", "200") == 2
    assert count("GET", "/boom", "500") == 1
    # Unknown paths and wrong methods share one label value, whatever the path was.
    assert count("GET", metrics.UNMATCHED_ROUTE, "404") == 1
    assert count("POST", metrics.UNMATCHED_ROUTE, "405") == 1


def test_latency_histogram_per_route():
    app = make_app()
    client = app.test_client()
    client.get("/items/1")
    client.get("/items/2")
    text = scrape(app)
    labels = {"method": "GET", "route": "/items/<int:number>"}
    assert sample(text, "modelhub_http_request_duration_seconds_count", **labels) == 2
    assert sample(text, "modelhub_http_request_duration_seconds_bucket", le="+Inf", **labels) == 2
    assert sample(text, "modelhub_http_request_duration_seconds_sum", **labels) > 0


def test_requests_in_flight_rise_and_fall():
    app = make_app()
    client = app.test_client()
    inside = client.get("/scrape-inside").get_data(as_text=True)
    # The outer request and the scrape it made were both being handled.
    assert sample(inside, "modelhub_http_requests_in_flight") == 2
    client.get("/boom")
    # Afterwards only the scrape itself is in flight, even after a request that raised.
    assert sample(scrape(app), "modelhub_http_requests_in_flight") == 1


def test_inference_histogram():
    app = make_app()
    metrics.observe_inference(0.2)
    with metrics.inference_timer():
        pass
    with pytest.raises(ValueError), metrics.inference_timer():
        raise ValueError("a failed prediction still took time")
    text = scrape(app)
    assert sample(text, "modelhub_inference_duration_seconds_count") == 3
    assert sample(text, "modelhub_inference_duration_seconds_sum") >= 0.2
    assert sample(text, "modelhub_inference_duration_seconds_bucket", le="0.1") == 2


def test_model_load_time_recorded_before_and_after_instrumenting():
    metrics.record_model_load(1.5)
    app = make_app()
    assert sample(scrape(app), "modelhub_model_load_seconds") == 1.5
    metrics.record_model_load(2.25)
    assert sample(scrape(app), "modelhub_model_load_seconds") == 2.25


def test_build_info():
    text = scrape(make_app())
    assert sample(text, "modelhub_build_info", python_version=platform.python_version(),
                  **BUILD) == 1


def test_each_app_has_its_own_registry():
    first, second = make_app(), make_app()
    first.test_client().get("/items/1")
    labels = {"method": "GET", "route": "/items/<int:number>", "status": "200"}
    assert sample(scrape(first), "modelhub_http_requests_total", **labels) == 1
    assert sample(scrape(second), "modelhub_http_requests_total", **labels) is None


# Run in fresh interpreters: prometheus_client picks file-backed values at import time.
_WORKER = textwrap.dedent("""
    import sys
    import flask
    from modelhubapi import metrics

    app = flask.Flask("worker")
    app.add_url_rule("/ping", "ping", lambda: "pong")
    metrics.instrument(app, model_id="mock-id", model_name="mocknet", engine_version="9.9.9")
    client = app.test_client()
    for _ in range(int(sys.argv[1])):
        client.get("/ping")
    metrics.observe_inference(0.5)
    if sys.argv[2] == "scrape":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
""")


def test_multiprocess_scrape_adds_up_all_workers(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def worker(requests: int, action: str) -> str:
        done = subprocess.run([sys.executable, "-c", _WORKER, str(requests), action], env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    worker(3, "quiet")
    text = worker(4, "scrape")
    labels = {"method": "GET", "route": "/ping", "status": "200"}
    assert sample(text, "modelhub_http_requests_total", **labels) == 7
    assert sample(text, "modelhub_inference_duration_seconds_count") == 2


def test_made_up_methods_share_one_label_so_the_scrape_stays_bounded():
    app = make_app()
    client = app.test_client()
    assert client.open("/items/1", method="X").status_code == 405
    scrape(app)  # the scrape's own series
    before = len(scrape(app))
    for number in range(299):
        assert client.open("/items/1", method=f"X{number}").status_code == 405
    text = scrape(app)
    made_up = {"method": metrics.OTHER_METHOD, "route": metrics.UNMATCHED_ROUTE, "status": "405"}
    assert sample(text, "modelhub_http_requests_total", **made_up) == 300
    assert "X1" not in text
    assert len(text) < before + 200  # the same series, counted up
