"""Input-safety rules, one module per rule, shared by every entry point.

- `names.resolve_name`: only a plain file name inside a given folder.
- `files.check_input_file`: type from the bytes, accepted formats, pixel limit, corrupt/empty files.
- `urls.download`: SSRF-safe, bounded download of an http(s) URL.

Each raises `errors.InputError` with a message that is safe to show to the caller.
"""

from .errors import InputError
from .files import check_input_file, file_suffix, sniff_mime
from .names import resolve_name
from .urls import download

__all__ = [
    "InputError",
    "check_input_file",
    "download",
    "file_suffix",
    "resolve_name",
    "sniff_mime",
]
