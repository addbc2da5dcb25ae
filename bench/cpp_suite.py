"""Builds and runs the Google Benchmark microbenchmarks of bench/cpp (kernels, top-k, exact search,
IVF) in their own build tree, build/bench, and keeps their JSON output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from common import REPO_DIR, log, usable_cpus

BUILD = REPO_DIR / "build" / "bench"
EXE = BUILD / "bench" / "cpp" / "nndex_microbench"
CONFIGURE = ["cmake", "-S", ".", "-B", "build/bench", "-DNNDEX_BUILD_BENCH=ON", "-DNNDEX_BUILD_TESTS=OFF",
             "-DNNDEX_INSTALL=OFF", "-DCMAKE_BUILD_TYPE=Release"]
BUILD_CMD = ["cmake", "--build", "build/bench", "-j2", "--target", "nndex_microbench"]


def build() -> str | None:
    """Configures (once) and builds the microbenchmarks; None on success, else the error."""
    if shutil.which("cmake") is None:
        return "cmake not found"
    steps = ([] if (BUILD / "CMakeCache.txt").exists() else [CONFIGURE]) + [BUILD_CMD]
    for cmd in steps:
        log("$ " + " ".join(cmd))
        proc = subprocess.run(["nice", "-n", "5", *cmd] if shutil.which("nice") else cmd, cwd=REPO_DIR,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            return f"`{' '.join(cmd)}` failed:\n{tail}"
    return None


def run(quick: bool) -> dict:
    t0 = time.perf_counter()
    err = build()
    build_s = time.perf_counter() - t0
    out = {"configure": " ".join(CONFIGURE), "build": " ".join(BUILD_CMD), "build_s": build_s}
    if err:
        log(f"C++ microbenchmarks unavailable: {err}")
        out["error"] = err
        return out
    min_time = "0.02" if quick else "0.25"
    json_path = BUILD / "microbench.json"
    shown = [f"--benchmark_min_time={min_time}"]
    if quick:  # the portable scalar kernels only in the full run
        shown.append("--benchmark_filter=-.*scalar.*")
    cmd = [str(EXE), *shown, "--benchmark_format=console", f"--benchmark_out={json_path}",
           "--benchmark_out_format=json"]
    out["command"] = " ".join([str(EXE.relative_to(REPO_DIR)), *shown])
    log(f"$ {out['command']}")
    t1 = time.perf_counter()
    env = dict(os.environ)
    proc = subprocess.run(cmd, cwd=REPO_DIR, capture_output=True, text=True, env=env, timeout=1800)
    out["run_s"] = time.perf_counter() - t1
    if proc.returncode != 0 or not json_path.exists():
        out["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
        log(f"C++ microbenchmarks failed: {out['error']}")
        return out
    data = json.loads(json_path.read_text())
    out["context"] = data.get("context", {})
    out["benchmarks"] = [
        {k: b.get(k) for k in ("name", "run_name", "real_time", "cpu_time", "time_unit", "iterations", "label",
                               "FLOP/s", "bytes_per_second", "items_per_second", "QPS", "threads_used", "nlist",
                               "selected", "error_message")
         if b.get(k) is not None}
        for b in data.get("benchmarks", [])]
    out["threads"] = usable_cpus()
    log(f"C++ microbenchmarks: {len(out['benchmarks'])} results in {out['run_s']:.0f} s")
    return out


if __name__ == "__main__":
    import sys
    from common import RESULTS_DIR, write_json
    write_json(RESULTS_DIR / "cpp.json", run("--quick" in sys.argv))
