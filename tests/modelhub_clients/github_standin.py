"""A loopback stand-in for the parts of GitHub that ModelHub's start.py reads: the model
index (models.json), the contents API listing of the model's repository, and raw files.

The model's repository is this one as git tracks it (tracked files, read from the working
tree); the external files of init/init.json are served from the asset mirror by name, as
their upstream hosts would serve them.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_REPO = "modelhub-ai/squeezenet"
INDEX_PATH = "/raw.githubusercontent.com/modelhub-ai/modelhub/master/models.json"


class GitHubStandIn:
    """Serves `repo_dir` as github.com/modelhub-ai/squeezenet on a loopback port."""

    def __init__(self, repo_dir: str, models_json: str, asset: Callable[[str], str]):
        self.repo_dir = repo_dir
        self.models_json = models_json
        self.asset = asset
        self.requests: list[str] = []
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=repo_dir, capture_output=True, check=True
        )
        self.tracked = set(filter(None, listing.stdout.decode().split("\0")))
        with open(os.path.join(repo_dir, "init", "init.json"), encoding="utf-8") as handle:
            entries = json.load(handle)["external_contrib_files"]
        self.external = {urllib.parse.urlsplit(e["src_url"]).path: e for e in entries}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def answer(self, path: str) -> tuple[int, bytes]:
        """(status, body) for GET `path` (/<host>/<path>?<query>)."""
        url = urllib.parse.urlsplit(path)
        host, _, rest = url.path.lstrip("/").partition("/")
        if url.path == INDEX_PATH:
            return 200, self._read(self.models_json)
        contents = f"repos/{MODEL_REPO}/contents"
        if host == "api.github.com" and rest.startswith(contents):
            return 200, json.dumps(self._listing(rest[len(contents) :].strip("/"))).encode()
        raw = f"{MODEL_REPO}/master/"
        if host == "raw.githubusercontent.com" and rest.startswith(raw):
            relative = rest[len(raw) :]
            if relative in self.tracked:
                return 200, self._read(os.path.join(self.repo_dir, relative))
        external = self.external.get("/" + rest)
        if host == "raw.githubusercontent.com" and external:
            return 200, self._read(self.asset(os.path.basename(external["dest_file_path"])))
        return 404, b'{"message": "Not Found"}'

    def _listing(self, folder: str) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        entries = {}
        for path in sorted(self.tracked):
            if not path.startswith(prefix):
                continue
            name, _, deeper = path[len(prefix) :].partition("/")
            entries[name] = {
                "name": name,
                "type": "dir" if deeper else "file",
                "download_url": None
                if deeper
                else f"https://raw.githubusercontent.com/{MODEL_REPO}/master/{path}",
            }
        return list(entries.values())

    @staticmethod
    def _read(path: str) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin.requests.append(self.path)
                status, body = standin.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet: the test reads `requests`."""

        return Handler
