#!/usr/bin/env bash
# Installs, via apt-get, the Debian packages that building nndex needs, only when they are missing:
# a C++20 compiler, CMake, Ninja, the Python headers and venv module, and for the GPU backend the
# GLSL compiler and the Vulkan headers (glslc, libvulkan-dev; without them nndex builds CPU-only).
# Pass --tests to add GoogleTest, Mesa's Vulkan drivers (lavapipe, a CPU implementation of Vulkan the
# GPU tests run on) and, on x86-64, the aarch64 cross compiler and qemu-user that the NEON tests under
# emulation need. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

need=()
command -v g++ >/dev/null || need+=(g++)
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need+=(python3-dev)
command -v glslc >/dev/null || need+=(glslc)
[ -f /usr/include/vulkan/vulkan.h ] || need+=(libvulkan-dev)
if [ "${1:-}" = "--tests" ]; then
  [ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
  ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
  if [ "$(uname -m)" = x86_64 ]; then
    command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
    command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  fi
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
