"""`modelhub ...` (and `python -m modelhubapi ...`) as a user runs it: help, results,
messages and exit codes.

Commands that load the model run in a child process (they change directory and import the
package, as the real command does); the rest call `cli.main` in process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

import pytest
import requests
from squeezenet_support import (
    CONTRIB_DIR,
    REPO_DIR,
    ServerProcess,
    asset,
    asset_dir,
    ensure_built,
    subprocess_env,
)

from modelhubapi import cli

COMMANDS = ["init", "predict", "evaluate", "serve"]


def run(*args, cwd=None, **env):
    ensure_built()
    return subprocess.run(
        [sys.executable, "-m", "modelhubapi", *args],
        cwd=cwd or REPO_DIR,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def sample(name):
    return os.path.join(CONTRIB_DIR, "sample_data", name)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: modelhub" in capsys.readouterr().out


def test_version_comes_from_the_installed_metadata(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"modelhub {metadata.version('modelhub-engine')}\n"


def test_the_installed_command_and_the_module_both_run():
    command = os.path.join(os.path.dirname(sys.executable), "modelhub")
    installed = subprocess.run(
        [command, "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert installed.stdout == f"modelhub {metadata.version('modelhub-engine')}\n"
    module = run("--help")
    assert module.returncode == 0
    assert module.stdout.startswith("usage: python -m modelhubapi ")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_predict_prints_the_top_five():
    # From the package's own folder (as in ModelHub's image), which is then the default --contrib.
    result = run("predict", sample("bagel.jpg"), sample("camel.jpeg"), cwd=CONTRIB_DIR)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == sample("bagel.jpg")
    assert lines[1].startswith("  1. ") and lines[1].endswith("  bagel, beigel")
    assert lines[6] == sample("camel.jpeg")
    assert len(lines) == 12


def test_predict_json_and_bad_inputs(tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not a picture")
    result = run(
        "predict",
        "--json",
        "--contrib",
        CONTRIB_DIR,
        "bagel.jpg",
        "missing.jpg",
        str(text_file),
        ".",
        cwd=os.path.join(CONTRIB_DIR, "sample_data"),
    )

    assert result.returncode == 1
    answers = json.loads(result.stdout)
    names = [answer["file"] for answer in answers]
    assert names == ["bagel.jpg", "missing.jpg", str(text_file), "."]
    assert answers[0]["output"][0]["prediction"][0]["label"] == "bagel, beigel"
    assert answers[1] == {"file": "missing.jpg", "error": "File not found."}
    assert answers[2] == {"file": str(text_file), "error": "Incorrect file type."}
    assert answers[3] == {
        "file": ".",
        "error": "Is a directory: name the image files in it (for example DIR/*.jpg).",
    }
    assert "missing.jpg: error: File not found." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_that_is_no_package_is_refused(tmp_path, capsys):
    assert cli.main(["predict", "--contrib", str(tmp_path), sample("bagel.jpg")]) == 1
    assert capsys.readouterr().err == (
        f"error: {tmp_path} is not a ModelHub contributor folder (no inference.py): pass "
        "--contrib DIR, or run from the package folder or the folder holding contrib_src/.\n"
    )
    assert cli.main(["serve", "--contrib", str(tmp_path)]) == 1


def test_the_default_package_is_the_current_folder_or_its_contrib_src(tmp_path, monkeypatch):
    monkeypatch.chdir(CONTRIB_DIR)
    assert cli.default_contrib_dir() == CONTRIB_DIR
    monkeypatch.chdir(REPO_DIR)
    assert cli.default_contrib_dir() == CONTRIB_DIR
    monkeypatch.chdir(tmp_path)
    assert cli.default_contrib_dir() == str(tmp_path / "contrib_src")


def test_evaluate_prints_a_table_and_writes_json(tmp_path):
    output = tmp_path / "results.json"
    # no --synsets: imagenet_synsets.txt is found in the MODELHUB_MIRROR folders
    result = run(
        "evaluate", asset_dir("imagenet-sample-100"), "--limit", "10", "--json", str(output)
    )

    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "top-5" in result.stdout
    summary = json.loads(output.read_text())
    assert summary["images"] == 10 and summary["errors"] == 0
    assert summary["variant"] == "fp32"
    assert 0.5 <= summary["top1"] <= summary["top5"] <= 1.0
    assert f"top-1{summary['top1']:>15.3f}" in result.stdout
    first = summary["results"][0]
    assert first["file"] == "n01440764_tench.JPEG" and first["expected"] == "tench, Tinca tinca"
    assert len(first["predicted"]) == 5


def test_evaluate_finds_the_synsets_in_the_mirror_or_says_so(tmp_path, monkeypatch, capsys):
    images, synsets = asset_dir("imagenet-sample-100"), asset("imagenet_synsets.txt")
    monkeypatch.setenv("MODELHUB_MIRROR", str(tmp_path))
    assert cli.main(["evaluate", images]) == 1
    assert "imagenet_synsets.txt not found: pass --synsets FILE" in capsys.readouterr().err

    assert cli.main(["evaluate", str(tmp_path), "--synsets", synsets]) == 1
    assert f"No ImageNet files named <wnid>_*.JPEG in {tmp_path}" in capsys.readouterr().err


def test_init_on_the_complete_package_changes_nothing():
    ensure_built()
    watched = [
        os.path.join(CONTRIB_DIR, "model", "model.onnx"),
        os.path.join(CONTRIB_DIR, "weights", "compressed_SqueezeNet.net"),
        sample("bagel.jpg"),
    ]
    before = [os.stat(path).st_mtime_ns for path in watched]

    result = run("init")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "init: 19 external files verified, 0 fetched.\n"
    assert result.stderr == ""
    assert [os.stat(path).st_mtime_ns for path in watched] == before


def test_init_reports_a_bad_init_json(tmp_path, capsys):
    bad = tmp_path / "init.json"
    bad.write_text("{not json")
    assert cli.main(["init", "--init-json", str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"error: Cannot read {bad}: ")


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the built package and its init/ folder, without the variants' model files."""
    ensure_built()
    copy = tmp_path / "contrib_src"
    shutil.copytree(CONTRIB_DIR, copy, ignore=shutil.ignore_patterns("model_*.onnx", "__pycache__"))
    shutil.copytree(os.path.join(REPO_DIR, "init"), tmp_path / "init")
    return copy


