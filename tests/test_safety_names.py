"""The plain-file-name rule (modelhubapi.safety.names): one folder, plain names, one 404."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhubapi.safety.errors import InputError
from modelhubapi.safety.names import resolve_name


@pytest.fixture
def layout(tmp_path):
    """A served folder with a file, a hidden file, a subfolder and links, next to a secret."""
    served = tmp_path.resolve() / "sample_data"
    served.mkdir()
    (served / "image.png").write_bytes(b"png")
    (served / "über ä.png").write_bytes(b"png")
    (served / ".hidden").write_bytes(b"hidden")
    (served / "sub").mkdir()
    (served / "sub" / "inner.png").write_bytes(b"inner")
    (served.parent / "secret.txt").write_bytes(b"secret")
    os.symlink(served.parent / "secret.txt", served / "out-link.png")
    os.symlink(served / "sub" / "inner.png", served / "sub-link.png")
    os.symlink(served / "image.png", served / "alias.png")
    os.symlink(served / "missing.png", served / "dangling.png")
    os.mkfifo(served / "fifo")
    return served


def test_plain_names_of_regular_files_resolve(layout):
    assert resolve_name(str(layout), "image.png") == str(layout / "image.png")
    assert resolve_name(str(layout), "über ä.png") == str(layout / "über ä.png")
    # A link to a file of the same folder is fine; the resolved path is returned.
    assert resolve_name(str(layout), "alias.png") == str(layout / "image.png")


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "..",
        ".",
        "",
        "sub",
        "sub/inner.png",
        "sub\\inner.png",
        "./image.png",
        "/etc/passwd",
        "//etc/passwd",
        "..%2fsecret.txt",
        "%2e%2e%2fsecret.txt",
        "image%2epng",
        "..%252fsecret.txt",
        "image.png\x00.jpg",
        "image.png\n",
        ".hidden",
        "out-link.png",
        "sub-link.png",
        "dangling.png",
        "fifo",
        "missing.png",
        "IMAGE.PNG",
        "x" * 4096,
        None,
        b"image.png",
    ],
)
def test_everything_else_is_the_same_not_found(layout, name):
    with pytest.raises(InputError) as caught:
        resolve_name(str(layout), name)
    assert (caught.value.message, caught.value.status) == ("File not found.", 404)


def test_missing_folder_is_not_found(tmp_path):
    with pytest.raises(InputError) as caught:
        resolve_name(str(tmp_path / "nope"), "image.png")
    assert caught.value.status == 404


@pytest.fixture(scope="module")
def served_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names").resolve() / "served"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"a")
    (folder.parent / "outside.png").write_bytes(b"o")
    return str(folder)


@settings(max_examples=200, deadline=None)
@given(name=st.text(alphabet=st.sampled_from("./\\%2efa.png\x00 ~:"), max_size=12) | st.text())
def test_any_name_stays_inside_or_is_not_found(served_folder, name):
    try:
        path = resolve_name(served_folder, name)
    except InputError as error:
        assert (error.message, error.status) == ("File not found.", 404)
    else:
        assert os.path.dirname(path) == served_folder
        assert os.path.isfile(path)
