"""An HTTP/1.1 server for a WSGI app: httptools parses requests, asyncio holds the
connections, a bounded thread pool runs the app.

Why this and not a ready-made server: the service must decide a request's fate from its
headers before its body is read (413 as JSON, without inviting the body with `100
Continue`), answer malformed HTTP as JSON, linger after a refusal so a client that sends
first and reads later gets the answer, and bound every connection's silence. waitress and
uvicorn decide these inside their own classes (plain-text errors, no linger, no header
timeout in uvicorn), which only subclasses or private attributes could change. httptools
(llhttp, Node.js's parser, in C) only parses, through callbacks: what it finds malformed,
request smuggling with Content-Length and Transfer-Encoding included, is a JSON 400 here.
Every other rule is code in this module: how much of a request may be other than body
(head, chunk framing, trailers), Host, keeping or closing a connection, how an answer is
delimited and what of the app's answer cannot be sent (RFC 9112 3.2, 6, 9); the I/O is the
standard library's.
It replaced h11 (pure Python), which took about 40 % of the event loop's time per request:
see docs/2026-12-06-server-choice.md.

What a connection costs: a socket and a coroutine, never a thread. A request's body is read
whole (into memory, spilling to disk past `_SPOOL_BYTES`) before a thread runs the app, so
slow clients cannot hold the threads that run the model, and an answer is written by the
event loop, so a client that does not read holds no thread either (the app hands it out a
piece at a time). A connection silent for `timeout` seconds (reading or writing) is closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import functools
import json
import logging
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote_to_bytes

import httptools

logger = logging.getLogger(__name__)
SERVER_NAME = "modelhub"
# The most bytes of a request head (request line and headers) read before refusing it (431).
MAX_HEAD_BYTES = 64 * 1024
# One read from a connection.
_RECV_BYTES = 64 * 1024
# A body up to this size stays in memory; a larger one spills to a temporary file.
_SPOOL_BYTES = 1024 * 1024
# Pieces of an answer taken from the app in one turn of a thread (a JSON answer is one).
_BATCH_BYTES = 256 * 1024

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """What the server allows: `max_body` bytes of request body, `max_connections` open at
    once, `timeout` seconds of silence, `linger` seconds after refusing a body; `refused`
    builds the JSON message of a server-side refusal, `log` logs it, and `running` and
    `patience` set how the request threads take turns (`_Threads`)."""

    max_body: int
    max_connections: int
    timeout: float
    linger: float
    refused: Callable[[int, str], str]
    log: Callable[[str, str, int, float, int | None], None]
    running: int  # app calls at once before the patience applies (see `_Threads`)
    patience: float


class _Refusal(Exception):
    """A request answered by the server itself (JSON) and its connection then closed."""

    def __init__(self, status: int, reason: str, linger: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.linger = status, reason, linger
        self.method = self.path = "-"  # a request line that could not be parsed


class HTTPServer:
    """Serves `app` on already bound `sockets` with `threads` request threads, in a thread
    or process of the caller's choosing: `run()` blocks until `stop()` (any thread)."""

    def __init__(self, app: WSGIApp, sockets: list[socket.socket], threads: int, limits: Limits):
        self._app = app
        self._sockets = sockets
        self.limits = limits
        self._threads = _Threads(threads, limits.running, limits.patience)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._grace = 0.0
        self._connections: set[asyncio.Task] = set()
        self.answering: set[asyncio.Task] = set()  # connections with a request in hand
        for sock in sockets:  # connections queue from now on, until `run()` takes them
            sock.listen(1024)
        self.port = sockets[0].getsockname()[1]

    def run(self) -> None:
        """Serve until `stop()`, then close the sockets."""
        try:
            self._threads.start()
            asyncio.run(self._serve())
        finally:
            self._threads.stop()
            for sock in self._sockets:
                sock.close()

    def stop(self, grace: float) -> None:
        """End `run()` (from any thread, once it has started): no new connection is taken,
        the app calls running are given up to `grace` seconds, then every connection is
        closed."""
        self._started.wait()
        self._grace = grace
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stopping.set)

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        servers = []
        try:
            for sock in self._sockets:
                servers.append(await asyncio.start_server(self._connection, sock=sock))
        finally:
            self._started.set()
        await self._stopping.wait()
        for server in servers:
            server.close()
        if self.answering:
            await asyncio.wait(self.answering, timeout=self._grace)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        # An answer goes out as soon as it is written (not held back for the client's
        # acknowledgement of the last one, which it delays by up to 40 ms).
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if len(self._connections) > self.limits.max_connections:
                raise _Refusal(503, "Service Unavailable")
            await _Connection(self, reader, writer).serve()
        except _Refusal as refusal:
            await _refuse(self.limits, reader, writer, refusal)
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            pass  # the client went, fell silent, or the server is stopping
        except Exception:
            logger.exception("Connection ended by an error of the server's")
        finally:
            self._connections.discard(task)
            writer.close()

    async def call_app(self, environ: dict) -> tuple[str, list, list[bytes], Iterator | None]:
        """Run the app in a request thread: its status, headers, the first pieces of its
        answer and, if more follow, the iterator for them."""
        return await self._threads.submit(_start_app, self._app, environ, call=True)

    async def next_pieces(self, iterator: Iterator) -> tuple[list[bytes], bool]:
        return await self._threads.submit(_take, iterator)

    async def close_answer(self, iterator: Iterator | None) -> None:
        close = getattr(iterator, "close", None)
        if close is None:
            return
        try:
            await self._threads.submit(close)
        except Exception:
            logger.exception("The app failed to close its answer")
            raise ConnectionAbortedError from None  # its state is unknown: start afresh


