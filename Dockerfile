# DeepRec API image: multi-stage, slim Python, non-root, read-only code, with a health check.
#
#   docker build -t deeprec .                                   # CPU torch (small)
#   docker build -t deeprec:cuda \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .   # CUDA torch
#   docker build --network host -t deeprec \
#     --build-arg TORCH_INDEX_URL= --build-arg PIP_FIND_LINKS=http://127.0.0.1:8765/ .
#     # torch from PyPI (empty index URL) or from a folder/server of wheels (PIP_FIND_LINKS)
#
# The install step is scripts/install.sh, the same script `make install` and CI run.
# Start-up: scripts/entrypoint.sh (migrate, load, train the required models, then serve and train
# the rest in the background); it passes SIGTERM on, so `docker stop` leaves no job `running`.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: a venv with everything
FROM python:${PYTHON_VERSION}-slim AS build
# Empty TORCH_INDEX_URL: torch from PyPI (or from PIP_FIND_LINKS, a folder or URL of wheels).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC=torch==2.13.0
ARG PIP_FIND_LINKS=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /app
# The Makefile's install: torch first (TORCH_SPEC from TORCH_INDEX_URL; its own layer, so a code
# change does not fetch it again), then the package, editable so that migrations/ stays next to it.
COPY scripts/install.sh scripts/
RUN if [ -n "${PIP_FIND_LINKS}" ]; then export PIP_FIND_LINKS; else unset PIP_FIND_LINKS; fi \
 && PYTHON=/opt/venv/bin/python TORCH_INDEX_URL="${TORCH_INDEX_URL}" TORCH_SPEC="${TORCH_SPEC}" \
    scripts/install.sh --torch-only
COPY scripts/entrypoint.sh scripts/
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY ml ml
COPY migrations migrations
RUN if [ -n "${PIP_FIND_LINKS}" ]; then export PIP_FIND_LINKS; else unset PIP_FIND_LINKS; fi \
 && PYTHON=/opt/venv/bin/python TORCH_INDEX_URL="${TORCH_INDEX_URL}" TORCH_SPEC="${TORCH_SPEC}" \
    scripts/install.sh postgres --editable \
 && /opt/venv/bin/python -m compileall -q -j 0 /app/app /app/ml /app/migrations \
 && (/opt/venv/bin/python -m compileall -q -j 0 -x '/(tests?|testing)/' /opt/venv/lib || true)
# Byte code compiled here: the service user cannot write the code tree, and imports stay fast
# (third-party test folders skipped: some hold newer-Python syntax that never runs here).

# ---------------------------------------------------------------- runtime: venv + code, non-root
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 deeprec \
 && useradd --system --uid 10001 --gid deeprec --home-dir /data --shell /usr/sbin/nologin deeprec \
 && mkdir -p /data \
 && chown deeprec:deeprec /data
# Code and venv stay owned by root: the service user reads them and writes only /data (and /tmp).
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/data \
    DEEPREC_DATA_DIR=/data \
    DEEPREC_DEVICE=auto \
    DEEPREC_HOST=0.0.0.0 \
    DEEPREC_PORT=8000
USER deeprec
VOLUME ["/data"]
EXPOSE 8000
# The port the server listens on (DEEPREC_PORT), not a fixed 8000.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DEEPREC_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
