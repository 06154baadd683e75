# syntax=docker/dockerfile:1
# Production image: a builder installs exactly uv.lock (no dev/test/bench groups) and the project
# itself as a plain, non-editable package into /app/.venv; the slim runtime copies only that venv
# and runs it as an unprivileged user. Migrations, catalogs and static files are package data.
#
# The base is pinned by its full version tag. To pin it by digest as well (recommended for
# releases), resolve the tag once and write it here, e.g.:
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm   # prints "Digest: sha256:…"
#   ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<that digest>
# Both stages must use the same image: the venv's python is the base's /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first (a layer that changes only with uv.lock), then the project.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY core core
COPY conversations conversations
COPY bots bots
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 gongnon \
    && useradd --system --uid 10001 --gid gongnon --home-dir /app --no-create-home gongnon \
    && mkdir -p /data \
    && chown gongnon:gongnon /data
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GONGNON_DATA_DIR=/data \
    GONGNON_HOST=0.0.0.0 \
    GONGNON_PORT=8080
WORKDIR /app
USER gongnon
# Uploaded photos (and SQLite, if no database URL is set) live here: mount a volume.
VOLUME ["/data"]
EXPOSE 8080
# 200 from /healthz (database reachable; "degraded" still serves), anything else is unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GONGNON_PORT', '8080'), timeout=4); sys.exit(0)"]
CMD ["gongnon", "serve"]
