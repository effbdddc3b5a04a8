"""The engine's one atomic-write helper: a file appears whole or not at all."""

import os
import stat

import pytest

from modelhubapi import atomicfiles


@pytest.mark.parametrize("durable", [False, True])
def test_the_new_content_replaces_the_old_whole(tmp_path, durable):
    dest = tmp_path / "deeper" / "file.bin"
    atomicfiles.write_atomically(str(dest), b"old", durable=durable)
    atomicfiles.write_atomically(str(dest), b"new content", durable=durable)
    assert dest.read_bytes() == b"new content"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert os.listdir(dest.parent) == ["file.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomicfiles.atomic_output(str(dest)) as handle:
        handle.write(b"half")
        raise RuntimeError("the writer failed")
    assert dest.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_the_temporary_is_hidden_and_the_destination_absent_while_writing(tmp_path):
    dest = tmp_path / "out.h5"
    with atomicfiles.replacing(str(dest)) as temporary:
        name = os.path.basename(temporary)
        assert name.startswith(".out.h5.") and name.endswith(".part")
        assert os.path.dirname(temporary) == str(tmp_path)
        assert not dest.exists()
        with open(temporary, "wb") as handle:
            handle.write(b"data")
    assert dest.read_bytes() == b"data"
    assert not os.path.exists(temporary)
