#!/usr/bin/env bash
# Regenerates python/nndex/_nndex.pyi from the built extension with nanobind's stub generator. Run it
# after changing python/src/bindings.cpp (then commit the .pyi); tests/python/test_stubs.py fails while
# the committed stubs differ from what the extension generates.
#   ./scripts/update-stubs.sh [PYTHON]    PYTHON: an interpreter with nndex and nanobind installed
#                                          (default: .venv/bin/python, after `pip install '.[test]'`)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-.venv/bin/python}
[[ "$py" == */* && "$py" != /* ]] && py=$(pwd)/$py  # relative paths stay valid after the cd below
# Run from outside the source tree, so `import nndex` finds the installed package with its extension.
out=$(pwd)/python/nndex/_nndex.pyi
(cd / && "$py" -m nanobind.stubgen -q -m nndex._nndex -o "$out")
echo "wrote $out"
