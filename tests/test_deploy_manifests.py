"""The Kubernetes manifests (deploy/kubernetes): valid for a pinned Kubernetes version, and
carrying the settings the deployment depends on, so that an edit cannot drop one silently.

Validation is kubernetes-validate's schemas for `KUBERNETES_VERSION`, strict (an unknown or
misspelt field fails). The resources are the ones the kustomizations list, so a file missing
from a kustomization, or listed but absent, fails too.
"""

from __future__ import annotations

import copy
import os
import re

import kubernetes_validate
import pytest
import yaml
from squeezenet_support import REPO_DIR

from modelhubapi.webservice import DRAIN_SECONDS

KUBERNETES_DIR = os.path.join(REPO_DIR, "deploy", "kubernetes")
BASE_DIR = os.path.join(KUBERNETES_DIR, "base")
OVERLAY_DIR = os.path.join(KUBERNETES_DIR, "overlays", "array-outputs")
INGRESS_EXAMPLE = os.path.join(KUBERNETES_DIR, "ingress-example.yaml")
# The oldest release with the preStop `sleep` action generally available.
KUBERNETES_VERSION = "1.34.0"
IMAGE = "squeezenet-modelhub-serve"
# Peak resident memory of one server under load, measured by `python -m deploy.capacity`.
PEAK_RSS_MIB = 212
MEMORY_BACKED = ("/working", "/output")


def _load(path: str) -> dict:
    with open(path) as file:
        return yaml.safe_load(file)


def _resource_files(kustomization_dir: str) -> list[str]:
    """The resource files a kustomization lists, following bases into their own lists."""
    files = []
    for entry in _load(os.path.join(kustomization_dir, "kustomization.yaml"))["resources"]:
        path = os.path.normpath(os.path.join(kustomization_dir, entry))
        files += _resource_files(path) if os.path.isdir(path) else [path]
    return files


def _resources() -> dict[str, dict]:
    """Every resource of the base, the overlay and the Ingress example, by kind."""
    paths = set(_resource_files(OVERLAY_DIR)) | {INGRESS_EXAMPLE}
    resources = [_load(path) for path in sorted(paths)]
    by_kind = {resource["kind"]: resource for resource in resources}
    assert len(by_kind) == len(resources), "one resource of each kind"
    return by_kind


RESOURCES = _resources()
DEPLOYMENT = RESOURCES["Deployment"]
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def _env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in CONTAINER["env"]}


def _volume_at(mount_path: str) -> dict:
    (mount,) = [item for item in CONTAINER["volumeMounts"] if item["mountPath"] == mount_path]
    (volume,) = [item for item in POD["volumes"] if item["name"] == mount["name"]]
    return volume


@pytest.mark.parametrize("kind", sorted(RESOURCES))
def test_each_resource_is_valid_for_the_pinned_kubernetes_version(kind):
    kubernetes_validate.validate(RESOURCES[kind], KUBERNETES_VERSION, strict=True)


def test_the_set_holds_what_a_deployment_needs():
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert expected | {"Ingress", "PersistentVolumeClaim"} == set(RESOURCES)
    base_kinds = {_load(path)["kind"] for path in _resource_files(BASE_DIR)}
    assert base_kinds == expected


def test_the_invalid_is_refused():
    # The validation above can fail: a misspelt field and a wrong type are caught.
    misspelt = copy.deepcopy(DEPLOYMENT)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    wrong_type = copy.deepcopy(DEPLOYMENT)
    wrong_type["spec"]["replicas"] = "three"
    for resource in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_container_serves_the_slim_image_on_an_unprivileged_port():
    assert CONTAINER["image"].split(":")[0] == IMAGE
    (port,) = CONTAINER["ports"]
    assert _env()["PORT"] == str(port["containerPort"]) and port["containerPort"] >= 1024
    assert _env()["HOST"] == "0.0.0.0"
    service_port = RESOURCES["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] == port["name"]


def test_probes_ask_the_server_whether_it_is_ready_and_alive():
    assert CONTAINER["readinessProbe"]["httpGet"]["path"] == "/api/ready"
    assert CONTAINER["livenessProbe"]["httpGet"]["path"] == "/api/health"
    assert CONTAINER["startupProbe"]["httpGet"]["path"] == "/api/health"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert CONTAINER[probe]["httpGet"]["port"] == CONTAINER["ports"][0]["name"]


def test_requests_and_limits_are_set_and_memory_covers_the_memory_backed_volumes():
    resources = CONTAINER["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[section]), section
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"]
    assert _mebibytes(resources["requests"]["memory"]) >= PEAK_RSS_MIB
    in_memory = sum(_mebibytes(_volume_at(path)["emptyDir"]["sizeLimit"]) for path in MEMORY_BACKED)
    assert _mebibytes(resources["limits"]["memory"]) >= PEAK_RSS_MIB + in_memory


def test_the_pod_runs_unprivileged_on_a_read_only_root():
    assert POD["securityContext"]["runAsNonRoot"] is True
    assert POD["securityContext"]["runAsUser"] != 0
    security = CONTAINER["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert POD["automountServiceAccountToken"] is False


@pytest.mark.parametrize("path", MEMORY_BACKED)
def test_scratch_and_outputs_are_memory_backed_and_bounded(path):
    assert _env()[{"/working": "MODELHUB_WORKING_DIR", "/output": "MODELHUB_OUTPUT_DIR"}[path]]
    empty_dir = _volume_at(path)["emptyDir"]
    assert empty_dir["medium"] == "Memory" and empty_dir["sizeLimit"]


def test_the_grace_period_covers_the_pre_stop_pause_and_the_drain():
    pause = CONTAINER["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0
    assert POD["terminationGracePeriodSeconds"] > pause + DRAIN_SECONDS


def test_autoscaler_budget_and_ingress_point_at_the_deployment_and_service():
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert DEPLOYMENT["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert RESOURCES["Service"]["spec"]["selector"].items() <= labels.items()
    assert (
        RESOURCES["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items()
        <= labels.items()
    )
    hpa = RESOURCES["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == DEPLOYMENT["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2  # one pod lost still leaves one serving
    backend = RESOURCES["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == RESOURCES["Service"]["metadata"]["name"]


def test_the_array_outputs_overlay_mounts_one_shared_claim_at_output():
    # The patch names the base's volume by position, guarded by a `test` of its name; the
    # patched Deployment is what kustomize would produce, and it must validate too.
    patch_file = _load(os.path.join(OVERLAY_DIR, "kustomization.yaml"))["patches"][0]["path"]
    guard, replace = _load(os.path.join(OVERLAY_DIR, patch_file))
    assert guard["op"] == "test" and replace["op"] == "replace"
    index = int(replace["path"].rsplit("/", 1)[1])
    assert guard["path"] == f"{replace['path']}/name"
    assert POD["volumes"][index]["name"] == guard["value"] == _volume_at("/output")["name"]
    claim = RESOURCES["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert replace["value"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    patched = copy.deepcopy(DEPLOYMENT)
    patched["spec"]["template"]["spec"]["volumes"][index] = replace["value"]
    kubernetes_validate.validate(patched, KUBERNETES_VERSION, strict=True)
