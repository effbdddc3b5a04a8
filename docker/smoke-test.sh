#!/usr/bin/env bash
# Checks a running container the way a user would: run by container-check.sh with $URL (the
# container's base URL) and $CONTAINER (its name) set.
set -euo pipefail

top1() { python3 -c 'import json, sys; print(json.load(sys.stdin)["output"][0]["prediction"][0]["label"])'; }

sample=$(curl -fsS "$URL/api/predict_sample?filename=bagel.jpg" | top1)
echo "predict_sample bagel.jpg -> $sample"
[ "$sample" = "bagel, beigel" ]

photo=$(mktemp --suffix=.jpeg)
trap 'rm -f "$photo"' EXIT
curl -fsS -o "$photo" "$URL/api/samples/camel.jpeg"
upload=$(curl -fsS -F "file=@$photo" "$URL/api/predict" | top1)
echo "upload camel.jpeg -> $upload"
[ "$upload" = "Arabian camel, dromedary, Camelus dromedarius" ]

status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/ready")
echo "ready -> $status"
[ "$status" = 200 ]

uid=$(podman exec "$CONTAINER" id -u)
echo "server runs as uid $uid"
[ "$uid" != 0 ]

# The server may write its scratch and output folders, never its own code or model.
podman exec "$CONTAINER" sh -c 'test ! -w /contrib_src/inference.py && test ! -w /contrib_src/model'
podman exec "$CONTAINER" sh -c 'test -w /working && test -w /output'
echo "package read-only, /working and /output writable"

podman healthcheck run "$CONTAINER"
echo "HEALTHCHECK passes"
