"""The plain-file-name rule for names a caller picks a file by.

`predict_sample?filename=`, `/api/samples/<name>`, `/api/thumbnail/<name>` and
`/api/output/<name>` all pick a file in one folder by a caller-given name.
ModelHub joined that name to the folder unchecked, so `../` walked anywhere.
Here a name is accepted only if it is a plain name of a regular file directly in
the folder; every refusal is the same 404, so an answer never tells whether some
other path exists.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import unquote

from .errors import InputError

_SEPARATORS = frozenset({"/", "\\", os.sep, os.altsep or "/"})


def resolve_name(folder: str, name: str) -> str:
    """Absolute path of `name` if it is a plain file name of a regular file directly in `folder`.

    Else InputError("File not found.", 404), the same whatever the reason. A symbolic
    link is followed only if its target is also directly in `folder`; the path returned
    is the resolved one.
    """
    if not _is_plain_name(name):
        raise _not_found()
    base = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.dirname(path) != base or not _is_regular_file(path):
        raise _not_found()
    return path


def _not_found() -> InputError:
    """The single answer for every refused name, so refusals cannot be told apart."""
    return InputError("File not found.", 404)


def _is_plain_name(name: object) -> bool:
    """True for a visible file name with nothing a path or a decoder could reinterpret.

    Refused: non-strings, empty, `.`/`..` and other dot-names (hidden files are never
    published), separators of any platform, NUL and other control characters, and
    percent-escapes (a name that decodes to something else could be decoded once more
    by some layer and become a separator or `..`).
    """
    return (
        isinstance(name, str)
        and name != ""
        and not name.startswith(".")
        and not any(char in _SEPARATORS for char in name)
        and all(char.isprintable() for char in name)
        and unquote(name) == name
    )


def _is_regular_file(path: str) -> bool:
    """True if `path` (already resolved) is a regular file; any OS error means no."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
