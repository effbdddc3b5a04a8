"""The URL rule (modelhubapi.safety.urls), against loopback servers only: a canary that
records whether it was contacted, one that hangs, one that drips, one that never stops,
redirect chains; plus a routed "public" name to check each hop and the pinned address."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import threading
import time
from collections.abc import Iterator

import pytest
from loopback_servers import (
    LOOPBACK_LOCATIONS,
    PATIENCE,
    PUBLIC_IP,
    PUBLIC_NAME,
    Handler,
    Route,
    Server,
    answering,
    endless,
    hang,
    huge_length,
    redirect_to,
    self_signed,
    serving,
    tls_context,
)

from modelhubapi.safety import urls
from modelhubapi.safety.errors import InputError
from modelhubapi.safety.urls import download, is_public_address
from modelhubapi.settings import Settings

DEFAULTS = Settings()

NOT_ALLOWED = "URL not allowed: its host is unknown or not public."
UNRESOLVED = "The URL's host name could not be resolved."
BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def ok(handler: Handler) -> None:
    handler.answer(200, BODY, Content_Type="image/png")


def drip_body(handler: Handler) -> None:
    """Headers at once, then one byte of body every 50 ms: no read ever times out."""
    handler.send_response(200)
    handler.end_headers()
    while not handler.server.stopping.wait(0.05):
        handler.wfile.write(b"x")
        handler.wfile.flush()


def drip_headers(handler: Handler) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not handler.server.stopping.wait(0.05):
        handler.wfile.write(b"x")
        handler.wfile.flush()


def short_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"only ten b")
    handler.close_connection = True


def hops(count: int) -> dict[str, Route]:
    """/hop/N redirects (relative Location) to /hop/N-1; /hop/0 is the file."""
    routes = {f"/hop/{n}": redirect_to(f"/hop/{n - 1}", 301 + n % 3) for n in range(1, count + 1)}
    return {**routes, "/hop/0": ok}


@pytest.fixture
def canary() -> Iterator[Server]:
    with serving({"/": ok}) as server:
        yield server


@pytest.fixture
def destination(tmp_path) -> str:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return str(folder / "file.bin")


def refused(url: str, destination: str, settings: Settings = DEFAULTS) -> InputError:
    """Download under `settings` must fail with a 4xx and leave nothing at all in the
    destination folder."""
    with pytest.raises(InputError) as caught:
        download(url, destination, urls.Limits.for_callers(settings))
    assert 400 <= caught.value.status < 500
    assert os.listdir(os.path.dirname(destination)) == []
    return caught.value


# --- the address rule: every spelling of a private host refused before any connection ----

PRIVATE_SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://127.0.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://017700000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[::1]:{port}/",
    "http://[::]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://localhost:{port}/",
    "http://localhost.:{port}/",
    "http://LOCALHOST:{port}/",
    "http://LocalHost.:{port}/",
    "HTTP://127.0.0.1:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://%6c%6f%63%61%6c%68%6f%73%74:{port}/",
    "http://%31%32%37.0.0.1:{port}/",
    "http://public.example@127.0.0.1:{port}/",
    "http://public.example:secret@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}@public.example/",
    "http://127.0.0.1:{port}\\@public.example/",
    "http://127.0.0.1:{port}#@public.example/",
    " http://127.0.0.1:{port}/",
    "http://127.0.0.1:{port}/\r\nX-Injected: 1",
    "http://127.0.0.1\t:{port}/",
    "http://127.0.0.1%00.public.example:{port}/",
    "http://[::ffff:127.0.0.1%25lo]:{port}/",
    "http://169.254.169.254:{port}/",
    "http://10.0.0.1:{port}/",
    "http://192.168.0.1:{port}/",
    "http://100.64.0.1:{port}/",
    "http://224.0.0.1:{port}/",
    "http://255.255.255.255:{port}/",
    "http://[fe80::1]:{port}/",
    "http://[fc00::1]:{port}/",
    "http://[fec0::1]:{port}/",
]


def test_every_spelling_of_a_private_host_is_refused_unconnected(canary, destination):
    for spelling in PRIVATE_SPELLINGS:
        error = refused(spelling.format(port=canary.port), destination)
        # A spelling that is no address literal (`localhost.`, `127.0.0.1.`) is a name, which
        # a resolver may not know: refused all the same, as unresolved.
        assert error.status == 400, spelling
        assert error.message in {NOT_ALLOWED, UNRESOLVED}, spelling
    assert canary.contacts == 0


def test_the_canary_does_answer_when_private_urls_are_allowed(canary, private_allowed, destination):
    """Without this, the test above could pass against a dead canary."""
    download(canary.url("/"), destination, urls.Limits.for_callers(private_allowed))
    assert canary.contacts == 1
    with open(destination, "rb") as file:
        assert file.read() == BODY


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/file.png",
        "gopher://127.0.0.1:70/",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/stat",
        "//example.org/file.png",
        "example.org/file.png",
        "",
    ],
)
def test_only_http_and_https(private_allowed, destination, url):
    assert (
        refused(url, destination, private_allowed).message
        == "Only http and https URLs are allowed."
    )


@pytest.mark.parametrize("url", ["http://", "http:///path", "http://:80/", "http://a:99999/"])
def test_urls_without_a_usable_host_are_refused(private_allowed, destination, url):
    assert refused(url, destination, private_allowed).message == NOT_ALLOWED


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("2002:808:808::1", True),  # 6to4 of a public address
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", False),  # IPv4-mapped forms are never needed from DNS
        ("::127.0.0.1", False),
        ("2002:7f00:1::1", False),  # 6to4 of loopback
        ("2002:a9fe:a9fe::1", False),  # 6to4 of the metadata address
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("fe80::1", False),
        ("fec0::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
    ],
)
def test_public_address_table(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


# --- a public-looking name routed to loopback: hop checking and address pinning ------------


def test_one_lookup_per_hop_and_the_connection_goes_to_the_checked_address(
    routed_public_name, destination
):
    lookups, connections = routed_public_name
    with serving({"/file": ok}) as server:
        download(server.url("/file", host=PUBLIC_NAME), destination)
        assert server.requests == [("/file", f"{PUBLIC_NAME}:{server.port}")]
    assert lookups == [PUBLIC_NAME]
    assert connections == [PUBLIC_IP]


@pytest.mark.parametrize("location", LOOPBACK_LOCATIONS)
def test_a_redirect_to_a_private_host_is_refused(routed_public_name, canary, destination, location):
    with serving({"/go": redirect_to(location.format(port=canary.port))}) as server:
        error = refused(server.url("/go", host=PUBLIC_NAME), destination)
        assert server.contacts == 1
    assert error.message == NOT_ALLOWED
    assert canary.contacts == 0


def test_a_redirect_to_another_scheme_is_refused(routed_public_name, destination):
    with serving({"/go": redirect_to("file:///etc/passwd")}) as server:
        error = refused(server.url("/go", host=PUBLIC_NAME), destination)
    assert error.message == "Only http and https URLs are allowed."


# --- redirects, statuses, sizes, deadlines (private URLs allowed: the canary is loopback) ---


def test_three_redirects_are_followed(private_allowed, destination):
    with serving(hops(3)) as server:
        download(server.url("/hop/3"), destination, urls.Limits.for_callers(private_allowed))
        assert [path for path, _ in server.requests] == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]
    with open(destination, "rb") as file:
        assert file.read() == BODY


def test_a_fourth_redirect_is_refused(private_allowed, destination):
    with serving(hops(4)) as server:
        assert (
            refused(server.url("/hop/4"), destination, private_allowed).message
            == "Too many redirects."
        )
        assert server.contacts == 4


def test_a_redirect_loop_ends(private_allowed, destination):
    with serving({"/loop": redirect_to("/loop", 307)}) as server:
        assert (
            refused(server.url("/loop"), destination, private_allowed).message
            == "Too many redirects."
        )


@pytest.mark.parametrize("status", [304, 401, 404, 500])
def test_non_2xx_answers_are_refused_plainly(private_allowed, destination, status):
    with serving({"/x": answering(status, b"internal detail at 10.0.0.5")}) as server:
        error = refused(server.url("/x"), destination, private_allowed)
    assert error.message == f"The URL answered with HTTP status {status}."


def test_a_successful_download_replaces_the_destination(private_allowed, destination):
    with open(destination, "wb") as file:
        file.write(b"old content")
    with serving({"/file": ok}) as server:
        download(
            server.url("/file?version=2"), destination, urls.Limits.for_callers(private_allowed)
        )
        assert server.requests[0][0] == "/file?version=2"
    assert os.listdir(os.path.dirname(destination)) == ["file.bin"]
    with open(destination, "rb") as file:
        assert file.read() == BODY


def test_a_declared_length_over_the_cap_is_refused_at_once(private_allowed, destination):
    """The server then sends nothing: a refusal before the deadline proves it came from
    the header, not from reading."""
    patient = dataclasses.replace(private_allowed, url_timeout=30)
    with serving({"/big": huge_length}) as server:
        error = refused(server.url("/big"), destination, patient)
    assert (error.status, error.message) == (413, "The file is larger than the 32 MB limit.")


def test_an_endless_stream_is_cut_at_the_cap(private_allowed, destination):
    one_mb = dataclasses.replace(private_allowed, max_upload_bytes=1024 * 1024)
    with serving({"/endless": endless}) as server:
        error = refused(server.url("/endless"), destination, one_mb)
    assert (error.status, error.message) == (413, "The file is larger than the 1 MB limit.")


def test_a_body_shorter_than_declared_is_refused(private_allowed, destination):
    with serving({"/short": short_body}) as server:
        assert (
            refused(server.url("/short"), destination, private_allowed).message
            == "The download was incomplete."
        )


def test_a_closed_port_is_refused_plainly(private_allowed, destination, closed_port_url):
    error = refused(f"{closed_port_url}/", destination, private_allowed)
    assert error.message == "The URL could not be downloaded."


@pytest.mark.parametrize("route", [hang, drip_headers, drip_body], ids=lambda route: route.__name__)
def test_the_deadline_covers_the_whole_download(private_allowed, destination, route):
    """A silent server, and servers dripping a byte every 50 ms (so that no single read
    ever times out): all end at the deadline, far before the servers would stop."""
    one_second = dataclasses.replace(private_allowed, url_timeout=1)
    with serving({"/slow": route}) as server:
        started = time.monotonic()
        error = refused(server.url("/slow"), destination, one_second)
        elapsed = time.monotonic() - started
    assert error.message == "The URL did not answer in time."
    assert elapsed < PATIENCE / 3


def test_the_deadline_covers_a_slow_dns_lookup(destination, monkeypatch):
    """getaddrinfo has no timeout of its own: a resolver that never answers must still end
    at the download's deadline."""
    released = threading.Event()

    def stuck_lookup(host, port):
        released.wait(PATIENCE)
        return []

    monkeypatch.setattr(urls, "resolve_host", stuck_lookup)
    started = time.monotonic()
    try:
        error = refused("http://slow-dns.example/", destination, Settings(url_timeout=1))
    finally:
        released.set()
    assert error.message == "The URL did not answer in time."
    assert time.monotonic() - started < PATIENCE / 3


# --- https: the socket goes to the checked address, TLS verifies the URL's name ------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for PUBLIC_NAME."""
    return self_signed(str(tmp_path_factory.mktemp("tls")), PUBLIC_NAME)


@pytest.fixture
def tls_server(certificate, monkeypatch) -> Iterator[tuple[Server, list[str | None]]]:
    """An https server for PUBLIC_NAME, trusted through SSL_CERT_FILE; records SNI names."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    context = tls_context(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    with serving({"/file": ok}, tls=context) as server:
        yield server, server_names


def test_https_connects_to_the_checked_address_with_sni(
    routed_public_name, tls_server, destination
):
    server, server_names = tls_server
    lookups, connections = routed_public_name
    download(server.url("/file", host=PUBLIC_NAME, scheme="https"), destination)
    assert (lookups, connections, server_names) == ([PUBLIC_NAME], [PUBLIC_IP], [PUBLIC_NAME])
    with open(destination, "rb") as file:
        assert file.read() == BODY


def test_https_refuses_a_certificate_for_another_name(tls_server, private_allowed, destination):
    server, _ = tls_server
    error = refused(
        server.url("/file", host="localhost", scheme="https"), destination, private_allowed
    )
    assert error.message == "The URL could not be downloaded."
