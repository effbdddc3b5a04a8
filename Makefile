# The two commands a user needs: `make run` and `make test`. Everything else builds on `install`.
# Each requirements file has one purpose: requirements.txt serves the model, -build builds the
# model file, -notebook runs the sandbox, -dev tests and lints (and includes the others).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet
MODELHUB := $(VENV)/bin/modelhub
HOST   ?= 127.0.0.1
PORT   ?= 8080
NOTEBOOK_PORT ?= 8888
CONTAINER_CHECK ?= $(CURDIR)/docker/container-check.sh
DOCKER ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
# podman's default (OCI) image format has no HEALTHCHECK: ask for Docker's.
BUILD_FORMAT = $(if $(filter podman,$(DOCKER)),--format docker,)
IMAGE  ?= $(shell $(PYTHON) -c "import json; print(json.load(open('init/init.json'))['docker_id'])" 2>/dev/null)

# The model variant served (fp32, compact or int8); only that one is built besides fp32.
MODELHUB_VARIANT ?= fp32
export MODELHUB_VARIANT
MODEL := contrib_src/model/$(if $(filter fp32,$(MODELHUB_VARIANT)),model.onnx,model_$(MODELHUB_VARIANT).onnx)
MODEL_SOURCES := init/init.json contrib_src/build.py contrib_src/processing.py \
	$(wildcard contrib_src/squeezenet/*.py)
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT = $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help install init run test lint bench bench-server notebook docker docker-serve docker-mirror docker-check clean scale-test

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

# The engine is installed in editable mode: the `modelhub` command runs framework/ as it is.
# A fresh clone has no model file yet: its build requirements come in the same pip run.
BUILD_TOO := $(if $(wildcard $(MODEL)),,-r requirements-build.txt)
$(VENV)/.installed: requirements.txt framework/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt $(BUILD_TOO) -e ./framework
	touch $@ $(if $(BUILD_TOO),$(VENV)/.installed-build)

$(VENV)/.installed-%: requirements-%.txt | $(VENV)/.installed
	$(PIP) -r $<
	touch $@

$(VENV)/.installed-dev: requirements-build.txt requirements-notebook.txt

# The model file is built only when it is missing or older than what it is built from; the
# build requirements are installed only then (the build itself skips an up-to-date file).
$(MODEL): $(MODEL_SOURCES) | $(VENV)/.installed
	$(MAKE) --no-print-directory $(VENV)/.installed-build
	$(MODELHUB) init
	touch $@

## install: the serving requirements and the engine in .venv, the external files, the model
install: $(VENV)/.installed $(MODEL)
	$(MODELHUB) init --no-build

## init: fetch and verify the external files (MODELHUB_MIRROR first), build the model files
init: $(VENV)/.installed $(VENV)/.installed-build
	$(MODELHUB) init

## run: serve the REST API and web UI on HOST:PORT (default 127.0.0.1:8080)
run: install
	HOST=$(HOST) PORT=$(PORT) $(MODELHUB) serve

## test: the whole test suite (development requirements)
test: $(VENV)/.installed-dev install
	$(PY) -m pytest

## scale-test: 3 replicas behind HAProxy (apt-get install haproxy) under 4 clients for 40 s,
##   one killed and one stopped meanwhile: no request may fail
scale-test: $(VENV)/.installed-dev install
	$(PY) -m pytest -s tests/scale/scale_replicas.py

## lint: ruff on the code, hadolint on the Dockerfile
lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile

## bench: the benchmark (ceiling, in-process pipeline, HTTP server), results in artifacts/
bench: $(VENV)/.installed-dev install
	for variant in compact int8; do $(MODELHUB) init --variant $$variant || exit 1; done
	$(PY) -m benchmarks.run $(ARGS)

## bench-server: this tree's server side by side with the engine of AGAINST (default 8642211,
##   the last waitress server) and a minimal FastAPI server of the same pipeline, interleaved
AGAINST ?= 8642211
bench-server: $(VENV)/.installed-dev install
	$(PY) -m benchmarks.compare --against $(AGAINST) $(ARGS)

## notebook: the Jupyter sandbox on 127.0.0.1:NOTEBOOK_PORT (default 8888), with a token
notebook: $(VENV)/.installed-notebook install
	cd contrib_src && $(CURDIR)/$(VENV)/bin/jupyter notebook --ip=127.0.0.1 --port=$(NOTEBOOK_PORT) \
		--no-browser $(ALLOW_ROOT) sandbox.ipynb

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
docker-check: $(VENV)/.installed-dev docker-mirror
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
