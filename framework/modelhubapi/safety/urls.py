"""The URL rule: SSRF-safe, bounded download of an http(s) URL given by a caller; and the
engine's one HTTP client, which the init step uses too (`fetch` with its own `Limits`).

ModelHub fetched any URL it was given (any scheme, internal hosts included) with no
timeout and no size cap: a caller could make the server read its own metadata
service or hang a request thread for ever. Here, for every hop:

1. only `http`/`https`, no credentials, a host made of plain name characters;
2. the host is resolved once (`resolve_host`) and *every* address must be public
   (unless `Limits.allow_private`: the settings' `allow_private_urls` for callers, always
   for init.json's URLs, which are the package's own configuration), which covers every
   spelling of an address (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`, `localhost.`, ...)
   because the check is made on what the name resolves to, not on how it is written;
3. the connection goes to a checked address itself (no second lookup that DNS
   rebinding could answer differently); TLS still verifies the certificate for the
   name in the URL;
4. at most `MAX_REDIRECTS` redirects, each hop checked from step 1 again;
5. one deadline for the whole download (the settings' `url_timeout`), enforced on every
   socket read and write, so a server dripping one byte at a time cannot stretch it
   (the init step, whose files reach hundreds of MB, has no overall deadline but the
   same limit on each wait);
6. the body is streamed to a temporary file next to the destination under the size
   cap (the settings' `max_upload_bytes`) and renamed into place only when complete.

A trusted download (`Limits.use_proxy`: the init step's) goes through the environment's
proxy when one is set (`http_proxy`, `https_proxy`, `no_proxy`, as pip and curl read them):
https through a CONNECT tunnel, TLS still verified end to end. A caller's URL never does:
the proxy would resolve the name itself, past the address check.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import math
import socket
import ssl
import string
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

from .. import atomicfiles
from ..settings import Settings
from .errors import InputError

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-.")
_CHUNK_BYTES = 64 * 1024
_USER_AGENT = "modelhub-engine"
_PROXY_HEAD_BYTES = 64 * 1024
_RESOLVER_THREADS = 4
_RESOLVER = ThreadPoolExecutor(_RESOLVER_THREADS, thread_name_prefix="modelhub-dns")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Limits:
    """What one download may do: `max_bytes` of body, `deadline` seconds in all (None: no
    overall deadline), `wait` seconds at most for any one lookup, connection, read or
    write, whether hosts may resolve to non-public addresses, and whether the environment's
    proxy is used (trusted URLs only)."""

    max_bytes: int
    deadline: float | None
    wait: float
    allow_private: bool = False
    use_proxy: bool = False

    @classmethod
    def for_callers(cls, settings: Settings) -> Limits:
        """The limits of a URL a caller gives the API, from the app's settings."""
        return cls(
            max_bytes=settings.max_upload_bytes,
            deadline=settings.url_timeout,
            wait=settings.url_timeout,
            allow_private=settings.allow_private_urls,
        )


_DEFAULT_LIMITS = Limits.for_callers(Settings())


class TooLarge(InputError):
    """The body is (or was announced to be) larger than `limit` bytes."""

    def __init__(self, limit: int):
        super().__init__(f"The file is larger than the {limit // (1024 * 1024)} MB limit.", 413)
        self.limit = limit


class _Clock(NamedTuple):
    """The time a download has left: the overall deadline (a time.monotonic() value, or
    infinity) and the longest single wait."""

    deadline: float
    wait: float

    @classmethod
    def start(cls, limits: Limits) -> _Clock:
        overall = math.inf if limits.deadline is None else limits.deadline
        return cls(time.monotonic() + overall, limits.wait)

    def remaining(self) -> float:
        """Seconds the next wait may take; TimeoutError once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return min(left, self.wait)


class _Target(NamedTuple):
    """One hop of a download: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    request_target: str


def download(url: str, destination: str, limits: Limits | None = None) -> None:
    """Download an http(s) URL to `destination` (a file path), or raise InputError.

    Scheme, credentials, host and every address the host resolves to are checked before
    any connection (non-public addresses refused unless `limits.allow_private`); the
    connection goes to a checked address; at most MAX_REDIRECTS redirects, each hop
    checked alike; `limits.deadline` seconds in all; `limits.max_bytes` at most (413
    beyond). `limits` defaults to the built-in settings' (`Limits.for_callers(Settings())`).
    Messages are plain; no partial file is ever left behind.
    """
    try:
        with (
            open_url(url, limits or _DEFAULT_LIMITS) as body,
            atomicfiles.atomic_output(destination) as file,
        ):
            body.copy_to(file)
    except TimeoutError:
        raise InputError("The URL did not answer in time.") from None
    except (OSError, http.client.HTTPException):
        raise InputError("The URL could not be downloaded.") from None