def test_init_builds_no_variant_unless_asked_and_refuses_unknown_ones(package_copy):
    result = run("init", "--contrib", str(package_copy))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(package_copy / "model")) == sorted(
        name for name in os.listdir(os.path.join(CONTRIB_DIR, "model"))
        if not name.startswith("model_")
    )

    for refused in (("--variant", "fp16"), ()):
        env = {} if refused else {"MODELHUB_VARIANT": "fp16"}
        result = run("init", "--contrib", str(package_copy), *refused, **env)
        assert result.returncode == 1
        assert "Unknown model variant 'fp16': choose one of fp32, compact, int8" in result.stderr
        assert "Traceback" not in result.stderr


def test_serve_on_a_taken_port_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run("serve", HOST="127.0.0.1", PORT=port)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: Cannot serve on 127.0.0.1:{port}: Address already in use."
    )
    assert "Traceback" not in result.stderr


def test_a_malformed_setting_is_named(capsys, monkeypatch):
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", "lots")
    monkeypatch.setattr(cli, "cmd_predict", lambda args: 0)
    assert cli.main(["predict", "anything.png"]) == 1
    assert (
        capsys.readouterr().err
        == "error: MODELHUB_MAX_UPLOAD_MB must be a whole number, not 'lots'\n"
    )


_SLOW_MODEL = '''
import os, time
from modelhublib.model import ModelBase
from inference_single import brightness_labels, bright_mask

class Model(ModelBase):
    """Answers the warm-up at once; any other input only once the test releases it."""

    def infer(self, input):
        if "sample_data" not in input:
            folder = os.environ["SLOW_MODEL_DIR"]
            open(os.path.join(folder, "started"), "w").close()
            deadline = time.monotonic() + 20
            while not os.path.exists(os.path.join(folder, "release")):
                assert time.monotonic() < deadline, "never released"
                time.sleep(0.01)
        return [brightness_labels(input), bright_mask(input)]
'''


def test_sigterm_answers_the_request_running_then_exits_and_tidies_up(tmp_path, mock_package):
    # `docker stop` sends SIGTERM: the request in flight still gets its answer, and the
    # process ends by itself, removing its temporary folders.
    package = tmp_path / "package"
    shutil.copytree(mock_package("single"), package)
    shutil.copy(package / "inference.py", package / "inference_single.py")
    (package / "inference.py").write_text(_SLOW_MODEL)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    shm_before = _shared_memory_entries()
    server = ServerProcess(
        str(tmp_path),
        "--contrib",
        str(package),
        MODELHUB_WORKING_DIR="",  # the server's own folder, which it must remove
        TMPDIR=str(temporary),
        PYTHONPATH="",  # the mock package alone, put on the path by the CLI
        SLOW_MODEL_DIR=str(tmp_path),
    )
    try:
        image = (package / "sample_data" / "ramp_4x2.png").read_bytes()
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(
                requests.post,
                f"{server.url}/api/predict",
                files={"file": ("a.png", image)},
                timeout=30,
            )
            while not (tmp_path / "started").exists():
                assert not answer.done(), answer.result().text
                time.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while "SIGTERM" not in server.log():  # the server is draining
                assert time.monotonic() < deadline, server.log()
                time.sleep(0.01)
            (tmp_path / "release").touch()
            response = answer.result()
        assert response.status_code == 200
        assert response.json()["output"][0]["prediction"][0]["label"] == "bright"
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    assert "Traceback" not in server.log()
    # The working folder is gone; the output folder stays, holding the answer's array.
    left = set(os.listdir(temporary)) | (_shared_memory_entries() - shm_before)
    assert [name for name in left if name.startswith("modelhub-working-")] == []


def _shared_memory_entries() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
