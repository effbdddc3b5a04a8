"""Where scratch files go by default: in memory when there is room for them, else on disk."""

from __future__ import annotations

import os
import tempfile

import pytest

from modelhubapi import settings


@pytest.fixture
def fresh_default(monkeypatch, tmp_path):
    """No MODELHUB_WORKING_DIR, stand-ins for /dev/shm and the disk's temporary folder, and
    no folder made yet. Yields (memory, disk)."""
    monkeypatch.delenv("MODELHUB_WORKING_DIR", raising=False)
    memory, disk = tmp_path / "shm", tmp_path / "disk"
    memory.mkdir()
    disk.mkdir()
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", str(memory))
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    settings._process_temp_dir.cache_clear()
    settings._default_working_dir.cache_clear()
    yield str(memory), str(disk)
    settings._process_temp_dir.cache_clear()
    settings._default_working_dir.cache_clear()


def test_scratch_files_go_to_memory_when_it_has_room(fresh_default, monkeypatch):
    memory, _ = fresh_default
    folder = settings.working_dir()
    assert os.path.dirname(folder) == memory
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", str(2**30))  # no room any more...
    assert settings.working_dir() == folder  # ...but one folder per process


def test_too_little_memory_for_every_thread_falls_back_to_disk(fresh_default, monkeypatch):
    memory, disk = fresh_default
    free = os.statvfs(memory)
    too_large_mb = free.f_bavail * free.f_frsize // 2**20 + 1
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", str(too_large_mb))
    assert os.path.dirname(settings.working_dir()) == disk


def test_no_memory_folder_falls_back_to_disk(fresh_default, monkeypatch):
    memory, disk = fresh_default
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", os.path.join(memory, "missing"))
    assert os.path.dirname(settings.working_dir()) == disk


def test_the_variable_wins(fresh_default, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELHUB_WORKING_DIR", str(tmp_path / "mine"))
    assert settings.working_dir() == str(tmp_path / "mine")


def test_a_process_folder_left_empty_is_removed_at_exit(tmp_path):
    empty, used = tmp_path / "empty", tmp_path / "used"
    empty.mkdir()
    used.mkdir()
    (used / "output.h5").write_bytes(b"kept")
    settings._remove_if_empty(str(empty))
    settings._remove_if_empty(str(used))
    assert not empty.exists() and (used / "output.h5").exists()