def resolve_host(host: str, port: int) -> list[str]:
    """The one DNS lookup of a hop: every address `host` resolves to, as text.

    Kept as its own function so that tests can point a public-looking name at loopback
    and watch the address rule hold on a redirect hop.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """True only for a globally routable unicast address, including any IPv4 address
    embedded in it (IPv4-mapped, -compatible, 6to4, Teredo, NAT64), since connecting to
    such an IPv6 form reaches the embedded IPv4 host."""
    special = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    )
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
        return not special and all(is_public_address(inner) for inner in _embedded_ipv4(address))
    return not special


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries and that a connection to it may reach."""
    embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    packed = address.packed
    if packed[:12] == bytes(12) or packed[:12] == b"\x00\x64\xff\x9b" + bytes(8):
        # IPv4-compatible (::a.b.c.d) and NAT64 well-known prefix (64:ff9b::a.b.c.d).
        embedded.append(ipaddress.IPv4Address(packed[12:]))
    return [inner for inner in embedded if inner is not None]


class Body:
    """The body of a checked 2xx response, not read yet."""

    def __init__(self, response: http.client.HTTPResponse, limit: int) -> None:
        self._response = response
        self._limit = limit

    @property
    def length(self) -> int | None:
        """The announced length in bytes, if the server gave one."""
        return self._response.length

    def copy_to(self, file: BinaryIO) -> None:
        """Write the whole body to `file`, chunk by chunk (one socket read each); TooLarge
        past the limit, InputError if the connection ends before the announced length."""
        received = 0
        while chunk := self._response.read1(_CHUNK_BYTES):
            received += len(chunk)
            if received > self._limit:
                raise TooLarge(self._limit)
            file.write(chunk)
        if self._response.length:
            raise InputError("The download was incomplete.")


@contextmanager
def open_url(url: str, limits: Limits) -> Iterator[Body]:
    """The body of a GET of `url`, redirects followed and every hop checked as `download`
    says, within `limits`; the connection is closed at the end of the block.

    Raises InputError for a refused URL, host, status or announced size (TooLarge),
    TimeoutError when time runs out, OSError or http.client.HTTPException when the
    network fails.
    """
    response = _follow_redirects(url, _Clock.start(limits), limits)
    try:
        if response.length is not None and response.length > limits.max_bytes:
            raise TooLarge(limits.max_bytes)
        yield Body(response, limits.max_bytes)
    finally:
        response.close()


def _follow_redirects(url: str, clock: _Clock, limits: Limits) -> http.client.HTTPResponse:
    """GET `url`, following at most MAX_REDIRECTS redirects; the final 2xx response, open."""
    for _ in range(MAX_REDIRECTS + 1):
        response = _get(_parse(url), clock, limits)
        location = response.getheader("Location")
        if response.status in _REDIRECT_STATUSES and location:
            response.close()
            try:
                url = urljoin(url, location.strip())
            except ValueError:  # a Location the URL parser cannot even join, e.g. `http://[::1`
                raise _not_allowed() from None
            continue
        if not 200 <= response.status < 300:
            response.close()
            raise InputError(f"The URL answered with HTTP status {response.status}.")
        return response
    raise InputError("Too many redirects.")


def _parse(url: str) -> _Target:
    """Split and vet a URL without touching the network.

    Refused: other schemes, credentials (`http://public@127.0.0.1/` tricks), whitespace,
    backslashes and control characters (which parsers disagree about), and hosts with
    anything but name characters after IDNA encoding (percent-escapes, zone ids, ...).
    """
    if not isinstance(url, str) or any(not char.isprintable() or char in " \\" for char in url):
        raise _not_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _not_allowed() from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InputError("Only http and https URLs are allowed.")
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise _not_allowed()
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(
        scheme=scheme,
        host=_normalise_host(parts.hostname),
        port=port or _DEFAULT_PORTS[scheme],
        # Only non-ASCII characters need escaping: whitespace and controls were refused above.
        request_target=quote(request_target, safe=string.punctuation),
    )


