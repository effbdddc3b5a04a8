# The SqueezeNet model as a ModelHub service. Build after `make install` (which fetches the
# external files and builds contrib_src/model/model.onnx):
#   docker build -t squeezenet-modelhub .
#   docker run -p 80:80 squeezenet-modelhub             # REST API and web UI on port 80
#   docker run -p 8080:8080 squeezenet-modelhub expert  # Jupyter sandbox, token printed at start
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/framework:/contrib_src \
    HOST=0.0.0.0 \
    PORT=80 \
    MODELHUB_WORKING_DIR=/working \
    MODELHUB_OUTPUT_DIR=/output \
    MODELHUB_DATA_DIR=/data

COPY requirements.txt requirements-notebook.txt /tmp/requirements/
RUN pip install -r /tmp/requirements/requirements.txt -r /tmp/requirements/requirements-notebook.txt \
    && rm -rf /tmp/requirements \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin modelhub \
    && mkdir -p /working /output /data \
    && chown modelhub:modelhub /working /output /data

COPY docker/entrypoint.sh /usr/local/bin/modelhub-entrypoint
COPY framework/ /framework/
COPY contrib_src/ /contrib_src/

WORKDIR /contrib_src
USER 1000:1000
EXPOSE 80 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["modelhub-entrypoint", "healthcheck"]
ENTRYPOINT ["modelhub-entrypoint"]
CMD ["serve"]
