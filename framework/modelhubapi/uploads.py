"""Reading an upload: the file in the multipart form field `file`, streamed to disk.

Werkzeug's form parser compiles two regular expressions for each request's boundary, and
clients pick a new boundary for every request: about 0.6 ms per upload, several percent of
SqueezeNet's whole prediction. A parser that steps through the bytes in Python
(python-multipart) is fast on plain bodies but spends seconds of CPU on hostile ones
(megabytes of padding or of near-boundaries). This one finds every delimiter with
`bytes.find`, so its cost stays linear in the body whatever the bytes, and it keeps only the
one field it needs. It follows Werkzeug's rules:

- the file is the first part named `file` that has a `filename` (a plain form field of that
  name is text, never a file); other parts are skipped, at most `MAX_PARTS` in all;
- line breaks may be CRLF or LF; a preamble may come before the first boundary; header
  lines may be folded; an empty part may end right after its headers' blank line (as
  Werkzeug's own test client writes it).

It is stricter where only hostile or broken bodies notice:
- `--boundary` at the start of the body or of a line always is a boundary (RFC 2046 forbids
  it inside a part): if neither padding and a line break nor `--` follows, the body is
  malformed rather than searched past; in the preamble it must start a line too;
- padding after a boundary is at most 1 KiB, a part's headers at most 16 KiB;
- a lone CR is no line break (no client writes them).
A body that is not multipart/form-data, has no usable boundary, is malformed, or ends before
its closing boundary has no file; nor has one in which any part's headers lack a
Content-Disposition or are not UTF-8 (Werkzeug then drops the whole form). The caller's
stream applies the size limit.
"""

from __future__ import annotations

from typing import IO

from werkzeug.http import parse_options_header

from .safety.errors import InputError

FIELD = "file"
NO_FILE = f'Send the input file in the multipart form field "{FIELD}".'
# Browsers and the web app send one part; thousands of tiny parts only cost time.
MAX_PARTS = 64
# RFC 2046 allows 70 characters; generous, and it bounds what is kept between chunks.
_MAX_BOUNDARY = 200
# Real part headers are a few hundred bytes.
_MAX_HEADER_BYTES = 16 * 1024
# Spaces or tabs allowed after a boundary, before its line break ("transport padding").
_MAX_PADDING = 1024
_CHUNK_BYTES = 64 * 1024
_CRLF = b"\r\n"
_PADDING = b" \t\f\v"  # horizontal white space, as Werkzeug reads it
_BLANK_LINES = (b"\r\n\r\n", b"\n\n")


def save_body(stream: IO[bytes], destination: str) -> None:
    """Write a whole request body (an input sent as itself, not in a form) to `destination`.
    The caller's stream applies the size limit; an empty body is refused by the file rule."""
    with open(destination, "wb") as target:
        while chunk := stream.read(_CHUNK_BYTES):
            target.write(chunk)


class _Malformed(Exception):
    """The body breaks the multipart grammar."""


