#!/bin/sh
# Starts the model's REST API and web UI on $PORT (80), or, in expert mode, the Jupyter
# sandbox on 8080 behind a token. Anything else is run as a command.
set -eu
case "${1:-serve}" in
  serve)
    exec python -m modelhubapi serve ;;
  notebook|expert)
    token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_urlsafe(24))')}"
    echo "Jupyter sandbox: http://127.0.0.1:8080/notebooks/sandbox.ipynb?token=${token}"
    exec jupyter notebook --ip=0.0.0.0 --port=8080 --no-browser \
      --IdentityProvider.token="${token}" --ServerApp.root_dir=/contrib_src ;;
  *)
    exec "$@" ;;
esac
