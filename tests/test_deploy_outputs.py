"""Array outputs behind a load balancer: two replicas of the server, HAProxy in round robin.

A prediction writes an array output to the output folder of the replica that ran it and
answers its URL; the client's GET for that URL may reach the other replica. The deployment's
answer (deploy/kubernetes/overlays/array-outputs) is one output folder shared by every
replica, a ReadWriteMany volume in Kubernetes. Output names are unique across writers and a
file appears under its name only when complete, so replicas can share the folder as they are.
These tests show the failure with a folder per replica and its absence with a shared one.
"""

from __future__ import annotations

import io
import os
from contextlib import ExitStack

import h5py
import numpy as np
import requests
from haproxy_support import HAProxy
from mockmodels.single.inference import bright_mask
from squeezenet_support import ServerProcess

FETCHES = 4  # round robin: alternately the other replica and the one that wrote the file


def _predict_then_fetch(package: str, folder: str, output_dirs: list[str]) -> list:
    """Serve the mock package (a label list and an array) on one replica per output folder
    behind HAProxy, predict the sample once through it, then fetch the array's URL
    `FETCHES` times through it. Returns the fetch responses."""
    sample = os.path.join(package, "sample_data", "ramp_4x2.png")
    with ExitStack() as stack:
        replicas = {}
        for index, output_dir in enumerate(output_dirs):
            replica_folder = os.path.join(folder, f"replica{index}")
            os.makedirs(replica_folder)
            server = ServerProcess(
                replica_folder,
                "--contrib",
                package,
                PYTHONPATH="",
                MODELHUB_OUTPUT_DIR=output_dir,
            )
            stack.callback(server.stop)
            replicas[f"r{index}"] = server.port
        proxy = HAProxy(folder, replicas)
        stack.callback(proxy.stop)
        proxy.wait_for(lambda states: set(states.values()) == {"UP"}, "every replica UP")
        with open(sample, "rb") as file:
            answer = requests.post(f"{proxy.url}/api/predict", files={"file": file}, timeout=30)
        assert answer.status_code == 200, answer.text
        url = answer.json()["output"][1]["prediction"]
        assert url.startswith(f"{proxy.url}/api/output/"), url  # the balancer's address
        return [requests.get(url, timeout=30) for _ in range(FETCHES)]


def _mask(response: requests.Response) -> np.ndarray:
    with h5py.File(io.BytesIO(response.content), "r") as file:
        return file["mask"][()]


def test_a_shared_output_folder_serves_the_array_through_every_replica(tmp_path, mock_package):
    package = mock_package("single")
    shared = str(tmp_path / "shared-output")
    responses = _predict_then_fetch(package, str(tmp_path), [shared, shared])
    assert [response.status_code for response in responses] == [200] * FETCHES
    expected = bright_mask(os.path.join(package, "sample_data", "ramp_4x2.png"))
    for response in responses:
        np.testing.assert_array_equal(_mask(response), expected)


def test_a_folder_per_replica_loses_the_array_on_the_other_replica(tmp_path, mock_package):
    # What the shared folder is for: with a folder each, every other fetch reaches the
    # replica that never wrote the file.
    folders = [str(tmp_path / "output0"), str(tmp_path / "output1")]
    responses = _predict_then_fetch(mock_package("single"), str(tmp_path), folders)
    assert sorted(response.status_code for response in responses) == [200, 200, 404, 404]
