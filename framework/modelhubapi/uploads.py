"""Reading an upload: the file in the multipart form field `file`, streamed to disk.

Werkzeug's form parser compiles two regular expressions for each request's boundary, and
every client picks a new boundary per request: about 0.6 ms per upload, several percent of
SqueezeNet's whole prediction. python-multipart parses the same body in tens of
microseconds, so the upload route reads its body here. The rules stay Werkzeug's:

- the file is the first part named `file` that has a `filename` (a plain form field of that
  name is text, never a file);
- other parts are skipped without being kept, at most `MAX_PARTS` of them;
- a body that is not multipart, has no boundary, or ends before its closing boundary has no
  file, nor has one that starts with a preamble (text before the first boundary, which no
  client sends). The body's size limit is applied by the stream the caller passes in.
"""

from __future__ import annotations

import logging
from typing import IO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from .safety.errors import InputError

FIELD = "file"
NO_FILE = f'Send the input file in the multipart form field "{FIELD}".'
# Browsers and the web app send one part; thousands of tiny parts only cost time.
MAX_PARTS = 64
_CHUNK_BYTES = 64 * 1024

# python-multipart logs each malformed body as a warning; its sender gets a 400 and the
# access log has the request, so a client cannot flood the log with them.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


def save_file_field(stream: IO[bytes], content_type: str, destination: str) -> None:
    """Write the upload in the form field `file` of a multipart body to `destination`.

    Raises:
        InputError: the body is not multipart/form-data, is malformed, has too many parts,
            or has no complete file in the field `file` (`NO_FILE`).
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InputError(NO_FILE)
    with open(destination, "wb") as target:
        reader = _FileFieldReader(target)
        try:
            parser = MultipartParser(boundary, reader.callbacks())
            while chunk := stream.read(_CHUNK_BYTES):
                parser.write(chunk)
        except FormParserError:  # a malformed body, or a boundary too long
            raise InputError(NO_FILE) from None
    if not (reader.saved and reader.ended):
        raise InputError(NO_FILE)


class _FileFieldReader:
    """The parser's callbacks: note each part's headers, copy the first file part's data."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._parts = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._copying = False
        self.saved = False  # the file part has been read to its end
        self.ended = False  # the closing boundary was reached

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin_part,
            "on_header_field": self._add_header_name,
            "on_header_value": self._add_header_value,
            "on_header_end": self._end_header,
            "on_headers_finished": self._end_headers,
            "on_part_data": self._add_data,
            "on_part_end": self._end_part,
            "on_end": self._end,
        }

    def _begin_part(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InputError(f"The form has more than {MAX_PARTS} parts.")
        self._disposition = b""

    def _add_header_name(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _add_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _end_header(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _end_headers(self) -> None:
        kind, options = parse_options_header(self._disposition)
        self._copying = (
            not self.saved
            and kind == b"form-data"
            and options.get(b"name") == FIELD.encode()
            and b"filename" in options
        )

    def _add_data(self, data: bytes, start: int, end: int) -> None:
        if self._copying:
            self._target.write(memoryview(data)[start:end])

    def _end_part(self) -> None:
        if self._copying:
            self._copying = False
            self.saved = True

    def _end(self) -> None:
        self.ended = True
