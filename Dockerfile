# syntax=docker/dockerfile:1
# DeepRec API image: multi-stage, slim Python, non-root, with a health check.
#
#   docker build -t deeprec .                                   # CPU torch (small)
#   docker build -t deeprec:cuda \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .   # CUDA torch
#
# The install step is scripts/install.sh, the same script `make install` and CI run.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: a venv with everything
FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC=torch==2.13.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY scripts/install.sh scripts/install.sh
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY ml ml
COPY migrations migrations
# The Makefile's install: torch first (TORCH_SPEC from TORCH_INDEX_URL), then the package,
# editable so that migrations/ stays next to it.
RUN PYTHON=/opt/venv/bin/python TORCH_INDEX_URL="${TORCH_INDEX_URL}" TORCH_SPEC="${TORCH_SPEC}" \
    scripts/install.sh postgres --editable

# ---------------------------------------------------------------- runtime: venv + code, non-root
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 deeprec \
 && useradd --system --uid 10001 --gid deeprec --home-dir /app --shell /usr/sbin/nologin deeprec \
 && mkdir -p /data \
 && chown deeprec:deeprec /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=deeprec:deeprec /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEEPREC_DATA_DIR=/data \
    DEEPREC_DEVICE=auto
USER deeprec
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["deeprec", "serve", "--host", "0.0.0.0", "--port", "8000"]
