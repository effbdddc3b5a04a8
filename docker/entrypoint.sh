#!/bin/sh
# Starts the model's REST API and web UI on $PORT, or, in expert mode, the Jupyter sandbox on
# 8080. Anything else is run as a command (ModelHub's start script: `/bin/bash`, or
# `jupyter notebook ...` for its expert mode).
#
# The sandbox is never an open server: it always gets a token (JUPYTER_TOKEN, or a random one
# printed here), also when a `jupyter ...` command asks for an empty one, as ModelHub's start
# script does. It runs on a copy of sandbox.ipynb in the user's home: the package folder may be
# a host folder the container's user cannot write (start.py mounts one), and saving must work.
set -eu

health_url_file=/tmp/modelhub-health-url  # written by a notebook mode, read by healthcheck
sandbox="${HOME}/sandbox"

# Sets `token` for the notebook modes only: serving and the HEALTHCHECK never start a
# Python just to make one.
prepare_sandbox() {
  token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_urlsafe(24))')}"
  echo "http://127.0.0.1:${1}/api" > "${health_url_file}"
  mkdir -p "${sandbox}"
  cp -n /contrib_src/sandbox.ipynb "${sandbox}/" 2>/dev/null || true
  echo "Jupyter sandbox (port ${1} of the container): http://localhost:${1}/notebooks/sandbox.ipynb?token=${token} - your notebooks are saved in ${sandbox}"
}

case "${1:-serve}" in
  serve)
    exec python -m modelhubapi serve ;;
  healthcheck)
    # The image's HEALTHCHECK: the API answered its warm-up prediction, or, in expert mode,
    # the notebook server answers.
    url=$(cat "${health_url_file}" 2>/dev/null || echo "http://127.0.0.1:${PORT}/api/ready")
    exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)' "$url" ;;
  notebook|expert)
    prepare_sandbox 8080
    exec jupyter notebook --ip=0.0.0.0 --port=8080 --no-browser \
      --ServerApp.root_dir="${sandbox}" --IdentityProvider.token="${token}" ;;
  jupyter)
    # Keep the command's options except any token (ours is given once, below: Jupyter refuses
    # an option given twice) and note its port (Jupyter's default 8888 otherwise).
    port=8888
    previous=""
    for arg do
      shift
      case "${previous}" in
        --port) port="${arg}" ;;
        --*token) previous=""; continue ;;
      esac
      previous="${arg}"
      case "${arg}" in
        --port=*) port="${arg#--port=}" ;;
        --*token=*) continue ;;
        --*token) continue ;;
      esac
      set -- "$@" "${arg}"
    done
    prepare_sandbox "${port}"
    exec "$@" --ServerApp.root_dir="${sandbox}" --IdentityProvider.token="${token}" ;;
  *)
    exec "$@" ;;
esac
