#!/usr/bin/env bash
# A new user's first `make run`: clone REPO at REV into a temporary folder, run `make run` on a
# free loopback port and time it until the service answers /api/ready (the model answered its
# warm-up). Prints the wall time, the size of the .venv it made and its package count, then
# stops the server and removes the clone.
#
#   MODELHUB_MIRROR=/path/to/assets benchmarks/fresh-run.sh [REPO] [REV]
#
# Run it a few times, alternating the revisions compared: pip's cache and the machine's load
# move the absolute numbers.
set -euo pipefail
repo="${1:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}"
rev="${2:-HEAD}"
clone="$(mktemp -d /tmp/fresh-run.XXXXXX)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$clone"
}
trap cleanup EXIT

git clone --quiet "$repo" "$clone"
git -C "$clone" checkout --quiet "$rev"
started="$(date +%s.%N)"
setsid make -C "$clone" run PORT="$port" >"$clone.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/api/ready" >/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then echo "make run failed:"; tail -20 "$clone.log"; exit 1; fi
  sleep 0.2
done
ready="$(date +%s.%N)"
printf 'rev %s: ready after %.1f s, .venv %s MB, %s packages\n' \
  "$(git -C "$clone" rev-parse --short HEAD)" "$(echo "$ready - $started" | bc)" \
  "$(du -sm "$clone/.venv" | cut -f1)" "$("$clone/.venv/bin/python" -m pip list 2>/dev/null | tail -n +3 | wc -l)"
rm -f "$clone.log"
