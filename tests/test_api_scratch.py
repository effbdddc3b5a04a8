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


def _age(path, seconds: float = 60) -> None:
    then = os.path.getmtime(path) - seconds
    os.utime(path, (then, then))


def test_a_killed_requests_files_are_removed_and_nothing_else(tmp_path):
    """A reservation nobody holds a lock on (its process is gone), old enough: it and its
    files go; a running request's files, young files and other names stay."""
    with scratch.scratch_files(str(tmp_path)) as running:
        open(running.new_path("input"), "wb").close()
        for name in (
            "request-dead0001",
            "request-dead0001-input.png",
            "request-gone0002-input-0",  # its reservation already removed
            "notes.txt",
        ):
            (tmp_path / name).touch()
        for name in os.listdir(tmp_path):
            _age(str(tmp_path / name))
        (tmp_path / "request-young003").touch()  # just made: its owner may lock it yet
        removed = scratch.remove_abandoned(str(tmp_path))
        assert sorted(removed) == [
            "request-dead0001",
            "request-dead0001-input.png",
            "request-gone0002-input-0",
        ]
        reservation = os.path.basename(running.path)
        expected = [reservation, f"{reservation}-input", "notes.txt", "request-young003"]
        assert sorted(os.listdir(tmp_path)) == sorted(expected)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "request-young003"]


def test_only_folders_no_process_owns_are_removed(tmp_path):
    owned = tmp_path / "modelhub-working-owned-mine"
    owned.mkdir()
    scratch.own_folder(str(owned))
    abandoned = tmp_path / "modelhub-working-owned-dead"
    abandoned.mkdir()
    (abandoned / "request-x").touch()
    unrelated = tmp_path / "modelhub-working-old"  # not made by this version: left alone
    unrelated.mkdir()
    for folder in (owned, abandoned, unrelated):
        _age(str(folder))
    removed = scratch.remove_abandoned_folders(str(tmp_path), "modelhub-working-owned-")
    assert removed == [str(abandoned)]
    assert sorted(os.listdir(tmp_path)) == ["modelhub-working-old", "modelhub-working-owned-mine"]


def test_unfinished_requests_files_are_removed_at_exit(tmp_path):
    cut_short = scratch.Scratch(str(tmp_path))
    open(cut_short.new_path("input"), "wb").close()
    scratch.remove_unfinished()
    assert os.listdir(tmp_path) == []
    cut_short.remove()  # the request's own clean-up later does nothing
