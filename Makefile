# The two commands a user needs: `make run` and `make test`. Everything else builds on `install`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
CONTAINER_CHECK ?= $(CURDIR)/../shared/tools/container-check.sh
DOCKER ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
IMAGE  ?= $(shell $(PYTHON) -c "import json; print(json.load(open('init/init.json'))['docker_id'])" 2>/dev/null)

export PYTHONPATH := $(CURDIR)/framework:$(CURDIR)/contrib_src

.PHONY: help install init run test lint bench notebook docker docker-check clean scale-test

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-build.txt requirements-notebook.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## install: virtualenv with the pinned requirements, then the external files and the model
install: $(VENV)/.installed init

## init: fetch and verify the external files (MODELHUB_MIRROR first), build model.onnx
init: $(VENV)/.installed
	$(PY) -m modelhubapi init

## run: serve the REST API and web UI on HOST:PORT (default 127.0.0.1:8080)
run: install
	HOST=$(HOST) PORT=$(PORT) $(PY) -m modelhubapi serve

## test: the whole test suite
test: install
	$(PY) -m pytest

## scale-test: 3 replicas behind HAProxy (apt-get install haproxy) under 4 clients for 40 s,
##   one killed and one stopped meanwhile: no request may fail
scale-test: install
	$(PY) -m pytest -s tests/scale/scale_replicas.py

## lint: ruff on the code, hadolint on the Dockerfile
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile

## bench: the benchmark (ceiling, in-process pipeline, HTTP server), results in artifacts/
bench: install
	$(PY) -m benchmarks.run $(ARGS)

## notebook: the Jupyter sandbox on 127.0.0.1:8888, with a token
notebook: install
	cd contrib_src && $(CURDIR)/$(VENV)/bin/jupyter notebook --ip=127.0.0.1 --port=8888 --no-browser sandbox.ipynb

## docker: build the image (podman when there is no Docker engine)
docker: install
	$(DOCKER) build -t $(IMAGE) .

## docker-check: podman-build the image, classify samples inside it, check it is not root,
##   and that expert mode (Jupyter) refuses callers without the printed token
# The server runs unprivileged on port 80: Docker lets containers bind low ports by default
# (ip_unprivileged_port_start=0); podman is told the same.
docker-check: install
	CHECK_CMD="$(CURDIR)/docker/smoke-test.sh" \
	RUN_ARGS="--sysctl net.ipv4.ip_unprivileged_port_start=0" \
	bash $(CONTAINER_CHECK) $(CURDIR)
	CHECK_CMD="$(CURDIR)/docker/expert-check.sh" CONTAINER_PORT=8080 PROBE_PATH=/api \
	RUN_ARGS='--entrypoint=["modelhub-entrypoint","expert"]' \
	bash $(CONTAINER_CHECK) $(CURDIR)
	# ModelHub's start script asks for an empty token; the sandbox must still require one.
	CHECK_CMD="$(CURDIR)/docker/expert-check.sh" CONTAINER_PORT=8888 PROBE_PATH=/api \
	RUN_ARGS='--entrypoint=["modelhub-entrypoint","jupyter","notebook","--ip=0.0.0.0","--port=8888","--NotebookApp.token="]' \
	bash $(CONTAINER_CHECK) $(CURDIR)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
