#!/bin/sh
# Starts the model's REST API and web UI on $PORT (80), or, in expert mode, the Jupyter
# sandbox on 8080. Anything else is run as a command.
#
# The sandbox is never an open server: it always gets a token (JUPYTER_TOKEN, or a random one
# printed here), also when a `jupyter ...` command is given, as ModelHub's start script does
# with an empty token.
set -eu

health_url_file=/tmp/modelhub-health-url  # written by a notebook mode, read by healthcheck
token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_urlsafe(24))')}"
announce() {
  echo "Jupyter sandbox: http://127.0.0.1:${1}/notebooks/sandbox.ipynb?token=${token}"
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
    echo "http://127.0.0.1:8080/api" > "${health_url_file}"
    # The package is read-only for the server's user: the sandbox is a copy it may edit.
    mkdir -p "${HOME}/sandbox"
    cp -n /contrib_src/sandbox.ipynb "${HOME}/sandbox/"
    announce 8080
    exec jupyter notebook --ip=0.0.0.0 --port=8080 --no-browser \
      --ServerApp.root_dir="${HOME}/sandbox" --IdentityProvider.token="${token}" ;;
  jupyter)
    port=8888  # Jupyter's default, unless the command says otherwise
    previous=""
    for arg in "$@"; do
      case "${previous} ${arg}" in
        *" --port="*) port="${arg#--port=}" ;;
        "--port "*) port="${arg}" ;;
      esac
      previous="${arg}"
    done
    echo "http://127.0.0.1:${port}/api" > "${health_url_file}"
    announce "${port}"
    # Given last, these win over any token the command sets, whatever spelling it uses.
    exec "$@" --NotebookApp.token="${token}" --ServerApp.token="${token}" \
      --IdentityProvider.token="${token}" ;;
  *)
    exec "$@" ;;
esac