def save_file_field(stream: IO[bytes], content_type: str, destination: str) -> None:
    """Write the upload in the form field `file` of a multipart body to `destination`.

    Raises:
        InputError: the body is not multipart/form-data, is malformed, has too many parts,
            or has no complete file in the field `file` (`NO_FILE`).
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get("boundary", "")
    if kind.lower() != "multipart/form-data" or not 0 < len(boundary) <= _MAX_BOUNDARY:
        raise InputError(NO_FILE)
    try:
        dash_boundary = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise InputError(NO_FILE) from None
    with open(destination, "wb") as target:
        parser = _FileFieldParser(dash_boundary, target)
        try:
            while not parser.done and (chunk := stream.read(_CHUNK_BYTES)):
                parser.feed(chunk)
        except _Malformed:
            raise InputError(NO_FILE) from None
    if not (parser.saved and parser.done):
        raise InputError(NO_FILE)


class _FileFieldParser:
    """A multipart body fed chunk by chunk; the first file part of the field `file` is
    copied to `target`. `saved`: that part was read to its end. `done`: the closing
    boundary was."""

    def __init__(self, dash_boundary: bytes, target: IO[bytes]) -> None:
        self._dash_boundary = dash_boundary
        self._target = target
        self._buffer = bytearray()
        self._state = self._preamble
        self._at_body_start = True
        self._parts = 0
        self._copying = False
        self._data_start = 0  # in the data state: where the part's data begins in the buffer
        self._scanned = 0  # in the headers state: how much of the buffer has been searched
        self.saved = False
        self.done = False

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while not self.done and self._state():
            pass

    # Each state consumes what it can of the buffer; True if the next state may go on.

    def _preamble(self) -> bool:
        """Anything before the first `--boundary`, which starts the body or a line."""
        buffer = self._buffer
        found = buffer.find(self._dash_boundary)
        if found < 0:
            # Keep what may be a boundary cut in two, and the byte before it.
            cut = max(0, len(buffer) - len(self._dash_boundary))
            if cut:
                del buffer[:cut]
                self._at_body_start = False
            return False
        if not (found == 0 and self._at_body_start) and buffer[found - 1 : found] != b"\n":
            raise _Malformed()
        return self._close_boundary(found + len(self._dash_boundary))

    def _close_boundary(self, end: int) -> bool:
        """Consume the buffer up to the boundary ending at `end` and what follows it: `--`
        (the body's end) or padding and a line break (a part begins). False if more bytes
        are needed to tell, or the body has ended."""
        buffer = self._buffer
        rest = bytes(buffer[end : end + 2 + _MAX_PADDING])
        if rest.startswith(b"--"):
            self.done = True
            return False
        if rest in (b"", b"-"):
            return False
        padding = len(rest) - len(rest.lstrip(_PADDING))
        if padding > _MAX_PADDING:
            raise _Malformed()
        line_break = rest[padding : padding + 2]
        if line_break in (b"", b"\r"):  # the buffer ends here (in what may be a CRLF)
            return False
        if line_break == _CRLF:
            width = 2
        elif line_break[:1] == b"\n":
            width = 1
        else:
            raise _Malformed()
        del buffer[: end + padding + width]
        self._scanned = 0
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InputError(f"The form has more than {MAX_PARTS} parts.")
        self._state = self._headers
        return True

    def _headers(self) -> bool:
        """The part's header lines, up to the blank line that ends them."""
        buffer = self._buffer
        start = max(0, self._scanned - 3)  # a blank line may straddle the last chunk's end
        found = [
            (index, len(blank))
            for blank in _BLANK_LINES
            if (index := buffer.find(blank, start, _MAX_HEADER_BYTES)) >= 0
        ]
        if not found:
            if len(buffer) >= _MAX_HEADER_BYTES:
                raise _Malformed()
            self._scanned = len(buffer)
            return False
        index, width = min(found)
        # Every part's headers must be sound, as Werkzeug drops the whole form otherwise.
        is_file = _is_file_field(buffer[:index])
        self._copying = is_file and not self.saved
        # The blank line's second line break stays: it is the one before the part's data,
        # which is where an empty part's closing boundary may already be.
        del buffer[: index + width // 2]
        self._data_start = width // 2
        self._state = self._data
        return True

    def _data(self) -> bool:
        """The part's data: everything before the next line break + `--boundary`."""
        buffer = self._buffer
        found = self._find_delimiter()
        if found is None:
            # Keep what may be the start of that delimiter, cut by the chunk's end (which
            # may be the line break before the data).
            cut = max(0, len(buffer) - len(self._dash_boundary) - 2)
            self._copy(self._data_start, cut)
            del buffer[:cut]
            self._data_start = max(0, self._data_start - cut)
            return False
        line_break, boundary = found
        self._copy(self._data_start, line_break)
        del buffer[:boundary]
        self._data_start = 0
        if self._copying:
            self._copying = False
            self.saved = True
        self._state = self._after_delimiter
        return self._after_delimiter()

    def _after_delimiter(self) -> bool:
        """The buffer starts with `--boundary`: what follows it decides what comes next."""
        return self._close_boundary(len(self._dash_boundary))

    def _find_delimiter(self) -> tuple[int, int] | None:
        """(start of the line break, start of `--boundary`) of the first line break +
        `--boundary` in the buffer, or None."""
        buffer = self._buffer
        index = buffer.find(b"\n" + self._dash_boundary)
        if index < 0:
            return None
        boundary = index + 1
        if buffer[index - 1 : index] == b"\r":
            index -= 1
        return index, boundary

    def _copy(self, start: int, end: int) -> None:
        if self._copying and end > start:
            self._target.write(memoryview(self._buffer)[start:end])


def _is_file_field(header_block: bytes | bytearray) -> bool:
    """True if a part's headers make it the file of the field `file`: the first
    Content-Disposition names the field and has a filename (Werkzeug's rule)."""
    # A CRLF then an LF also end the headers: the block then ends with that CR.
    text = bytes(header_block).removesuffix(b"\r").replace(b"\r\n", b"\n")
    if b"\r" in text:
        raise _Malformed()
    text = text.replace(b"\n ", b" ").replace(b"\n\t", b" ")  # folded lines go on
    try:
        lines = text.decode().split("\n")
    except UnicodeDecodeError:
        raise _Malformed() from None
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip(" \t").lower() == "content-disposition":
            _, options = parse_options_header(value.strip(" \t"))
            return options.get("name") == FIELD and "filename" in options
    raise _Malformed()
