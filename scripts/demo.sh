#!/usr/bin/env bash
# Installs nndex into a virtual environment under the repository (.venv) and runs the demo:
# an index over 100,000 x 384 generated embeddings, one query and a batch.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q .
exec .venv/bin/python -m nndex.demo "$@"
