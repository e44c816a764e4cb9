#!/usr/bin/env bash
# Install DeepRec into the Python given by $PYTHON (a virtual environment's python).
# Used by the Makefile, CI and the Dockerfile, so all three install the same way.
#
#   PYTHON=.venv/bin/python scripts/install.sh [EXTRAS] [--editable]
#   PYTHON=.venv/bin/python scripts/install.sh --torch-only   # torch alone (a cached image layer)
#
# torch comes first, pinned: TORCH_SPEC (default torch==2.13.0) from TORCH_INDEX_URL when set
# (e.g. https://download.pytorch.org/whl/cu128 for a CUDA build, .../whl/cpu for a small CPU build).
set -euo pipefail

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${1:-}
MODE=${2:-}

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  echo "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}" >&2
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    pip_install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"
  else
    pip_install "$TORCH_SPEC"
  fi
fi

if [ "$EXTRAS" = "--torch-only" ]; then exit 0; fi

target="."
[ -n "$EXTRAS" ] && target=".[$EXTRAS]"
if [ "$MODE" = "--editable" ]; then
  pip_install -e "$target"
else
  pip_install "$target"
fi
echo "installed deeprec${EXTRAS:+[$EXTRAS]} with $("$PYTHON" -c 'import torch; print("torch", torch.__version__)')" >&2
