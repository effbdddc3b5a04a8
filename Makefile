# The two commands a user needs: `make run` and `make test`. Everything else builds on `install`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
IMAGE  ?= $(shell $(PYTHON) -c "import json; print(json.load(open('init/init.json'))['docker_id'])" 2>/dev/null)

export PYTHONPATH := $(CURDIR)/framework:$(CURDIR)/contrib_src

.PHONY: install init run test lint bench notebook docker docker-check clean

$(VENV)/.installed: requirements.txt requirements-build.txt requirements-dev.txt
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

lint: $(VENV)/.installed
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
