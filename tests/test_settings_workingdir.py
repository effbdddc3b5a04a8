"""Where scratch files go by default: in memory when there is room for them, else on disk."""

from __future__ import annotations

import os
import tempfile

import pytest

from modelhubapi import settings


@pytest.fixture
def fresh_default(monkeypatch, tmp_path):
    """No MODELHUB_WORKING_DIR, a stand-in for /dev/shm, and no folder made yet."""
    monkeypatch.delenv("MODELHUB_WORKING_DIR", raising=False)
    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", str(memory))
    settings._process_temp_dir.cache_clear()
    yield str(memory)
    settings._process_temp_dir.cache_clear()


def test_scratch_files_go_to_memory_when_it_has_room(fresh_default):
    folder = settings.working_dir()
    assert os.path.dirname(folder) == fresh_default
    assert settings.working_dir() == folder  # one folder per process


def test_too_little_memory_for_every_thread_falls_back_to_disk(fresh_default, monkeypatch):
    free = os.statvfs(fresh_default)
    too_large_mb = free.f_bavail * free.f_frsize // 2**20 + 1
    monkeypatch.setenv("MODELHUB_MAX_UPLOAD_MB", str(too_large_mb))
    assert os.path.dirname(settings.working_dir()) == tempfile.gettempdir()


def test_no_memory_folder_falls_back_to_disk(fresh_default, monkeypatch):
    monkeypatch.setattr(settings, "_MEMORY_FOLDER", os.path.join(fresh_default, "missing"))
    assert os.path.dirname(settings.working_dir()) == tempfile.gettempdir()


def test_the_variable_wins(fresh_default, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELHUB_WORKING_DIR", str(tmp_path / "mine"))
    assert settings.working_dir() == str(tmp_path / "mine")
