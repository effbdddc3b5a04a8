"""The init step (modelhubapi.externalfiles) on a throw-away package: mirrors, downloads, errors.

Remote sides are loopback HTTP servers started here; nothing reaches the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from modelhubapi import externalfiles
from modelhubapi.externalfiles import InitError, load_manifest, run_init
from modelhubapi.settings import Settings

CONTENT = {"weights.bin": b"\x00\x01weights" * 100, "labels.json": b'{"0": "tench"}'}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self):
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A loopback HTTP server; tests fill `routes` (path -> status, headers, body)."""
    handler = type("Handler", (_Handler,), {"routes": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield handler.routes, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def package(tmp_path):
    """A package root with contrib_src/ and init/; `write(entries)` writes init.json."""
    (tmp_path / "contrib_src").mkdir()
    (tmp_path / "init").mkdir()

    def write(entries):
        (tmp_path / "init" / "init.json").write_text(
            json.dumps({"docker_id": "test", "external_contrib_files": entries})
        )
        return tmp_path

    return write


def entry(name, url, data=None, dest=None):
    return {
        "src_url": f"{url}/{name}",
        "dest_file_path": dest or f"/contrib_src/model/{name}",
        "sha256": sha(CONTENT[name] if data is None else data),
    }


@pytest.fixture
def mirror(tmp_path_factory):
    """A mirror folder holding the files in a nested layout (found by name, recursively)."""
    root = tmp_path_factory.mktemp("mirror")
    (root / "deep" / "er").mkdir(parents=True)
    for name, data in CONTENT.items():
        (root / "deep" / "er" / name).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under root with inode, mtime and bytes: what 'nothing changed' compares."""
    return {
        str(path.relative_to(root)): (
            path.stat().st_ino,
            path.stat().st_mtime_ns,
            path.read_bytes(),
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def init(root: Path, mirrors, **kwargs):
    return run_init(
        str(root / "contrib_src"), mirrors=[str(m) for m in mirrors], progress=False, **kwargs
    )


def test_files_come_from_the_mirror_then_a_rerun_changes_nothing(package, mirror, closed_port_url):
    root = package([entry(name, closed_port_url) for name in CONTENT])

    first = init(root, [mirror])
    assert [outcome.source for outcome in first] == ["mirror", "mirror"]
    for name, data in CONTENT.items():
        assert (root / "contrib_src" / "model" / name).read_bytes() == data
        assert oct((root / "contrib_src" / "model" / name).stat().st_mode & 0o777) == "0o644"
    before = tree(root)

    second = init(root, [mirror])
    assert [outcome.source for outcome in second] == ["present", "present"]
    assert tree(root) == before


def test_checksum_mismatch_is_a_clear_error_and_writes_nothing(package, mirror, closed_port_url):
    tampered = b'{"0": "tampered"}'
    (mirror / "deep" / "er" / "labels.json").write_bytes(tampered)
    root = package([entry("labels.json", closed_port_url)])

    with pytest.raises(InitError) as raised:
        init(root, [mirror])

    message = str(raised.value)
    assert message.startswith("contrib_src/model/labels.json: ")
    assert f"expected SHA-256 {sha(CONTENT['labels.json'])}" in message
    assert f"has SHA-256 {sha(tampered)}" in message
    assert "download from" in message and "failed" in message
    assert not (root / "contrib_src" / "model").exists() or not any(
        (root / "contrib_src" / "model").iterdir()
    )


def test_missing_from_mirror_and_unreachable_url_is_a_clear_error(
    package, tmp_path_factory, closed_port_url
):
    empty_mirror = tmp_path_factory.mktemp("empty")
    root = package([entry("weights.bin", closed_port_url)])

    with pytest.raises(
        InitError,
        match=r"^contrib_src/model/weights\.bin: .*not found in the "
        r"mirror folders.*download from http://127\.0\.0\.1",
    ):
        init(root, [empty_mirror])
    assert tree(root / "contrib_src") == {}


def test_download_is_verified_and_written(package, server):
    routes, url = server
    routes["/weights.bin"] = (200, {}, CONTENT["weights.bin"])
    root = package([entry("weights.bin", url)])

    (outcome,) = init(root, [])
    assert (outcome.source, outcome.origin) == ("download", f"{url}/weights.bin")
    assert (root / "contrib_src" / "model" / "weights.bin").read_bytes() == CONTENT["weights.bin"]


def test_wrong_download_leaves_the_old_file_untouched(package, server):
    routes, url = server
    routes["/weights.bin"] = (200, {}, b"something else")
    root = package([entry("weights.bin", url)])
    stale = root / "contrib_src" / "model" / "weights.bin"
    stale.parent.mkdir()
    stale.write_bytes(b"stale")

    with pytest.raises(
        InitError, match=f"download from {url}/weights.bin has SHA-256 {sha(b'something else')}"
    ):
        init(root, [])
    assert stale.read_bytes() == b"stale"
    assert os.listdir(stale.parent) == ["weights.bin"]


def test_stale_file_is_replaced_from_the_mirror(package, mirror, closed_port_url):
    root = package([entry("weights.bin", closed_port_url)])
    stale = root / "contrib_src" / "model" / "weights.bin"
    stale.parent.mkdir()
    stale.write_bytes(b"stale")

    (outcome,) = init(root, [mirror])
    assert outcome.source == "mirror"
    assert stale.read_bytes() == CONTENT["weights.bin"]


def test_http_errors_and_redirects_to_other_schemes_are_refused(package, server):
    routes, url = server
    routes["/labels.json"] = (302, {"Location": "ftp://127.0.0.1/labels.json"}, b"")
    routes["/weights.bin"] = (503, {}, b"down")
    root = package([entry("labels.json", url)])
    with pytest.raises(InitError, match="Only http and https URLs are allowed"):
        init(root, [])
    root = package([entry("weights.bin", url)])
    with pytest.raises(InitError, match="HTTP status 503"):
        init(root, [])


def test_init_reaches_private_hosts_through_the_api_redirect_rule(package, server):
    """init.json is trusted configuration: its loopback URLs are fetched even with settings
    under which callers' URLs may not reach private hosts; redirects are followed as for
    callers, at most 3."""
    refusing = Settings(allow_private_urls=False)
    routes, url = server
    routes["/weights.bin"] = (302, {"Location": "/hop1"}, b"")
    routes["/hop1"] = (302, {"Location": "/hop2"}, b"")
    routes["/hop2"] = (200, {}, CONTENT["weights.bin"])
    root = package([entry("weights.bin", url)])
    (outcome,) = init(root, [], settings=refusing)
    assert outcome.source == "download"
    routes["/hop2"] = (302, {"Location": "/hop3"}, b"")
    routes["/hop3"] = (302, {"Location": "/hop4"}, b"")
    (root / "contrib_src" / "model" / "weights.bin").unlink()
    with pytest.raises(InitError, match="Too many redirects"):
        init(root, [], settings=refusing)


def test_only_http_urls_are_fetched(package):
    root = package([{**entry("labels.json", "x"), "src_url": "file:///etc/hostname"}])
    with pytest.raises(InitError, match="Only http and https URLs are allowed"):
        init(root, [])


def test_downloads_are_capped(package, server, monkeypatch):
    routes, url = server
    routes["/weights.bin"] = (200, {}, CONTENT["weights.bin"])
    monkeypatch.setattr(externalfiles, "MAX_DOWNLOAD_BYTES", 100)
    root = package([entry("weights.bin", url)])
    with pytest.raises(InitError, match="more than the 100-byte cap"):
        init(root, [])
    assert tree(root / "contrib_src") == {}


def test_a_stalled_server_times_out(package):
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        root = package([entry("weights.bin", url)])
        with pytest.raises(InitError, match="timed out"):
            init(root, [], settings=Settings(url_timeout=1))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"src_url": "http://x/a", "dest_file_path": "/contrib_src/a"}, "needs string fields"),
        (
            {"src_url": "http://x/a", "dest_file_path": "/contrib_src/a", "sha256": "abc"},
            "64 hexadecimal digits",
        ),
        (
            {"src_url": "http://x/a", "dest_file_path": "/../outside", "sha256": "0" * 64},
            "must be a file inside",
        ),
    ],
)
def test_invalid_init_json_is_refused(package, bad, message):
    root = package([bad])
    with pytest.raises(InitError, match=message):
        load_manifest(str(root / "init" / "init.json"))


def test_build_hook_runs_after_the_files_and_its_failure_is_reported(
    package, mirror, closed_port_url
):
    root = package([entry("labels.json", closed_port_url)])
    contrib = root / "contrib_src"
    (contrib / "build.py").write_text(
        "import os\n"
        "HERE = os.path.dirname(__file__)\n"
        "def main():\n"
        "    with open(os.path.join(HERE, 'model', 'labels.json')) as f:\n"
        "        data = f.read()\n"
        "    with open(os.path.join(HERE, 'model', 'derived.txt'), 'w') as f:\n"
        "        f.write(data.upper())\n"
    )
    init(root, [mirror])
    assert (contrib / "model" / "derived.txt").read_text() == '{"0": "TENCH"}'

    (contrib / "build.py").write_text("def main():\n    raise ValueError('weights are corrupt')\n")
    with pytest.raises(InitError, match=r"build\.py failed: weights are corrupt"):
        init(root, [mirror])
    init(root, [mirror], build=False)  # the files alone are fine
