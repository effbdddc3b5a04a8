"""Copy init/init.json's external files from the MODELHUB_MIRROR folders into docker/mirror/,
where the image's build stage takes them instead of downloading (offline image builds).

Files are found by name (the upstream file name or the local one, in subfolders too), as the
init step finds them, and copied only when their SHA-256 is init.json's: the build would
refuse any other. Standard library only, so `make docker` needs no virtualenv:
`python3 docker/collect_mirror.py` from the repository root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import urllib.parse

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(REPO_DIR, "docker", "mirror")


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def files_by_name(folders: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                found.setdefault(name, []).append(os.path.join(root, name))
    return found


def main() -> int:
    with open(os.path.join(REPO_DIR, "init", "init.json"), encoding="utf-8") as handle:
        entries = json.load(handle)["external_contrib_files"]
    mirrors = [path for path in os.environ.get("MODELHUB_MIRROR", "").split(os.pathsep) if path]
    available = files_by_name(mirrors)
    copied = 0
    for entry in entries:
        local = os.path.basename(entry["dest_file_path"])
        upstream = os.path.basename(urllib.parse.urlsplit(entry["src_url"]).path)
        candidates = available.get(upstream, []) + available.get(local, [])
        match = next((path for path in candidates if sha256(path) == entry["sha256"]), None)
        if match:
            shutil.copyfile(match, os.path.join(TARGET, local))
            copied += 1
    print(f"docker/mirror: {copied} of {len(entries)} external files copied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
