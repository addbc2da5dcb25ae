#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: C++ (ctest) and Python (pytest).
#   - Debian packages (compiler, CMake, Ninja, GoogleTest) via apt-get, only when missing;
#   - a virtual environment under the repository (.venv) with the package and its `test` extra;
#   - a CMake build of the library and GoogleTest suite under build/cpp.
# Fails if either suite fails or runs no test. Extra arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_debs=()
command -v g++ >/dev/null || need_debs+=(g++)
command -v cmake >/dev/null || need_debs+=(cmake)
command -v ninja >/dev/null || need_debs+=(ninja-build)
[ -f /usr/include/gtest/gtest.h ] || need_debs+=(libgtest-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_debs+=(python3-venv)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need_debs+=(python3-dev)
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_debs[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_debs[@]}"
fi

echo "==> Python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q ".[test]"

echo "==> C++ build and ctest"
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DNNDEX_BUILD_TESTS=ON >/dev/null
cmake --build build/cpp -j "$(nproc)"
ctest --test-dir build/cpp --output-on-failure -j "$(nproc)" --no-tests=error

echo "==> pytest"
cd "$root"
.venv/bin/python -m pytest tests/python "$@"
