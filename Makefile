# The two commands a user needs: `make run` and `make test`. Everything else builds on `install`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
CONTAINER_CHECK ?= $(CURDIR)/docker/container-check.sh
DOCKER ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
# podman's default (OCI) image format has no HEALTHCHECK: ask for Docker's.
BUILD_FORMAT := $(if $(filter podman,$(DOCKER)),--format docker,)
IMAGE  ?= $(shell $(PYTHON) -c "import json; print(json.load(open('init/init.json'))['docker_id'])" 2>/dev/null)

export PYTHONPATH := $(CURDIR)/framework:$(CURDIR)/contrib_src

.PHONY: help install init run test lint bench notebook docker docker-serve docker-mirror docker-check clean scale-test

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

## docker: build ModelHub's image (what start.py runs) from source, tagged as init.json says
##   (offline: MODELHUB_MIRROR=DIR make docker takes the external files from DIR)
docker: docker-mirror
	$(DOCKER) build $(BUILD_FORMAT) -t $(IMAGE) .

## docker-serve: build the serving image (REST API and web UI on 8080, no Jupyter)
docker-serve: docker-mirror
	$(DOCKER) build $(BUILD_FORMAT) --target serve -t $(IMAGE)-serve .

# The external files the build stage takes instead of downloading, when MODELHUB_MIRROR is set.
docker-mirror:
	@if [ -n "$$MODELHUB_MIRROR" ]; then \
	  $(PYTHON) docker/collect_mirror.py; fi

## docker-check: build both images with podman, classify samples in each over HTTP, check they
##   are not root and keep their HEALTHCHECK, that expert mode refuses callers without the
##   printed token, then ModelHub's start.py and test_integration.py against the image
docker-check: $(VENV)/.installed docker-mirror
	IMAGE=localhost/$(IMAGE):latest CHECK_CMD="$(CURDIR)/docker/smoke-test.sh" \
	bash $(CONTAINER_CHECK) $(CURDIR)
	IMAGE=localhost/$(IMAGE)-serve:latest BUILD_ARGS="--target serve" CONTAINER_PORT=8080 \
	CHECK_CMD="$(CURDIR)/docker/smoke-test.sh && $(CURDIR)/docker/size-check.sh" \
	bash $(CONTAINER_CHECK) $(CURDIR)
	IMAGE=localhost/$(IMAGE):latest CHECK_CMD="$(CURDIR)/docker/expert-check.sh" \
	CONTAINER_PORT=8080 PROBE_PATH=/api RUN_ARGS='--entrypoint=["modelhub-entrypoint","expert"]' \
	bash $(CONTAINER_CHECK) $(CURDIR)
	$(PY) -m pytest -m container

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
