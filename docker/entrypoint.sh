#!/bin/sh
# Starts the model's REST API and web UI on $PORT (80), or, in expert mode, the Jupyter
# sandbox on 8080. Anything else is run as a command.
#
# The sandbox is never an open server: it always gets a token (JUPYTER_TOKEN, or a random one
# printed here), also when a `jupyter ...` command is given, as ModelHub's start script does
# with an empty token.
set -eu

token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_urlsafe(24))')}"
announce() {
  echo "Jupyter sandbox: http://127.0.0.1:${1}/notebooks/sandbox.ipynb?token=${token}"
}

case "${1:-serve}" in
  serve)
    exec python -m modelhubapi serve ;;
  notebook|expert)
    # The package is read-only for the server's user: the sandbox is a copy it may edit.
    mkdir -p "${HOME}/sandbox"
    cp -n /contrib_src/sandbox.ipynb "${HOME}/sandbox/"
    announce 8080
    exec jupyter notebook --ip=0.0.0.0 --port=8080 --no-browser \
      --ServerApp.root_dir="${HOME}/sandbox" --IdentityProvider.token="${token}" ;;
  jupyter)
    announce "<port>"
    # Given last, these win over any token the command sets, whatever spelling it uses.
    exec "$@" --NotebookApp.token="${token}" --ServerApp.token="${token}" \
      --IdentityProvider.token="${token}" ;;
  *)
    exec "$@" ;;
esac
