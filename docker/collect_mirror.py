"""Copy init/init.json's external files from the MODELHUB_MIRROR folders into docker/mirror/,
where the image's build stage takes them instead of downloading (offline image builds).

Files are found by name, as the init step finds them, and checked against their SHA-256: a
wrong file is not copied (the build would refuse it anyway). Usage, from the repository root:
`python docker/collect_mirror.py` (make docker runs it when MODELHUB_MIRROR is set).
"""

from __future__ import annotations

import os
import shutil
import sys

from modelhubapi import externalfiles, settings

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(REPO_DIR, "docker", "mirror")


def main() -> int:
    manifest = externalfiles.load_manifest(os.path.join(REPO_DIR, "init", "init.json"))
    copied = 0
    for entry in manifest:
        found = [
            path
            for name in entry.names
            for path in externalfiles.find_in_mirrors(name, settings.mirror_dirs())
            if externalfiles.file_sha256(path) == entry.sha256
        ]
        if found:
            shutil.copyfile(found[0], os.path.join(TARGET, os.path.basename(entry.dest)))
            copied += 1
    print(f"docker/mirror: {copied} of {len(manifest)} external files copied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
