# The two commands of the README. Both install whatever is missing first (idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false

.PHONY: help run test test-image bootstrap bootstrap-test lint typecheck bench bench-review clean

help:
	@echo "make run    install what is missing, then run the whole stack at http://127.0.0.1:3000"
	@echo "make test   install what is missing, then run the whole test suite on throwaway services"
	@echo "            and build the Docker image with podman and run its roles (make test-image)"

bootstrap:
	@scripts/bootstrap.sh run

bootstrap-test:
	@scripts/bootstrap.sh test

run: bootstrap
	@exec $(VENV)/bin/heaters up

# pytest exits 5 when it collected no tests: that is a failure here, like any non-zero status.
# Browser tests run after the rest, in one process: each starts `heaters web`, and two Reflex builds
# must never share .web at once.
test: bootstrap-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 -p no:cacheprovider -m "not browser"
	$(PY) -m pytest -p no:cacheprovider -m browser
	$(MAKE) --no-print-directory test-image

# The Docker image, built with podman (installed with its Debian base if missing: scripts/podman_base.sh)
# and run in every role against throwaway servers: scripts/test_image.py says what it checks.
test-image: bootstrap-test
	$(PY) scripts/test_image.py

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

bench: bootstrap
	$(PY) bench/ingest.py

bench-review: bootstrap
	$(PY) bench/review.py

clean:
	rm -rf .web .states $(VENV) .tools .mypy_cache .ruff_cache
