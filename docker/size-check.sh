#!/usr/bin/env bash
# The serving image adds at most 230 MB to its base image: run by container-check.sh with
# $IMAGE set to the serving image's tag.
set -euo pipefail
base=$(podman image inspect --format '{{.Size}}' localhost/python:3.11-slim)
image=$(podman image inspect --format '{{.Size}}' "$IMAGE")
added=$(( (image - base) / 1000000 ))
echo "$IMAGE adds $added MB to its base image"
[ "$added" -le 230 ]
