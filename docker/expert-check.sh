#!/usr/bin/env bash
# Checks the image's expert mode (Jupyter sandbox on 8080): run by container-check.sh with $URL
# and $CONTAINER set. The server must refuse callers without the token printed at start.
set -euo pipefail

anonymous=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/contents/sandbox.ipynb?content=0")
echo "without token -> $anonymous"
[ "$anonymous" = 403 ]

token=$(podman logs "$CONTAINER" 2>&1 | sed -n 's/.*sandbox.ipynb?token=\([A-Za-z0-9_-]*\).*/\1/p' | head -1)
[ -n "$token" ]
with_token=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/contents/sandbox.ipynb?content=0&token=$token")
echo "with the printed token -> $with_token"
[ "$with_token" = 200 ]

uid=$(podman exec "$CONTAINER" id -u)
echo "notebook server runs as uid $uid"
[ "$uid" != 0 ]

podman healthcheck run "$CONTAINER"
echo "HEALTHCHECK passes"