def _normalise_host(hostname: str) -> str:
    """An IP literal in its canonical form, or an IDNA-encoded lower-case name."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _not_allowed() from None
    if not host or not set(host) <= _HOST_CHARACTERS:
        raise _not_allowed()
    return host


def _not_allowed() -> InputError:
    """One answer for every refused host, so it tells nothing about internal names."""
    return InputError("URL not allowed: its host is unknown or not public.")


def _checked_addresses(host: str, port: int, clock: _Clock, allow_private: bool) -> list[str]:
    """Resolve once; refuse unless every address is public (or private ones are allowed).

    The lookup runs in a resolver thread so that a slow DNS server counts against the
    download's deadline too (getaddrinfo itself has no timeout); a lookup still running
    then finishes in the background, and at most _RESOLVER_THREADS run at once.

    A name the resolver does not know (or cannot look up, offline) is answered as such, so a
    caller with a typo is not told the host is forbidden. That tells whether the server's
    resolver knows a name, never what it points at: every refused address gets one answer.
    """
    lookup = _RESOLVER.submit(resolve_host, host, port)
    try:
        addresses = lookup.result(timeout=clock.remaining())
    except TimeoutError:  # the deadline passed: the caller answers "did not answer in time"
        raise
    except socket.gaierror:
        raise InputError("The URL's host name could not be resolved.") from None
    except (OSError, UnicodeError):
        raise _not_allowed() from None
    if not addresses:
        raise _not_allowed()
    if not allow_private and not all(
        is_public_address(ipaddress.ip_address(address)) for address in addresses
    ):
        raise _not_allowed()
    return addresses


def _get(target: _Target, clock: _Clock, limits: Limits) -> http.client.HTTPResponse:
    """Send one GET to a checked address of `target` (or through the proxy of a trusted
    download); the response with its headers read."""
    proxy = _proxy_for(target) if limits.use_proxy else None
    if proxy:
        sock = _connect_through(proxy, target, clock)
    else:
        addresses = _checked_addresses(target.host, target.port, clock, limits.allow_private)
        sock = _connect(target, addresses, clock)
    stream = _DeadlineStream(sock, clock)
    try:
        stream.sendall(_request_bytes(target, absolute=bool(proxy) and target.scheme == "http"))
        response = http.client.HTTPResponse(stream, method="GET")  # type: ignore[arg-type]
        response.begin()
    except BaseException:
        stream.close()
        raise
    return response


def _connect(target: _Target, addresses: list[str], clock: _Clock) -> socket.socket:
    """Connect to the first checked address that answers; TLS verified against the URL's name."""
    error: OSError = ConnectionError("no address")
    for address in addresses:
        try:
            sock = socket.create_connection((address, target.port), timeout=clock.remaining())
        except OSError as exc:
            error = exc
            continue
        return _secured(sock, target, clock)
    raise error


def _secured(sock: socket.socket, target: _Target, clock: _Clock) -> socket.socket:
    """`sock` as is for http; for https wrapped in TLS verified against the URL's name."""
    if target.scheme == "http":
        return sock
    try:
        sock.settimeout(clock.remaining())
        return ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise


def _proxy_for(target: _Target) -> tuple[str, int] | None:
    """(host, port) of the environment's proxy for `target`, or None to connect directly."""
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parts.hostname, parts.port or 80) if parts.hostname else None


def _connect_through(proxy: tuple[str, int], target: _Target, clock: _Clock) -> socket.socket:
    """A connection to `target` through an http proxy: the proxy itself for http (the
    request names the whole URL), a CONNECT tunnel for https (TLS inside it)."""
    sock = socket.create_connection(proxy, timeout=clock.remaining())
    if target.scheme == "http":
        return sock
    try:
        authority = _authority(target, always_port=True)
        sock.settimeout(clock.remaining())
        sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        status = _tunnel_status(sock, clock)
        if status != 200:
            raise ConnectionError(f"the proxy refused the tunnel (HTTP {status})")
    except BaseException:
        sock.close()
        raise
    return _secured(sock, target, clock)


def _tunnel_status(sock: socket.socket, clock: _Clock) -> int:
    """The status of a proxy's answer to CONNECT, read up to its blank line and no further
    (what follows belongs to the tunnel)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        sock.settimeout(clock.remaining())
        byte = sock.recv(1)
        if not byte or len(head) > _PROXY_HEAD_BYTES:
            raise ConnectionError("the proxy closed or sent a malformed answer")
        head += byte
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError("the proxy sent a malformed answer") from None


def _authority(target: _Target, always_port: bool = False) -> str:
    """host[:port] of `target`, the port left out when it is the scheme's default."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    if always_port or target.port != _DEFAULT_PORTS[target.scheme]:
        host = f"{host}:{target.port}"
    return host


def _request_bytes(target: _Target, absolute: bool = False) -> bytes:
    """The request, written out: `Host` is the URL's name (the socket goes to its address);
    `absolute` names the whole URL, as a request to an http proxy does."""
    host = _authority(target)
    path = f"{target.scheme}://{host}{target.request_target}" if absolute else target.request_target
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {_USER_AGENT}",
        "Accept: */*",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class _DeadlineStream(io.RawIOBase):
    """A socket as http.client sees it, re-armed with the time left before every read
    and write: a plain socket timeout restarts with each byte received, so a slow-drip
    server could otherwise hold a download far past its deadline."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        super().__init__()
        self._sock = sock
        self._clock = clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(self._clock.remaining())
        return self._sock.recv_into(buffer)

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._clock.remaining())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        """What http.client reads the response through (closing it closes the socket)."""
        return io.BufferedReader(self)

    def close(self) -> None:
        if not self.closed:
            self._sock.close()
        super().close()

