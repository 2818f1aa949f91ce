#!/usr/bin/env bash
# Sets up a virtual environment with prisma_widgets and JupyterLab, runs the quickstart tutorial on the
# bundled offline model (no download), then opens it in JupyterLab.
#   bash scripts/quickstart.sh            # set up, run, open JupyterLab
#   NO_LAB=1 bash scripts/quickstart.sh   # set up and run only (CI, remote shells)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
NOTEBOOK=tutorials/00_quickstart.ipynb

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip

echo "==> installing prisma_widgets with JupyterLab (builds the JS bundle with npm on first install)"
python -m pip install -q -e ".[lab,viz]"
# the notebook's "python3" kernel, inside this venv (--sys-prefix: a user-wide kernel would be left alone)
python -m ipykernel install --sys-prefix --name python3 >/dev/null

echo "==> running $NOTEBOOK on the bundled offline model"
start=$(date +%s)
PRISMA_WIDGETS_OFFLINE="${PRISMA_WIDGETS_OFFLINE:-1}" jupyter execute --timeout=600 "$NOTEBOOK"
echo "==> the quickstart ran in $(( $(date +%s) - start )) s"

if [ -n "${NO_LAB:-}" ] || [ -n "${CI:-}" ]; then
  exit 0
fi
echo "==> opening JupyterLab (Ctrl-C to stop)"
exec jupyter lab "$NOTEBOOK"
