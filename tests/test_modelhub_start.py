"""ModelHub's own start.py and test_integration.py, unmodified, against the ModelHub image.

start.py runs as a ModelHub user runs it: it downloads the model from "GitHub" (a loopback
stand-in serving this repository's tracked files and the external files; see
modelhub_clients/), then `docker run -it ...` with the fresh download mounted over
/contrib_src: no model file, a folder the container's user cannot write. `docker` is podman
(modelhub_clients/docker). Each mode must serve or work: basic, expert (-e), bash (-b) and
data (-md DIR).

Needs the image (`make docker-check` builds it and runs these tests); root and podman.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from loopback_servers import Server, free_port
from modelhub_clients.github_standin import github_standin
from squeezenet_support import asset, reference_file

pytestmark = pytest.mark.container

CLIENTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modelhub_clients")
IMAGE = "localhost/squeezenet-modelhub:latest"
READY_SECONDS = 10  # from `docker run` to /api/ready, as a ModelHub user waits


@pytest.fixture(scope="module")
def image() -> str:
    if (
        shutil.which("podman") is None
        or subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode
    ):
        pytest.fail(f"{IMAGE} is missing: `make docker-check` builds it and runs these tests")
    return IMAGE


@pytest.fixture(scope="module")
def standin():
    with github_standin(reference_file("modelhub/models.json")) as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, image, standin) -> str:
    """The user's folder, with the model downloaded into squeezenet/ by start.py's first run
    (a shell, left at once), so every test finds it whichever runs first."""
    folder = str(tmp_path_factory.mktemp("user"))
    first = StartPy(folder, standin, "-b")
    try:
        first.wait_for_text("bash mode", timeout=120)
        first.type("exit\n")
        assert first.process.wait(timeout=60) == 0, first.output
    finally:
        first.stop()
    return folder


def client_env(standin: Server) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = CLIENTS_DIR + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = CLIENTS_DIR  # sitecustomize: https:// goes to the stand-in
    env["GITHUB_STANDIN"] = standin.url("")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("CONTAINERS_CONF", "/tmp/container-check.conf")
    return env


class StartPy:
    """`python start.py squeezenet ARGS` in a terminal of its own, its output collected."""

    def __init__(self, workdir: str, standin: Server, *args: str):
        self.api_port, self.jupyter_port = free_port(), free_port()
        self.started: float | None = None  # when start.py announced `docker run`
        self._output = bytearray()
        self._terminal, child = pty.openpty()
        self.process = subprocess.Popen(
            [
                sys.executable,
                reference_file("modelhub/start.py"),
                "squeezenet",
                "-ap",
                str(self.api_port),
                "-jp",
                str(self.jupyter_port),
                *args,
            ],
            cwd=workdir,
            env=client_env(standin),
            stdin=child,
            stdout=child,
            stderr=child,
            start_new_session=True,
        )
        os.close(child)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._terminal, 65536)
            except OSError:  # the terminal closed: start.py has ended
                return
            if not data:
                return
            self._output += data
            if self.started is None and b"started" in self._output:
                self.started = time.monotonic()

    @property
    def output(self) -> str:
        return self._output.decode(errors="replace")

    def wait_for_text(self, text: str, timeout: float) -> None:
        self._wait_for(lambda: text in self.output, repr(text), timeout)

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first line of output containing `text`, once its end is shown too."""

        def whole_line() -> str | None:
            lines = self.output.splitlines(keepends=True)
            return next((line for line in lines if text in line and line.endswith("\n")), None)

        return self._wait_for(whole_line, f"a whole line with {text!r}", timeout)

    def _wait_for(self, condition: Callable[[], Any], what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not (found := condition()):
            assert self.process.poll() is None or self._reader.is_alive(), self.output
            assert time.monotonic() < deadline, f"{what} not shown:\n{self.output}"
            time.sleep(0.05)
        return found

    def type(self, text: str) -> None:
        os.write(self._terminal, text.encode())

    def wait_until_ready(self) -> float:
        """Seconds from `docker run` until /api/ready answered 200."""
        self.wait_for_text("started", timeout=120)
        url = f"http://127.0.0.1:{self.api_port}/api/ready"
        while time.monotonic() - self.started < 2 * READY_SECONDS:
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, self.output
            time.sleep(0.1)
        pytest.fail(f"/api/ready did not answer:\n{self.output}")

    def container(self) -> str:
        listed = subprocess.run(
            ["podman", "ps", "-q", "--filter", f"ancestor={IMAGE}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(listed) == 1, listed
        return listed[0]

    def exec(self, *command: str) -> str:
        return subprocess.run(
            ["podman", "exec", self.container(), *command],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    def stop(self) -> None:
        for container in subprocess.run(
            ["podman", "ps", "-q", "--filter", f"ancestor={IMAGE}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split():
            subprocess.run(
                ["podman", "stop", "-t", "10", container], capture_output=True, check=False
            )
        try:
            self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            os.close(self._terminal)


@pytest.fixture
def start_py(workdir, standin):
    started = []

    def start(*args: str) -> StartPy:
        started.append(StartPy(workdir, standin, *args))
        return started[-1]

    yield start
    for run in started:
        run.stop()


def top_label(answer: requests.Response) -> str:
    assert answer.status_code == 200, answer.text
    return answer.json()["output"][0]["prediction"][0]["label"]


def test_basic_mode_serves_the_download_and_classifies(start_py, workdir, standin):
    run = start_py()
    seconds = run.wait_until_ready()
    assert seconds < READY_SECONDS, f"ready after {seconds:.1f} s"
    package = os.path.join(workdir, "squeezenet", "contrib_src")
    assert os.path.isfile(os.path.join(package, "weights", "compressed_SqueezeNet.net"))
    assert not any(name.endswith(".onnx") for name in os.listdir(os.path.join(package, "model")))
    assert any("models.json" in path for path, _ in standin.requests)

    base = f"http://127.0.0.1:{run.api_port}/api"
    assert top_label(requests.get(f"{base}/predict_sample?filename=bagel.jpg", timeout=30)) == (
        "bagel, beigel"
    )
    with open(asset("camel.jpeg"), "rb") as photo:
        upload = requests.post(f"{base}/predict", files={"file": photo}, timeout=30)
    assert top_label(upload).startswith("Arabian camel")
    assert run.exec("id", "-u").strip() != "0"


def test_data_mode_mounts_the_folder_at_data(start_py, tmp_path):
    data = tmp_path / "my data"
    data.mkdir()
    shutil.copyfile(asset("camel.jpeg"), data / "my_photo.jpg")
    run = start_py("-md", str(data))
    assert run.wait_until_ready() < READY_SECONDS
    result = json.loads(
        run.exec("python", "-m", "modelhubapi", "predict", "--json", "/data/my_photo.jpg")
    )
    assert result[0]["output"][0]["prediction"][0]["label"].startswith("Arabian camel")


def test_bash_mode_gives_a_shell_that_can_classify(start_py):
    run = start_py("-b")
    run.wait_for_text("bash mode", timeout=120)
    run.type("python -m modelhubapi predict sample_data/bagel.jpg; exit\n")
    run.wait_for_text("bagel, beigel", timeout=120)
    assert run.process.wait(timeout=60) == 0


def test_expert_mode_is_a_sandbox_with_a_token_that_saves(start_py):
    run = start_py("-e")
    announced = run.wait_for_line("?token=", timeout=120)  # whole, or the token is cut
    assert "Jupyter sandbox" in announced, run.output
    assert run.output.count("Jupyter sandbox") == 1, run.output
    token = announced.split("?token=", 1)[1].split()[0]
    base = f"http://127.0.0.1:{run.jupyter_port}/api/contents/sandbox.ipynb"
    deadline = time.monotonic() + 60
    while True:
        try:
            anonymous = requests.get(base, timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, run.output
            time.sleep(0.2)
    assert anonymous.status_code == 403
    headers = {"Authorization": f"token {token}"}
    notebook = requests.get(base, headers=headers, timeout=10)
    assert notebook.status_code == 200
    saved = requests.put(
        base,
        headers=headers,
        timeout=10,
        json={
            "type": "notebook",
            "format": "json",
            "content": notebook.json()["content"],
        },
    )
    assert saved.status_code == 200, saved.text
    assert "Traceback" not in run.output


def test_modelhubs_integration_test_passes(workdir, standin, tmp_path):
    """ModelHub's test_integration.py, starting the image itself. Its schema is ModelHub's
    with one fix: the empty `"required": []` under modelhub, which draft-04 forbids (it makes
    jsonschema refuse the schema for every model), is removed."""
    with open(reference_file("modelhub/config_schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    assert schema["properties"]["modelhub"].pop("required") == []
    schema_path = tmp_path / "config_schema.json"
    schema_path.write_text(json.dumps(schema))
    completed = subprocess.run(
        [
            sys.executable,
            reference_file("modelhub/test_integration.py"),
            "squeezenet",
            "-p",
            str(free_port()),
            "-s",
            str(schema_path),
            "-t",
            str(READY_SECONDS),
        ],
        cwd=workdir,
        env=client_env(standin),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "All integration tests have PASSED." in completed.stdout, completed.stdout
    assert completed.stdout.count("has PASSED") == 7
