#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: C++ (ctest) and Python (pytest).
#   - Debian packages (compiler, CMake, Ninja, GoogleTest, and on x86-64 the aarch64 cross compiler
#     and qemu-user for the NEON tests) via apt-get, only when missing;
#   - a virtual environment under the repository (.venv) with the package and its `test` and `embed`
#     extras (the code-search tests run the real embedding model, offline);
#   - a CMake build of the library and GoogleTest suite under build/cpp (ctest includes the NEON
#     engine tests cross-built for aarch64 and run under qemu, about 2 minutes);
#   - the wheel test (scripts/test-wheel.sh: pip wheel, auditwheel repair, a fresh venv outside the
#     tree, pytest against the installed wheel; about 2 minutes here); NNDEX_TEST_WHEEL=0 skips it.
#   - the GPU backend's tests on lavapipe (Mesa's CPU implementation of Vulkan): NNDEX_EXPECT_GPU=1
#     makes them fail, not skip, if the backend was not built or no Vulkan device is found.
# Fails if any suite fails or runs no test. Extra arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/ensure-system-deps.sh --tests
export NNDEX_EXPECT_GPU=1

echo "==> Python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch first, pinned: that version installs a CPU build (an unpinned torch pulls GBs of CUDA).
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q ".[test,embed]"

echo "==> C++ build and ctest"
cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DNNDEX_BUILD_TESTS=ON >/dev/null
cmake --build build/cpp -j "$(nproc)"
ctest --test-dir build/cpp --output-on-failure -j "$(nproc)" --no-tests=error

echo "==> pytest"
cd "$root"
.venv/bin/python -m pytest tests/python "$@"

if [ "${NNDEX_TEST_WHEEL:-1}" != 0 ]; then
  echo "==> wheel test"
  ./scripts/test-wheel.sh
fi
