"""The machine's own limits, measured in the same run: sustained memory read bandwidth and peak
FMA throughput on 1 thread and on all threads (bench/native/membw.cpp, built on first use)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from common import BENCH_DIR, BUILD_DIR, log, meminfo_bytes, usable_cpus

MEMBW_SRC = BENCH_DIR / "native" / "membw.cpp"
COMPILE_FLAGS = ["-O2", "-std=c++17", "-pthread"]


def build_membw() -> tuple[Path, str]:
    """Compiles membw.cpp into bench/.build/ when missing or stale; returns (binary, command)."""
    exe = BUILD_DIR / "membw"
    cxx = os.environ.get("CXX", "c++")
    cmd = [cxx, *COMPILE_FLAGS, str(MEMBW_SRC), "-o", str(exe)]
    shown = " ".join([cxx, *COMPILE_FLAGS, "bench/native/membw.cpp", "-o", "bench/.build/membw"])
    if exe.exists() and exe.stat().st_mtime >= MEMBW_SRC.stat().st_mtime:
        return exe, shown
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = BUILD_DIR / f"membw.tmp{os.getpid()}"
    log("building " + shown)
    proc = subprocess.run([*cmd[:-1], str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling membw failed:\n{proc.stderr.strip()}")
    os.replace(tmp, exe)
    return exe, shown


def measure(quick: bool, threads: int | None = None) -> dict:
    """Runs the probe; returns its JSON plus how it was run, or {"error": ...}."""
    threads = threads or usable_cpus()
    mib = 512 if quick else 1024
    avail = meminfo_bytes("MemAvailable")
    if avail is not None:
        mib = max(64, min(mib, avail // (4 << 20)))  # at most a quarter of the free memory
    reps = 5 if quick else 10
    try:
        exe, build_cmd = build_membw()
        args = ["--mib", str(mib), "--reps", str(reps), "--threads", str(threads), "--fma"]
        log(f"machine limits: membw {' '.join(args)} ...")
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"membw exited with {proc.returncode}: {proc.stderr.strip()}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as exc:  # the rest of the suite still runs; the report says why
        log(f"machine limits unavailable: {exc}")
        return {"error": str(exc)}
    out["command"] = f"bench/.build/membw {' '.join(args)}"
    out["build_command"] = build_cmd
    bw = out
    log(f"read bandwidth {bw['read_gbps_1t']:.1f} GB/s (1 thread, {bw['read_kernel_1t']}), "
        f"{bw['read_gbps_all']:.1f} GB/s ({threads} threads, {bw['read_kernel_all']}); FMA peak " +
        ", ".join(f"{k} {v['1t']:.0f}/{v['all']:.0f}" for k, v in (bw.get("peak_gflops") or {}).items()) +
        " GFLOP/s (1/all threads)")
    return out


def peak_key_for_isa(isa: str | None) -> str | None:
    """membw's FMA kernel matching an nndex ISA name."""
    s = (isa or "").lower()
    if s.startswith("avx512"):
        return "avx512"
    if s.startswith("avx2") or s.startswith("avx"):
        return "avx2"
    if s.startswith("sse") or s == "scalar":
        return "sse2"
    return None
