"""schemathesis against the live app with the SqueezeNet package: no 5xx, no answer off the spec.

Every operation of the served document gets a bounded number of generated requests, valid
(positive) and invalid (negative) ones, sent in-process through WSGI (nothing listens on a
port), and every answer goes through schemathesis's checks. `fileurl` is made harmless:
every host name resolves to loopback, which the URL rule refuses before any connection, so
random URLs neither reach the network nor wait on DNS.

schemathesis's own pytest integration (`from_fixture`) does not run on pytest 9, hence
hypothesis's `@given` over each operation's strategy (schemathesis's Python API).
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from squeezenet_support import ensure_built

from modelhubapi import ModelHubRESTAPI
from modelhubapi.safety import urls
from modelhubapi.settings import Settings

OPENAPI_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "framework", "modelhubapi", "openapi.json"
)
MAX_EXAMPLES = 30
# Operations whose input the schema cannot fully describe: a schema-valid file name, URL or
# upload is still refused (400) when it names no sample or is no image the model accepts.
MODEL_DECIDES = {"predictURL", "predictUpload", "predictSample"}


def generated_runs() -> list:
    """(path, method, kind) for every documented operation: its examples, if it has any
    (the only way random data names a real sample and gets a real prediction), positive data,
    and negative data where there is something to break (parameters or a body)."""
    with open(OPENAPI_PATH, encoding="utf-8") as handle:
        paths = json.load(handle)["paths"]
    runs = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            kinds = ["positive"]
            if "parameters" in operation or "requestBody" in operation:
                kinds.append("negative")
            if any("example" in parameter for parameter in operation.get("parameters", [])):
                kinds.append("examples")
            runs += [pytest.param(path, method, kind, id=f"{method.upper()} {path} {kind}")
                     for kind in kinds]
    return runs


def strategy(operation, kind: str):
    if kind == "examples":
        return st.one_of(operation.get_strategies_from_examples())
    return operation.as_strategy(generation_mode=GenerationMode(kind))


@pytest.fixture(scope="module")
def web_schema(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        # Every name is "loopback": refused by the URL rule, with no DNS query and no connection.
        patch.setattr(urls, "resolve_host", lambda host, port: ["127.0.0.1"])
        contrib_src = ensure_built()
        from inference import Model

        api = ModelHubRESTAPI(Model(), contrib_src, Settings(allow_private_urls=False))
        api.working_folder = str(tmp_path_factory.mktemp("working"))
        api.api.output_folder = str(tmp_path_factory.mktemp("output"))
        # The document under test is the one the app serves.
        yield schemathesis.openapi.from_wsgi("/api/openapi.json", api.app)


@pytest.mark.parametrize(("path", "method", "kind"), generated_runs())
def test_operation_keeps_its_promises(web_schema, path, method, kind):
    operation = web_schema[path][method.upper()]
    model_decides = operation.definition.raw.get("operationId") in MODEL_DECIDES
    excluded = [schemathesis.checks.positive_data_acceptance] if model_decides else []

    @given(case=strategy(operation, kind))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_as_documented(case):
        case.call_and_validate(excluded_checks=excluded)

    answers_as_documented()
