"""Stopping and killing the server: SIGTERM (`docker stop`) ends it within Docker's 10 s with
no scratch file left, and /api/ready answers 503 from the moment it starts draining; the
files of a process killed with SIGKILL are removed when the next one starts.

Each test runs `python -m modelhubapi serve` on a copy of the mock package whose model holds
every upload until the test releases it (the warm-up on the sample answers at once).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import requests
from squeezenet_support import ServerProcess

from modelhubapi import machine, scratch

# Docker sends SIGKILL this long after SIGTERM.
DOCKER_STOP_SECONDS = 10
# Generous for a local answer on a busy machine; the point is "at once", not "after a drain".
QUICK_SECONDS = 2

_HELD_MODEL = '''
import os, time
from modelhublib.model import ModelBase
from inference_single import brightness_labels, bright_mask

class Model(ModelBase):
    """Answers the warm-up at once; an upload only once the test releases it (or never)."""

    def infer(self, input):
        if "sample_data" not in input:
            folder = os.environ["HELD_MODEL_DIR"]
            open(os.path.join(folder, "started-" + str(time.monotonic_ns())), "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(folder, "release")):
                assert time.monotonic() < deadline, "never released"
                time.sleep(0.01)
        return [brightness_labels(input), bright_mask(input)]
'''


@pytest.fixture
def held_package(tmp_path, mock_package) -> str:
    package = tmp_path / "package"
    shutil.copytree(mock_package("single"), package)
    shutil.copy(package / "inference.py", package / "inference_single.py")
    (package / "inference.py").write_text(_HELD_MODEL)
    return str(package)


def _serve(folder, package: str, **env: str) -> ServerProcess:
    return ServerProcess(
        str(folder),
        "--contrib",
        package,
        **{"PYTHONPATH": "", "HELD_MODEL_DIR": str(folder), **env},
    )


def _upload(server: ServerProcess, package: str, session: requests.Session | None = None):
    with open(os.path.join(package, "sample_data", "ramp_4x2.png"), "rb") as file:
        image = file.read()
    post = (session or requests).post
    return post(f"{server.url}/api/predict", files={"file": ("a.png", image)}, timeout=30)


def _start_held_uploads(
    pool, server, package, folder, count: int, working: str | None = ""
) -> list[Future]:
    """`count` uploads, returned once as many as take turns at the model are inside it and
    every one has its files in `working` (the server's working folder by default; None: not
    watched)."""
    answers = [pool.submit(_upload, server, package) for _ in range(count)]
    running = min(count, machine.usable_cores())
    working = server.working_folder if working == "" else working
    deadline = time.monotonic() + 30
    while len([n for n in os.listdir(folder) if n.startswith("started-")]) < running or (
        working is not None and len(_reservations(working)) < count
    ):
        assert time.monotonic() < deadline, server.log()
        assert not any(answer.done() for answer in answers), [a.result() for a in answers]
        time.sleep(0.01)
    return answers


def _reservations(working: str) -> list[str]:
    """The requests with files in `working` (see `modelhubapi.scratch`)."""
    return [
        name
        for name in os.listdir(working)
        if name.startswith(scratch.PREFIX) and "-" not in name[len(scratch.PREFIX) :]
    ]


def test_sigterm_answers_requests_inside_refuses_new_ones_and_exits_in_time(tmp_path, held_package):
    server = _serve(tmp_path, held_package)
    try:
        with ThreadPoolExecutor(4) as pool, requests.Session() as keep_alive:
            assert keep_alive.get(f"{server.url}/api/ready", timeout=10).status_code == 200
            held = _start_held_uploads(pool, server, held_package, tmp_path, 2)
            assert os.listdir(server.working_folder)  # the uploads' files
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # From the moment draining starts: ready is 503, on a new connection and on a
            # kept-alive one, and a new upload is refused at once rather than run.
            ready = _poll_until_draining(server, keep_alive)
            assert ready.json()["status"] == "draining"
            refused = _upload(server, held_package, keep_alive)
            assert refused.status_code == 503, refused.text
            assert "shutting down" in refused.json()["error"]
            assert refused.headers["Retry-After"] == "1"
            assert time.monotonic() - signalled < QUICK_SECONDS
            (tmp_path / "release").touch()
            answers = [answer.result() for answer in held]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert server.process.wait(timeout=DOCKER_STOP_SECONDS) == 0
        assert time.monotonic() - signalled < DOCKER_STOP_SECONDS
    finally:
        server.stop()
    assert "Traceback" not in server.log()
    assert os.listdir(server.working_folder) == []


def test_sigterm_with_requests_that_never_end_still_exits_in_time_leaving_no_file(
    tmp_path, held_package
):
    server = _serve(tmp_path, held_package)
    try:
        with ThreadPoolExecutor(8) as pool:
            held = _start_held_uploads(pool, server, held_package, tmp_path, 8)
            assert len(os.listdir(server.working_folder)) >= 8
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert server.process.wait(timeout=DOCKER_STOP_SECONDS) == 0
            assert time.monotonic() - signalled < DOCKER_STOP_SECONDS
            for answer in held:  # cut off: the connection closes, nothing hangs
                with pytest.raises(requests.ConnectionError):
                    answer.result()
    finally:
        (tmp_path / "release").touch()
        server.stop()
    assert os.listdir(server.working_folder) == []


def _poll_until_draining(server: ServerProcess, session: requests.Session) -> requests.Response:
    """The first /api/ready answer that is not 200 (asked on a fresh connection, then on
    `session`'s kept-alive one)."""
    deadline = time.monotonic() + QUICK_SECONDS
    while True:
        fresh = requests.get(f"{server.url}/api/ready", timeout=10)
        if fresh.status_code != 200:
            break
        assert time.monotonic() < deadline, server.log()
    assert fresh.status_code == 503
    kept = session.get(f"{server.url}/api/ready", timeout=10)
    assert kept.status_code == 503
    return kept


def _age(paths: list[str], seconds: float) -> None:
    """Date files back: the sweep leaves files younger than a moment alone (a reservation
    is made just before it is locked), and a restart normally comes later than this test's."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_the_files_of_a_killed_server_are_removed_at_the_next_start(tmp_path, held_package):
    first = _serve(tmp_path / "first", held_package, HELD_MODEL_DIR=str(tmp_path))
    working = first.working_folder
    try:
        with ThreadPoolExecutor(3) as pool:
            held = _start_held_uploads(pool, first, held_package, tmp_path, 3)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
            for answer in held:
                with pytest.raises(requests.ConnectionError):
                    answer.result()
    finally:
        first.stop()
    # Listed after the kill: a request waiting for the model may still be renaming its upload
    # up to the moment the process dies.
    left = os.listdir(working)
    assert len(_reservations(working)) == 3 and len(left) > 3, left
    _age([os.path.join(working, name) for name in left], 60)
    survivor = os.path.join(working, "notes.txt")  # not a request's file: left alone
    open(survivor, "w").close()
    (tmp_path / "release").touch()
    second = _serve(tmp_path / "second", held_package, MODELHUB_WORKING_DIR=working)
    try:
        assert requests.get(f"{second.url}/api/ready", timeout=10).status_code == 200
        assert os.listdir(working) == ["notes.txt"]
    finally:
        second.stop()


def test_a_killed_servers_own_folder_is_removed_at_the_next_start(tmp_path, held_package):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {"MODELHUB_WORKING_DIR": "", "TMPDIR": str(temporary), "HELD_MODEL_DIR": str(tmp_path)}
    before = _owned_folders(temporary)
    first = _serve(tmp_path / "first", held_package, **env)
    try:
        with ThreadPoolExecutor(1) as pool:
            held = _start_held_uploads(pool, first, held_package, tmp_path, 1, working=None)
            folders = _owned_folders(temporary) - before
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
            with pytest.raises(requests.ConnectionError):
                held[0].result()
    finally:
        first.stop()
    assert len(folders) == 1
    (folder,) = folders
    assert os.listdir(folder)  # the upload's files, abandoned
    _age([folder], 60)
    second = _serve(tmp_path / "second", held_package, **env)
    try:
        assert requests.get(f"{second.url}/api/ready", timeout=10).status_code == 200
        assert not os.path.exists(folder)
        assert len(_owned_folders(temporary) - before) == 1  # the second server's own
    finally:
        second.stop()


def _owned_folders(temporary) -> set[str]:
    """The per-process working folders, in /dev/shm or in `temporary`."""
    roots = [str(temporary)] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])
    return {
        os.path.join(root, name)
        for root in roots
        for name in os.listdir(root)
        if name.startswith("modelhub-working-owned-")
    }
