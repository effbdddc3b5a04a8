#!/usr/bin/env bash
# Build a project's Dockerfile and run the image on a machine with no Docker engine and no
# container registry: podman (rootful, runc) and a Debian base image made with debootstrap
# from the host's own apt mirror. Then probe the running container over HTTP.
#
# usage: container-check.sh CONTEXT_DIR [DOCKERFILE]
# env:   CONTAINER_PORT  port the image listens on (default 80)
#        PROBE_PATH      path that must answer 200 (default /api/get_config)
#        CHECK_CMD       optional command run once it answers; $URL holds the base URL,
#                        $CONTAINER the container name (for `podman exec "$CONTAINER" ...`)
#        RUN_ARGS        extra arguments for `podman run` (e.g. "-e FOO=1")
#        BUILD_ARGS      extra arguments for `podman build` (e.g. "--target serve")
#        IMAGE           tag of the image built (default localhost/container-check:latest)
#        BUILD_ONLY      1: build and tag the image, run nothing
# The first run on a machine installs podman, runc and debootstrap and builds two base images
# (about 2 minutes); later runs take seconds. Exit 0 only if the build, the probe and CHECK_CMD
# all succeed. The container is always removed.
set -euo pipefail
CTX=${1:?context dir}; DF=${2:-$CTX/Dockerfile}
CPORT=${CONTAINER_PORT:-80}; PROBE=${PROBE_PATH:-/api/get_config}
say() { echo "[container-check $(date +%T)] $*"; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing podman, runc, debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

# runc, not crun (hybrid cgroups); ulimits no higher than this machine allows
export CONTAINERS_CONF=${CONTAINERS_CONF:-/tmp/container-check.conf}
cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

if ! podman image exists localhost/debian:bookworm; then
  mirror=$(grep -h -m1 '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || { say "no apt mirror found in /etc/apt/sources.list.d"; exit 2; }
  say "debootstrap bookworm from the host's apt mirror"
  R=$(mktemp -d /tmp/rootfs.XXXX)
  debootstrap --variant=minbase bookworm "$R" "$mirror" >/dev/null
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* \
         "$R"/etc/apt/sources.list "$R"/etc/hostname "$R"/etc/machine-id
  : > "$R"/etc/resolv.conf
  grep -v '^#' /etc/apt/sources.list.d/debian.sources > "$R"/etc/apt/sources.list.d/debian.sources
  # trust the host's CA bundle too (networks behind a TLS-intercepting proxy)
  mkdir -p "$R"/usr/local/share/ca-certificates "$R"/etc/ssl/certs
  cp /usr/local/share/ca-certificates/*.crt "$R"/usr/local/share/ca-certificates/ 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$R"/etc/ssl/certs/ca-certificates.crt
  printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' > "$R"/etc/apt/apt.conf.d/docker-clean
  tar --numeric-owner -C "$R" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/bin/bash"]' - localhost/debian:bookworm >/dev/null
  rm -rf "$R"
fi
if ! podman image exists localhost/python:3.11-slim; then
  say "building a local stand-in for python:3.11-slim"
  E=$(mktemp -d)
  printf '%s\n' 'FROM localhost/debian:bookworm' 'ENV LANG=C.UTF-8' \
   'RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/python && /opt/python/bin/pip install --no-cache-dir --upgrade pip setuptools wheel' \
   'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["python3"]' \
   | podman build --pull=never -q -t localhost/python:3.11-slim -f - "$E" >/dev/null
  rmdir "$E"
  podman tag localhost/python:3.11-slim docker.io/library/python:3.11-slim
fi

IMG=${IMAGE:-localhost/container-check:latest}; NAME=container-check-$$
HPORT=$((20000 + RANDOM % 20000))
say "podman build"
# shellcheck disable=SC2086
podman build --pull=never --format docker --build-arg BASE_IMAGE=localhost/python:3.11-slim \
  ${BUILD_ARGS:-} -f "$DF" -t "$IMG" "$CTX"
if [ "${BUILD_ONLY:-0}" = 1 ]; then say "built $IMG"; exit 0; fi
say "podman run (container port $CPORT -> 127.0.0.1:$HPORT)"
# shellcheck disable=SC2086
podman run -d --name "$NAME" -p "127.0.0.1:$HPORT:$CPORT" ${RUN_ARGS:-} "$IMG" >/dev/null
trap 'podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true' EXIT
export URL=http://127.0.0.1:$HPORT CONTAINER=$NAME
ok=
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$URL$PROBE" 2>/dev/null; then ok=1; break; fi
  podman container inspect -f '{{.State.Running}}' "$NAME" | grep -q true || break
  sleep 0.2
done
if [ -z "$ok" ]; then say "FAIL: no answer on $URL$PROBE"; podman logs "$NAME" 2>&1 | tail -50; exit 1; fi
say "answering on $URL$PROBE"
if [ -n "${CHECK_CMD:-}" ]; then
  bash -c "$CHECK_CMD" || { say "FAIL: CHECK_CMD"; podman logs "$NAME" 2>&1 | tail -50; exit 1; }
fi
podman stop -t 5 "$NAME" >/dev/null 2>&1 || true
say "OK"
