"""Where scratch files go by default: in memory when there is room for them, else on disk."""

from __future__ import annotations

import dataclasses
import os
import tempfile

import pytest

from modelhubapi import settings
from modelhubapi.settings import Settings


@pytest.fixture
def fresh_default(monkeypatch, tmp_path):
    """Stand-ins for /dev/shm and the disk's temporary folder, and no folder made yet.
    Yields (memory, disk)."""
    memory, disk = tmp_path / "shm", tmp_path / "disk"
    memory.mkdir()
    disk.mkdir()
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", str(memory))
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    settings._process_temp_dir.cache_clear()
    monkeypatch.setattr(settings, "_default_working", [])
    yield str(memory), str(disk)
    settings._process_temp_dir.cache_clear()


def test_scratch_files_go_to_memory_when_it_has_room(fresh_default):
    memory, _ = fresh_default
    folder = Settings().working_folder()
    assert os.path.dirname(folder) == memory
    no_room = Settings(max_upload_bytes=2**50)  # no room any more...
    assert no_room.working_folder() == folder  # ...but one folder per process


def test_too_little_memory_for_every_thread_falls_back_to_disk(fresh_default):
    memory, disk = fresh_default
    free = os.statvfs(memory)
    one_thread = Settings(server_threads=1)
    # Twice the free space: files freed meanwhile by other processes cannot make room for it.
    too_large = dataclasses.replace(one_thread, max_upload_bytes=2 * free.f_bavail * free.f_frsize)
    assert os.path.dirname(too_large.working_folder()) == disk


def test_no_memory_folder_falls_back_to_disk(fresh_default, monkeypatch):
    memory, disk = fresh_default
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", os.path.join(memory, "missing"))
    assert os.path.dirname(Settings().working_folder()) == disk


def test_the_variable_wins(fresh_default, tmp_path):
    mine = str(tmp_path / "mine")
    assert Settings.from_environment({"MODELHUB_WORKING_DIR": mine}).working_folder() == mine


def test_a_process_folder_left_empty_is_removed_at_exit(tmp_path):
    empty, used = tmp_path / "empty", tmp_path / "used"
    empty.mkdir()
    used.mkdir()
    (used / "output.h5").write_bytes(b"kept")
    settings._remove_if_empty(str(empty))
    settings._remove_if_empty(str(used))
    assert not empty.exists() and (used / "output.h5").exists()
