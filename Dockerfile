# The SqueezeNet model as a ModelHub service, built from source: nothing needs to be done on
# the host first. The engine is installed as a package; /framework (empty) comes first on
# PYTHONPATH so that start.py's --mountframework still overrides it. Two images from this file:
#   docker build -t squeezenet-modelhub .
#       ModelHub's image, what `python start.py squeezenet` runs: REST API and web UI on port 80,
#       the Jupyter sandbox (`expert`, or start.py -e) on 8080, or any command (start.py -b).
#   docker build --target serve -t squeezenet-modelhub-serve .
#       the REST API and web UI alone, on port 8080, with no build tools and no Jupyter.
# The build stage fetches init/init.json's external files, checks their SHA-256 and builds the
# model; files placed in docker/mirror/ are taken instead of downloading them (offline builds:
# `make docker MODELHUB_MIRROR=DIR`).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY requirements.txt requirements-build.txt /src/
RUN pip install -r /src/requirements.txt -r /src/requirements-build.txt
COPY framework/ /src/framework/
RUN pip wheel --no-deps --wheel-dir /wheels /src/framework \
    && pip install --no-deps /wheels/*.whl
COPY init/ /src/init/
COPY contrib_src/ /src/contrib_src/
COPY docker/mirror/ /mirror/
WORKDIR /src/contrib_src
RUN MODELHUB_MIRROR=/mirror modelhub init

FROM ${BASE_IMAGE} AS serve
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/framework:/contrib_src \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODELHUB_WORKING_DIR=/working \
    MODELHUB_OUTPUT_DIR=/output \
    MODELHUB_DATA_DIR=/data
COPY requirements.txt /tmp/requirements/
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install -r /tmp/requirements/requirements.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/requirements /tmp/wheels \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin modelhub \
    && mkdir -p /working /output /data \
    && chown modelhub:modelhub /working /output /data
COPY docker/entrypoint.sh /usr/local/bin/modelhub-entrypoint
COPY --from=build /src/contrib_src/ /contrib_src/
WORKDIR /contrib_src
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["modelhub-entrypoint", "healthcheck"]
ENTRYPOINT ["modelhub-entrypoint"]
CMD ["serve"]

# ModelHub's image adds what start.py's modes need: `onnx`, so that a package mounted over
# /contrib_src without a model file builds it at start; Jupyter for expert mode; and port 80
# for the unprivileged server under any engine (Docker lets containers bind low ports,
# podman does not): the interpreter carries the file capability cap_net_bind_service.
FROM serve AS modelhub
USER root
COPY requirements-build.txt requirements-notebook.txt /tmp/requirements/
# hadolint ignore=DL3008
RUN pip install -r /tmp/requirements/requirements-build.txt \
        -r /tmp/requirements/requirements-notebook.txt \
    && rm -rf /tmp/requirements \
    && apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v python)")" \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
ENV PORT=80
USER 1000:1000
EXPOSE 80 8080
