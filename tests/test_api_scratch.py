"""A request's scratch files (modelhubapi.scratch): its own names, all removed at its end."""

from __future__ import annotations

import os

import pytest

from modelhubapi import scratch


def test_every_file_is_named_after_the_reservation_and_removed(tmp_path):
    with scratch.scratch_files(str(tmp_path)) as files:
        upload = files.new_path("input")
        with open(upload, "wb") as handle:
            handle.write(b"pixels")
        named = files.add_suffix(upload, ".jpg")
        assert named == files.path + "-input.jpg"
        assert sorted(os.listdir(tmp_path)) == sorted(
            os.path.basename(path) for path in (files.path, named)
        )
        assert os.path.getsize(files.path) == 0  # the reservation holds the name
    assert os.listdir(tmp_path) == []


def test_files_are_removed_when_the_request_fails(tmp_path):
    with pytest.raises(RuntimeError), scratch.scratch_files(str(tmp_path)) as files:
        open(files.new_path("input-0"), "wb").close()
        raise RuntimeError("the model failed")
    assert os.listdir(tmp_path) == []


def test_the_reservation_is_released_last(tmp_path, monkeypatch):
    """While a request's files exist, no other request can be given its name."""
    files = scratch.Scratch(str(tmp_path))
    open(files.new_path("input"), "wb").close()
    removed = []
    unlink = os.unlink
    monkeypatch.setattr(os, "unlink", lambda path: (removed.append(path), unlink(path)))
    files.remove()
    assert removed[-1] == files.path
    assert os.listdir(tmp_path) == []


def test_concurrent_requests_get_names_of_their_own(tmp_path):
    reservations = [scratch.Scratch(str(tmp_path)) for _ in range(50)]
    derived = {files.new_path("input") for files in reservations}
    assert len(derived) == 50
    assert not derived & {files.path for files in reservations}
    for files in reservations:
        files.remove()


def test_a_renamed_file_is_removed_under_its_new_name_only(tmp_path, monkeypatch):
    files = scratch.Scratch(str(tmp_path))
    upload = files.new_path("input")
    open(upload, "wb").close()
    named = files.add_suffix(upload, ".png")
    removed = []
    unlink = os.unlink
    monkeypatch.setattr(os, "unlink", lambda path: (removed.append(path), unlink(path)))
    files.remove()
    assert removed == [named, files.path]
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_made_on_first_use_and_again_if_removed(tmp_path):
    folder = tmp_path / "working" / "nested"
    for _ in range(2):
        with scratch.scratch_files(str(folder)) as files:
            assert os.path.dirname(files.path) == str(folder)
        assert os.listdir(folder) == []
        os.rmdir(folder)
