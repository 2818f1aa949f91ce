#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs the whole suite:
# vitest (js/), pytest (backend, widgets, bundled models), browser tests in headless Debian chromium.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip

step "torch (pinned for the tests: the 2.13 CPU wheel in /opt/wheels matches no torchvision; see DEVELOPERS.md)"
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"

if ! command -v chromium >/dev/null 2>&1; then
  step "Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

step "JS bundle (npm ci + esbuild into prisma_widgets/static/)"
(cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)

step "the package with its test extras"
python -m pip install -q -e ".[test]"

step "vitest"
(cd js && npm test --silent)

step "pytest"
python -m pytest "$@"