@dataclass
class _Request:
    """A request's head, as the parser saw it."""

    method: str
    target: bytes
    version: str  # "1.1", "1.0"
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values stripped, in order sent
    keep_alive: bool  # HTTP/1.1 without `Connection: close`, and no Upgrade


# The end of a request's body; the connection is to be closed (after an Upgrade request).
_END, _CLOSE = object(), object()


class _Parser:
    """httptools' callbacks as a queue of events: a `_Request` (a head), pieces of its body
    (bytes), `_END`; then the next request's. Malformed input becomes a `_Refusal` after the
    events before it, so the requests in front of it are answered first.

    What llhttp does not bound is bounded here, by two counts of the bytes read: at most
    `MAX_HEAD_BYTES` without progress (a head complete, a piece of body), which bounds a
    head, trailers and a chunk's size line each; and, once a body has begun, the bytes of a
    request that are not body (chunk sizes and extensions) at most `MAX_HEAD_BYTES` more
    than its body. Counted a read at a time, so a limit may be passed by up to two reads
    before it is noticed, never refused early.
    Trailers are read and dropped (PEP 3333 has no place for them)."""

    def __init__(self) -> None:
        self.events: collections.deque = collections.deque()
        self._parser = httptools.HttpRequestParser(self)
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = True  # or between requests, which is where a head starts
        self._stalled = 0  # bytes read since the last head or body piece
        self._overhead = 0  # bytes read of the request in hand, less its body
        self._body = 0

    def feed(self, data: bytes) -> None:
        """Parse `data` into events."""
        self._stalled += len(data)
        self._overhead += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.events.append(_CLOSE)  # no other protocol is spoken here
        except httptools.HttpParserError:
            self.events.append(_Refusal(400, "Bad Request"))
        else:
            framing = self._body and self._overhead > MAX_HEAD_BYTES + self._body
            if framing or self._stalled > MAX_HEAD_BYTES:
                status = 431 if self._in_head else 400
                # Lingering, as after a 413: a client still sending sees the answer.
                self.events.append(_Refusal(status, _REASONS[status], linger=True))

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self._target, self._headers, self._in_head = b"", [], True

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:  # not a trailer
            self._headers.append((name.lower(), value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_head, self._stalled = False, 0
        parser, headers = self._parser, self._headers
        method, version = parser.get_method().decode("ascii"), parser.get_http_version()
        request = _Request(
            method,
            self._target,
            version,
            headers,
            version == "1.1" and parser.should_keep_alive() and not parser.should_upgrade(),
        )
        refusal = _refusal_of(request, parser.should_upgrade())
        if refusal is not None:
            refusal.method, refusal.path = method, _path(self._target)
        self.events.append(refusal or request)

    def on_body(self, body: bytes) -> None:
        self._stalled = 0
        self._overhead -= len(body)
        self._body += len(body)
        self.events.append(body)

    def on_message_complete(self) -> None:
        self.events.append(_END)
        self._in_head, self._stalled, self._overhead, self._body = True, 0, 0, 0


def _refusal_of(request: _Request, upgrade: bool) -> _Refusal | None:
    """Why a well-formed request is still refused (a JSON 4xx or 505), or None: a version
    other than HTTP/1.0 and 1.1; an HTTP/1.1 request without exactly one Host, any with more
    than one or with one that is no host[:port] (RFC 9112 3.2); CONNECT; an Upgrade request
    with a body (llhttp hands the body to the new protocol, which is not spoken here)."""
    if request.version not in ("1.0", "1.1"):
        return _Refusal(505, "HTTP Version Not Supported")
    hosts = [value for name, value in request.headers if name == b"host"]
    valid = all(_HOST.fullmatch(host) for host in hosts)
    if len(hosts) > 1 or not valid or (request.version == "1.1" and not hosts):
        return _Refusal(400, "Bad Request")
    if request.method == "CONNECT":
        return _Refusal(405, "Method Not Allowed")
    framing = {b"content-length", b"transfer-encoding"}
    if upgrade and any(name in framing and value != b"0" for name, value in request.headers):
        return _Refusal(400, "Bad Request")
    return None


def _path(target: bytes) -> str:
    """The path of a request target, for the access log."""
    return target.decode("latin-1").partition("?")[0]


class _Connection:
    """One client connection: its requests one after another (pipelined ones too)."""

    def __init__(self, server: HTTPServer, reader, writer) -> None:
        self._server = server
        self._limits = server.limits
        self._reader = reader
        self._writer = writer
        self._parser = _Parser()

    async def serve(self) -> None:
        """Answer requests until the client closes, one must close the connection, or the
        server is stopping (then once the request in hand is answered)."""
        task = asyncio.current_task()
        while (request := await self._next_event()) is not None:
            self._server.answering.add(task)
            try:
                keep_alive = await self._answer(request)
            except _Refusal as refusal:
                refusal.method, refusal.path = request.method, _path(request.target)
                raise
            finally:
                self._server.answering.discard(task)
            if not keep_alive:
                return

    async def _next_event(self) -> Any:
        """The next event of `_Parser`; None once the client has closed (or must go)."""
        events = self._parser.events
        while not events:
            data = await _within(self._reader.read(_RECV_BYTES), self._limits.timeout)
            if not data:
                return None
            self._parser.feed(data)
        event = events.popleft()
        if isinstance(event, _Refusal):
            raise event
        return None if event is _CLOSE else event

    async def _answer(self, request: _Request) -> bool:
        """Read the body, run the app, write its answer; whether the connection may serve
        another request."""
        declared = next((v for n, v in request.headers if n == b"content-length"), b"0")
        if int(declared) > self._limits.max_body:
            raise _Refusal(413, "Request Entity Too Large", linger=True)
        body = await self._read_body(request)
        environ = _environ(request, body, self._writer)
        try:
            status, response_headers, pieces, more = await self._server.call_app(environ)
        except Exception:
            body.close()
            logger.exception("The app failed on %s", request.target[:200])
            raise _Refusal(500, "Internal Server Error") from None
        try:
            return await self._write_answer(request, status, response_headers, pieces, more)
        finally:
            await self._server.close_answer(more)
            body.close()

    async def _read_body(self, request: _Request) -> IO[bytes]:
        body = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (returned)
        if not self._parser.events and _expects_continue(request):
            self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        size, limit = 0, self._limits.max_body
        while (piece := await self._next_event()) is not _END:
            if piece is None:
                body.close()
                raise ConnectionError("the client went before the end of its body")
            size += len(piece)
            if size > limit:
                body.close()
                raise _Refusal(413, "Request Entity Too Large", linger=True)
            body.write(piece)
        body.seek(0)
        return body

    async def _write_answer(self, request: _Request, status: str, headers, pieces, more) -> bool:
        """Write the answer, waiting (at most `timeout` each time) for the client to take
        each batch before the app is asked for the next; whether the connection may serve
        another request."""
        framing = _Framing(request, status, headers)
        keep_alive = framing.keep_alive and not self._server.stopping
        out = [_head(status, headers, chunked=framing.chunked, keep_alive=keep_alive)]
        done = more is None
        while True:
            out += framing.pieces(pieces)
            if done or framing.cut:
                break
            self._writer.write(b"".join(out))
            out = []
            await _within(self._writer.drain(), self._limits.timeout)
            try:
                pieces, done = await self._server.next_pieces(more)
            except Exception:
                # Too late for a 500: closing without the end of the answer tells the client.
                logger.exception("The app failed during its answer to %s", request.target[:200])
                raise ConnectionAbortedError from None
        # The head and a one-piece answer (any JSON answer) leave in one send.
        out.append(framing.end())
        self._writer.write(b"".join(out))
        await _within(self._writer.drain(), self._limits.timeout)
        return keep_alive and framing.complete


def _expects_continue(request: _Request) -> bool:
    """An HTTP/1.1 client waiting for `100 Continue` before it sends its body."""
    return request.version == "1.1" and any(
        name == b"expect" and value.lower() == b"100-continue" for name, value in request.headers
    )


class _Framing:
    """How an answer's body is delimited: by the app's Content-Length, chunked when it gives
    none (HTTP/1.1), or by closing the connection (HTTP/1.0); none for HEAD, 204 and 304
    (RFC 9112 6.3). The app's body is cut at its Content-Length; `complete` is false when
    the two did not match, and the connection is then closed, as the client cannot tell
    where the answer ends. An answer that cannot be sent as it is (`_sendable`) is the app's
    fault: a logged 500."""

    def __init__(self, request: _Request, status: str, headers: list) -> None:
        if not _sendable(status, headers):
            logger.error("The app's answer cannot be sent: %r %r", status, headers)
            raise _Refusal(500, "Internal Server Error")
        code = int(status[:3])
        lengths = [value for name, value in headers if name.lower() == "content-length"]
        self.bodiless = request.method == "HEAD" or code in (204, 304)
        self.length = int(lengths[0]) if lengths else None
        self.chunked = self.length is None and not self.bodiless and request.version == "1.1"
        self.keep_alive = request.keep_alive and (
            self.bodiless or self.chunked or self.length is not None
        )
        self._sent = 0
        self._cut = False

    def pieces(self, pieces: list[bytes]) -> list[bytes]:
        if self.bodiless:
            return []
        if self.length is not None:
            pieces = [self._within_length(piece) for piece in pieces]
        if not self.chunked:
            return pieces
        return [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces if piece]

    def _within_length(self, piece: bytes) -> bytes:
        assert self.length is not None
        room = self.length - self._sent
        self._cut |= len(piece) > room
        piece = piece[: max(room, 0)]
        self._sent += len(piece)
        return piece

    def end(self) -> bytes:
        return b"0\r\n\r\n" if self.chunked else b""

    @property
    def cut(self) -> bool:
        """Whether the app gave more than its Content-Length (the rest is not asked for)."""
        return self._cut

    @property
    def complete(self) -> bool:
        whole = self.length is None or self.bodiless or self._sent == self.length
        return whole and not self._cut


def _sendable(status: Any, headers: Any) -> bool:
    """Whether the app's status and headers can go on the wire as they are: a final status
    (2xx-5xx, one line), text headers with token names and no line break in a value, at
    most one Content-Length of digits, and no hop-by-hop header of the server's
    (Transfer-Encoding, Connection: PEP 3333)."""
    if not isinstance(status, str) or not _STATUS.fullmatch(status):
        return False
    for name, value in headers:
        text = isinstance(name, str) and isinstance(value, str)
        if not text or not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
            return False
    names = [name.lower() for name, _ in headers]
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    hop_by_hop = "transfer-encoding" in names or "connection" in names
    return not hop_by_hop and len(lengths) <= 1 and all(map(_DIGITS.fullmatch, lengths))


def _head(status: str, headers: list, chunked: bool, keep_alive: bool) -> bytes:
    """The status line and headers: the answer's, Date and Server, and the framing's."""
    lines = [f"HTTP/1.1 {status}\r\n"]
    for name, value in [*headers, *_standard_headers()]:
        lines.append(f"{name}: {value}\r\n")
    if chunked:
        lines.append("Transfer-Encoding: chunked\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


# A header name (RFC 9110 5.1, 5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
# A final status line's text (RFC 9110 15): three digits, a reason without line breaks.
_STATUS = re.compile(r"[2-5][0-9]{2} [^\r\n]*")
# A Host header's value: a name, an IPv4 or a bracketed IPv6 address, and a port (RFC 3986).
_HOST = re.compile(rb"[A-Za-z0-9\-._~%!$&'()*+;=]*(:[0-9]*)?|\[[0-9A-Fa-f:.]+\](:[0-9]*)?")


_REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large"}


@functools.lru_cache(maxsize=2)
def _date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def _standard_headers() -> list[tuple[str, str]]:
    """Date (RFC 9110 6.6.1: an origin server with a clock sends it) and Server."""
    return [("Date", _date(int(time.time()))), ("Server", SERVER_NAME)]


async def _refuse(limits: Limits, reader, writer, refusal: _Refusal) -> None:
    """The server's own JSON answer, then the connection closed (after lingering: what the
    client still sends is read and thrown away for up to `limits.linger` seconds, as nginx
    does, so a client that sends its whole body before reading sees the answer, not a
    reset)."""
    body = json.dumps({"error": limits.refused(refusal.status, refusal.reason)}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", "*"),
        ("Content-Length", str(len(body))),
    ]
    head = _head(f"{refusal.status} {refusal.reason}", headers, chunked=False, keep_alive=False)
    limits.log(refusal.method, refusal.path, refusal.status, 0.0, len(body))
    with contextlib.suppress(ConnectionError, TimeoutError):
        writer.write(head + body)
        await _within(writer.drain(), limits.timeout)
        if refusal.linger and writer.can_write_eof():
            writer.write_eof()
            await _discard(reader, limits.linger)


async def _discard(reader: asyncio.StreamReader, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not await _within(reader.read(_RECV_BYTES), left):
            return


def _environ(request: _Request, body: IO[bytes], writer: asyncio.StreamWriter) -> dict:
    """The WSGI environ of `request` (PEP 3333), its body already read (and de-chunked)
    into `body`, so its length is known."""
    path, _, query = request.target.partition(b"?")
    size = body.seek(0, 2)
    body.seek(0)
    server_host, server_port = writer.get_extra_info("sockname")[:2]
    client = writer.get_extra_info("peername") or ("", 0)
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": server_host,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"):
            if key == "CONTENT_TYPE":
                environ[key] = value.decode("latin-1")
            continue
        key = f"HTTP_{key}"
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def _start_app(app: WSGIApp, environ: dict) -> tuple[str, list, list[bytes], Iterator | None]:
    """In a request thread: call the app and take the first pieces of its answer."""
    started: list = []

    def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
        started[:] = [status, headers]
        return lambda data: None  # the legacy write(): unused by Flask

    iterable = app(environ, start_response)
    iterator = iter(iterable)
    pieces, done = _take(iterator)
    if done:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
        return started[0], started[1], pieces, None
    return started[0], started[1], pieces, _Closing(iterator, iterable)


class _Closing:
    """The rest of an answer, and the app's `close()` for when it is sent (PEP 3333)."""

    def __init__(self, iterator: Iterator, iterable: Iterable) -> None:
        self._iterator, self._iterable = iterator, iterable

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        close = getattr(self._iterable, "close", None)
        if close is not None:
            close()


def _take(iterator: Iterator) -> tuple[list[bytes], bool]:
    """The next pieces of an answer, up to about `_BATCH_BYTES`; True if none are left."""
    pieces, size = [], 0
    for piece in iterator:
        if not isinstance(piece, bytes):  # PEP 3333: bytes only
            raise TypeError(f"The app gave a {type(piece).__name__} to send, not bytes")
        pieces.append(piece)
        size += len(piece)
        if size >= _BATCH_BYTES:
            return pieces, False
    return pieces, True


async def _within(awaitable: Any, seconds: float) -> Any:
    """`await awaitable`, or TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        return await awaitable


class _Threads:
    """The request threads: about as many app calls run at once as there are cores
    (`limits.running`), and the next thread to finish takes the next one at once, warm,
    without sleeping. Only a call that has waited `limits.patience` seconds (say, behind
    slow URL downloads, which hold a thread but not a core) takes a spare thread. An idle
    thread is woken most recently idle first (warm caches; a queue wakes the oldest waiter).
    Pieces of an answer and `close()` calls take any idle thread at once.

    Measured against a pool that runs every call at once (the app's own turns at the model
    then make the rest wait in their threads): see docs/2026-12-06-server-choice.md.
    Daemon threads: a request that never ends cannot keep the process from exiting.
    """

    def __init__(self, count: int, running: int, patience: float) -> None:
        self._count, self._most, self._patience = count, running, patience
        self._lock = threading.Lock()
        self._calls: collections.deque = collections.deque()  # (queued at, job), limited
        self._quick: collections.deque = collections.deque()  # jobs that start at once
        self._idle: list[threading.Lock] = []  # each held: its thread waits to acquire it
        self._running = 0  # calls running
        self._timing = 0  # idle threads waiting out the oldest call's patience
        self._stopped = False

    def start(self) -> None:
        for number in range(self._count):
            threading.Thread(target=self._work, name=f"request-{number}", daemon=True).start()

    def stop(self) -> None:
        """Each thread ends after the job it is running; queued jobs are dropped."""
        with self._lock:
            self._stopped = True
            idle, self._idle = self._idle, []
        for waking in idle:
            waking.release()

    def submit(self, function: Callable, *args: Any, call: bool = False) -> asyncio.Future:
        """`function(*args)` in a request thread; its result, awaitable in this loop. A
        `call` (of the app) takes a turn; anything else starts at once."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = (loop, future, function, args)
        with self._lock:
            if call:
                self._calls.append((time.monotonic(), job))
            else:
                self._quick.append(job)
            waking = self._idle.pop() if self._idle else None
        if waking is not None:
            waking.release()
        return future

    def _work(self) -> None:
        wake_up = threading.Lock()
        wake_up.acquire()
        while True:
            with self._lock:
                if self._stopped:
                    return
                job, call, wait = self._next_job()
                if job is None:
                    self._idle.append(wake_up)
                elif self._calls and self._idle and not self._timing:
                    # The calls behind this one need an idle thread timing their patience.
                    self._idle.pop().release()
            if job is None:
                self._wait(wake_up, wait)
                continue
            try:
                _run(*job)
            finally:
                if call:
                    with self._lock:
                        self._running -= 1

    def _next_job(self) -> tuple[Any, bool, float | None]:
        """(job, whether it is a call, None) to run now; or (None, False, seconds to wait
        before one may start, or None for until woken). Called holding the lock."""
        if self._quick:
            return self._quick.popleft(), False, None
        if not self._calls:
            return None, False, None
        waited = time.monotonic() - self._calls[0][0]
        if self._running < self._most or waited >= self._patience:
            self._running += 1
            return self._calls.popleft()[1], True, None
        return None, False, self._patience - waited

    def _wait(self, wake_up: threading.Lock, seconds: float | None) -> None:
        """Wait until woken, or `seconds` (the oldest call's patience) have passed."""
        timing = seconds is not None
        with self._lock:
            self._timing += timing
        woken = wake_up.acquire(timeout=seconds if timing else -1)
        with self._lock:
            self._timing -= timing
        if woken:
            return
        with self._lock:
            woken = wake_up not in self._idle
            if not woken:
                self._idle.remove(wake_up)
        if woken:  # taken off the idle list just now: its release is on the way
            wake_up.acquire()


def _run(loop: asyncio.AbstractEventLoop, future: asyncio.Future, function, args) -> None:
    try:
        outcome = (function(*args), None)
    except Exception as error:  # handed to the awaiting coroutine
        outcome = (None, error)
    with contextlib.suppress(RuntimeError):  # the loop has ended
        loop.call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
