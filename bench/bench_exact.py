#!/usr/bin/env python3
"""Exact top-k search: nndex against numpy (and optionally the original nndex 0.2.1).

    python bench/bench_exact.py --quick          # about 1-2 minutes on 2 cores
    python bench/bench_exact.py                  # all shapes, original 0.2.1 included
    python bench/bench_exact.py --full           # also batch 2048 on 1,000,000 x 128

Prints a markdown report on stdout (progress goes to stderr); --json PATH also
writes every number. See bench/README.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import common  # noqa: E402  (standard library only until numpy is first imported)
from common import K, SEED, SIM_TOL, TIE_TOL  # noqa: E402
REPO_DIR = BENCH_DIR.parent
BUILD_DIR = BENCH_DIR / ".build"
MEMBW_SRC = BENCH_DIR / "native" / "membw.cpp"
ORIGINAL_VENV = BENCH_DIR / ".venv-original"
ORIGINAL_WORKER = BENCH_DIR / "_original_worker.py"
ORIGINAL_SPEC = "nndex==0.2.1"
WHEEL_DIRS = (BENCH_DIR / ".wheels", Path("/tmp/whl"))  # searched for a local 0.2.1 wheel

ALL_SHAPES = [(1000, 48), (1000, 768), (10000, 48), (10000, 768),
              (50000, 128), (100000, 2), (1000000, 128)]
QUICK_SHAPES = [s for s in ALL_SHAPES if s != (1000000, 128)]
DEFAULT_BATCHES = (4, 128, 2048)
FLOOR_SHAPE = (16, 2)

# A call costing more than this many flops (only batch 2048 on 1,000,000 x 128
# among the default shapes) runs only with --full.
HEAVY_FLOPS = 1e11
# numpy's batch path materialises Q @ M.T, its negation and an int64 argsort
# of the same size: 16 bytes per (query, row) pair.
NUMPY_BYTES_PER_PAIR = 16

THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------
# Command line and process environment (all before numpy is imported)
# ---------------------------------------------------------------------------

def parse_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for item in text.split(","):
        item = item.strip().lower().replace("_", "")
        try:
            rows, dims = (int(x) for x in item.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad shape {item!r}; expected ROWSxDIMS, e.g. 10000x768")
        if rows < 1 or dims < 1:
            raise argparse.ArgumentTypeError(f"bad shape {item!r}")
        shapes.append((rows, dims))
    return shapes


def parse_batches(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad batch list {text!r}; expected e.g. 4,128,2048")
    if any(b < 1 for b in out):
        raise argparse.ArgumentTypeError("batch sizes must be positive")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark nndex exact top-k search against numpy (and nndex 0.2.1).")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="shapes without 1,000,000x128, ~0.3 s per cell, original off")
    mode.add_argument("--full", action="store_true",
                      help="also the heavy cells (batch 2048 on 1,000,000x128)")
    p.add_argument("--shapes", type=parse_shapes, default=None,
                   help="comma-separated ROWSxDIMS list, e.g. 1000x48,10000x768")
    p.add_argument("--batches", type=parse_batches, default=list(DEFAULT_BATCHES),
                   help="batch sizes to time besides the single query (default 4,128,2048)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for nndex; numpy's BLAS is limited to the same number "
                        "(default: both use all cores)")
    p.add_argument("--original", action=argparse.BooleanOptionalAction, default=None,
                   help="also time nndex 0.2.1 from PyPI in bench/.venv-original "
                        "(default: on, off with --quick)")
    p.add_argument("--original-python", type=Path, default=None,
                   help="python that has nndex 0.2.1 installed (skips creating the venv)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds of repeats per cell (default 0.3 quick, 1.0 otherwise)")
    p.add_argument("--min-reps", type=int, default=5, help="minimum timed repeats per cell")
    p.add_argument("--membw-mib", type=int, default=1024,
                   help="working set of the bandwidth probe in MiB (default 1024)")
    p.add_argument("--no-membw", action="store_true", help="skip the bandwidth/FMA probe")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write all results as JSON to PATH")
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.min_reps < 1:
        p.error("--min-reps must be >= 1")
    if args.shapes is None:
        args.shapes = QUICK_SHAPES if args.quick else ALL_SHAPES
    if args.original is None:
        args.original = not args.quick
    if args.min_time is None:
        args.min_time = 0.3 if args.quick else 1.0
    # A single call slower than this gets only 3 timed repeats.
    args.slow_call_s = 1.0 if args.quick else 4.0
    return args


def prepare_environment(args: argparse.Namespace) -> None:
    """Drop the OpenBLAS tuning overrides (common.prepare_environment re-execs without them) and pin
    BLAS threads if --threads is given. Must run before numpy is imported."""
    common.prepare_environment(Path(__file__).resolve())
    if args.threads is not None:
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(args.threads)


if __name__ == "__main__":
    prepare_environment(parse_args())

import numpy as np  # noqa: E402  (deliberately after prepare_environment)

from _timing import measure  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def last_level_cache_bytes() -> int | None:
    best = None
    for d in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (d / "type").read_text().strip() == "Instruction":
                continue
            size = (d / "size").read_text().strip().upper()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        try:
            value = int(size.rstrip("KMG")) * mult
        except ValueError:
            continue
        best = value if best is None else max(best, value)
    return best


def mem_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def blas_info() -> dict:
    """Which BLAS numpy runs, via threadpoolctl (what OpenBLAS actually picked
    at run time), falling back to numpy's build configuration."""
    info: dict = {"numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpoolctl"] = None
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            info["build"] = {"name": blas.get("name"), "version": blas.get("version")}
        except Exception:
            pass
        return info
    libs = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    info["threadpoolctl"] = [
        {key: d.get(key) for key in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for d in libs
    ]
    return info


def describe_blas(info: dict) -> str:
    libs = info.get("threadpoolctl")
    if libs is None:
        build = info.get("build") or {}
        extra = f"; numpy was built against {build.get('name')} {build.get('version')}" if build else ""
        return ("threadpoolctl is not installed (`pip install threadpoolctl`), so the BLAS kernel "
                f"and thread count numpy uses are unknown{extra}")
    if not libs:
        return "threadpoolctl found no BLAS library loaded by numpy"
    return "; ".join(
        f"{d['internal_api']} {d['version']}, kernel {d['architecture']}, threads {d['num_threads']}"
        for d in libs)


# ---------------------------------------------------------------------------
# Memory bandwidth / peak FMA probe (bench/native/membw.cpp)
# ---------------------------------------------------------------------------

def build_membw() -> Path:
    exe = BUILD_DIR / "membw"
    if exe.exists() and exe.stat().st_mtime >= MEMBW_SRC.stat().st_mtime:
        return exe
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = BUILD_DIR / f"membw.tmp{os.getpid()}"
    cxx = os.environ.get("CXX", "c++")
    cmd = [cxx, "-O2", "-std=c++17", "-pthread", str(MEMBW_SRC), "-o", str(tmp)]
    log("building " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling membw failed:\n{proc.stderr.strip()}")
    os.replace(tmp, exe)
    return exe


def run_membw(threads: int, mib: int) -> dict:
    avail = mem_available_bytes()
    if avail is not None:
        mib = max(64, min(mib, avail // (4 << 20)))  # keep it under a quarter of free memory
    exe = build_membw()
    log(f"measuring memory bandwidth ({mib} MiB, 1 and {threads} threads) and FMA peak ...")
    proc = subprocess.run([str(exe), "--mib", str(mib), "--threads", str(threads), "--fma"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"membw exited with {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_key_for_isa(isa: str | None) -> str | None:
    s = (isa or "").lower()
    if s.startswith("avx512"):
        return "avx512"
    if s.startswith("avx2") or s.startswith("avx") or "fma" in s:
        return "avx2"
    if s.startswith("sse"):
        return "sse2"
    return None


# ---------------------------------------------------------------------------
# nndex
# ---------------------------------------------------------------------------

def import_nndex():
    """Import the nndex under test, or exit with an explanation."""
    try:
        import nndex
        return nndex
    except ImportError as exc:
        first = exc
    in_tree = REPO_DIR / "python"
    if (in_tree / "nndex").is_dir():
        sys.path.insert(0, str(in_tree))
        try:
            import nndex
            return nndex
        except ImportError as exc:
            sys.path.remove(str(in_tree))
            second = exc
    else:
        second = None
    msg = [f"error: cannot import nndex ({type(first).__name__}: {first})."]
    if second is not None:
        msg.append(f"Also tried the in-tree package {in_tree / 'nndex'}: "
                   f"{type(second).__name__}: {second}")
    msg.append("Build and install the library first (e.g. `pip install .` in the repository "
               "root), or put the built package on PYTHONPATH, then rerun.")
    sys.exit("\n".join(msg))


def make_index(nndex_mod, data: np.ndarray, threads: int | None, enable_cache: bool = False):
    # enable_cache=False for the main column; the defaults column (enable_cache=True) is timed with
    # distinct queries, so every call is a cache miss.
    index = nndex_mod.NNdex(data, normalized=True, threads=threads, enable_cache=enable_cache)
    if not hasattr(index, "isa") and hasattr(index, "backend"):
        sys.exit(f"error: the imported nndex ({getattr(nndex_mod, '__file__', '?')}) looks like the "
                 "original Rust nndex 0.2.1, not this repository's library.")
    return index


# ---------------------------------------------------------------------------
# Data and the numpy baseline
# ---------------------------------------------------------------------------

def unit_rows(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_data(rows: int, dims: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, rows, dims])
    return unit_rows(rng.standard_normal((rows, dims), dtype=np.float32))


def make_queries(n: int, dims: int, salt: int = 1) -> np.ndarray:
    rng = np.random.default_rng([SEED, dims, salt])
    return unit_rows(rng.standard_normal((n, dims), dtype=np.float32))


# Workloads of up to this many queries are timed with a different query (or batch) on every call,
# more distinct ones than the query cache holds, so the defaults column measures cache misses.
DISTINCT_MAX_NQ = 64
DISTINCT_POOL = 4096


def rotating(pool: np.ndarray, wl: "Workload"):
    """A zero-argument function returning the next distinct query (1-D) or batch of the pool.

    Batches are overlapping windows pool[i:i + nq]: DISTINCT_POOL - nq + 1 distinct batches, more
    than the cache's 1024 entries for every cached batch size."""
    state = {"i": 0}
    count = pool.shape[0] - wl.nq + 1

    def next_query():
        i = state["i"] = (state["i"] + 1) % count
        return pool[i] if wl.one_d else pool[i:i + wl.nq]
    return next_query


def numpy_single(M: np.ndarray, q: np.ndarray, k: int):
    s = M @ q
    part = np.argpartition(-s, k - 1)[:k]
    order = part[np.argsort(-s[part], kind="stable")]
    return order, s[order]


def numpy_batch(M: np.ndarray, Q: np.ndarray, k: int):
    S = Q @ M.T
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


@dataclass
class Reference:
    """numpy's scores and top-k for the first `rows` queries of a shape."""
    scores: np.ndarray      # (rows, n) float32: Q @ M.T
    topk_scores: np.ndarray  # (rows, k) float32, descending

    @classmethod
    def compute(cls, M: np.ndarray, Q: np.ndarray, k: int) -> "Reference":
        S = Q @ M.T
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        vals = -np.sort(-np.take_along_axis(S, part, axis=1), axis=1)
        return cls(scores=S, topk_scores=vals)


def check_rows_for(rows: int) -> int:
    """How many leading queries of each workload are cross-checked (bounded so
    that the reference for 1,000,000 rows stays around 256 MB)."""
    return max(16, min(256, (1 << 26) // rows))


def check_topk(idx, sims, ref: Reference, k: int, expect_shape: tuple) -> list[str]:
    """Problems with one search result (empty list = agrees with numpy).

    The returned indices must score, position by position, what numpy's top-k
    scores are (within TIE_TOL): equal indices, or a different item only where
    numpy's scores tie. Returned similarities must match numpy's dot products."""
    idx = np.asarray(idx)
    sims = np.asarray(sims)
    if idx.shape != expect_shape or sims.shape != expect_shape:
        return [f"shapes idx {idx.shape}, sims {sims.shape}; expected {expect_shape}"]
    if idx.dtype.kind not in "iu":
        return [f"indices have dtype {idx.dtype}, expected an integer type"]
    rows = min(idx.reshape(-1, k).shape[0], ref.scores.shape[0])
    idx = idx.reshape(-1, k)[:rows].astype(np.int64)
    sims = sims.reshape(-1, k)[:rows].astype(np.float32)
    n = ref.scores.shape[1]
    problems: list[str] = []
    if idx.min() < 0 or idx.max() >= n:
        return [f"index out of range [0, {n}): min {idx.min()}, max {idx.max()}"]
    for r in range(rows):
        if len(np.unique(idx[r])) != k:
            problems.append(f"query {r}: duplicate indices {idx[r].tolist()}")
            continue
        got_scores = ref.scores[r, idx[r]]
        want = ref.topk_scores[r]
        bad = np.abs(got_scores - want) > TIE_TOL * np.maximum(1.0, np.abs(want))
        if bad.any():
            j = int(np.argmax(bad))
            problems.append(f"query {r}, rank {j}: index {idx[r, j]} scores {got_scores[j]:.7f} "
                            f"but numpy's rank-{j} score is {want[j]:.7f}")
        sim_err = np.abs(sims[r] - got_scores)
        if (sim_err > SIM_TOL).any():
            j = int(np.argmax(sim_err))
            problems.append(f"query {r}, rank {j}: returned similarity {sims[r, j]:.7f} "
                            f"but numpy's dot product is {got_scores[j]:.7f}")
        if len(problems) >= 5:
            break
    return problems


# ---------------------------------------------------------------------------
# Workloads and results
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    key: str     # identifier, also used in the worker's result file
    label: str   # shown in the table
    nq: int
    one_d: bool

    def queries(self, Q: np.ndarray) -> np.ndarray:
        return Q[0] if self.one_d else Q[: self.nq]

    def expect_shape(self, k: int) -> tuple:
        return (k,) if self.one_d else (self.nq, k)


def workloads_for(batches: list[int]) -> list[Workload]:
    out = [Workload("single", "single", 1, True)]
    out += [Workload(f"b{b}", f"batch {b}", b, False) for b in batches]
    return out


@dataclass
class Cell:
    """One method's timing for one (shape, workload)."""
    stats: dict | None = None
    note: str | None = None  # why there is no timing (skipped, error, check failed)


@dataclass
class Row:
    rows: int
    dims: int
    workload: Workload
    nndex: Cell = field(default_factory=Cell)
    defaults: Cell = field(default_factory=Cell)  # NNdex defaults (cache on), distinct queries
    numpy: Cell = field(default_factory=Cell)
    original: Cell | None = None
    check_failed: bool = False

    @property
    def shape(self) -> str:
        return f"{self.rows}x{self.dims}"


@dataclass
class Context:
    args: argparse.Namespace
    nndex_mod: object
    threads: int | None  # passed to NNdex (None = library default)
    original_python: Path | None
    mem_available: int | None


def timing(args: argparse.Namespace, fn) -> dict:
    return measure(fn, min_time_s=args.min_time, min_reps=args.min_reps, slow_call_s=args.slow_call_s)


def is_heavy(rows: int, dims: int, wl: Workload) -> bool:
    return 2.0 * wl.nq * rows * dims > HEAVY_FLOPS


def skip_reason(rows: int, dims: int, wl: Workload, args: argparse.Namespace) -> str | None:
    if is_heavy(rows, dims, wl) and not args.full:
        return f"skipped: {2.0 * wl.nq * rows * dims / 1e9:.0f} GFLOP per call, run with --full"
    return None


def numpy_skip_reason(rows: int, wl: Workload, mem_available: int | None) -> str | None:
    need = wl.nq * rows * NUMPY_BYTES_PER_PAIR
    if mem_available is not None and need > 0.5 * mem_available:
        return f"skipped: needs ~{need / 2**30:.0f} GiB"
    return None


# ---------------------------------------------------------------------------
# The original nndex 0.2.1, in its own venv
# ---------------------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed_original_version(python: Path) -> str | None:
    proc = subprocess.run(
        [str(python), "-I", "-c", "import importlib.metadata as m; print(m.version('nndex'))"],
        capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_original_python(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    """Python with nndex 0.2.1 installed, creating bench/.venv-original on demand.
    Returns (python, None) or (None, reason)."""
    if args.original_python is not None:
        py = args.original_python
        ver = installed_original_version(py)
        return (py, None) if ver else (None, f"{py} cannot import nndex")
    py = venv_python(ORIGINAL_VENV)
    if py.exists() and installed_original_version(py) == "0.2.1":
        return py, None
    log(f"creating {ORIGINAL_VENV} with {ORIGINAL_SPEC} ...")
    steps = []
    if not py.exists():
        steps.append([sys.executable, "-m", "venv", str(ORIGINAL_VENV)])
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for d in WHEEL_DIRS:
        if any(d.glob("nndex-0.2.1-*.whl")):
            pip += ["--find-links", str(d)]
    steps.append(pip + [ORIGINAL_SPEC, "numpy"])
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(cmd[:4])} ...` failed: {' | '.join(tail)}"
    if installed_original_version(py) != "0.2.1":
        return None, f"{ORIGINAL_SPEC} is not importable in {ORIGINAL_VENV}"
    return py, None


def run_original_worker(ctx: Context, tmp: Path, spec: dict, wls: list[Workload]
                        ) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """One worker process for `wls`. Returns (per-workload stats or
    {"error": ...}, per-workload first results)."""
    spec = {**spec, "workloads": [{"name": w.key, "nq": w.nq, "one_d": w.one_d} for w in wls]}
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    check_path = Path(spec["check_out"])
    check_path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    if ctx.threads is not None:
        env["RAYON_NUM_THREADS"] = str(ctx.threads)
    proc = subprocess.run([str(ctx.original_python), "-I", str(ORIGINAL_WORKER), str(spec_path)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        why = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        log(f"  nndex 0.2.1 worker failed ({why}){': ' + tail if tail else ''}")
        return {w.key: {"error": f"worker {why}"} for w in wls}, {}
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if not report.get("cache_disabled", False):
        log("warning: could not disable nndex 0.2.1's query cache; its timings may be cache hits")
    firsts: dict[str, dict[str, np.ndarray]] = {}
    with np.load(check_path) as z:
        for w in wls:
            if f"{w.key}__idx" in z.files:
                firsts[w.key] = {"idx": z[f"{w.key}__idx"], "sims": z[f"{w.key}__sims"]}
    return report["results"], firsts


def run_original(ctx: Context, M: np.ndarray, Q: np.ndarray, wls: list[Workload],
                 check_rows: int) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """Times nndex 0.2.1 in subprocesses on the same data (saved as .npy).
    Heavy workloads get a worker of their own, so that one running out of
    memory does not lose the others. Returns (per-workload stats or
    {"error": ...}, per-workload first results for the cross-check)."""
    rows, dims = M.shape
    groups = [[w for w in wls if not is_heavy(rows, dims, w)]]
    groups += [[w] for w in wls if is_heavy(rows, dims, w)]
    results: dict = {}
    firsts: dict = {}
    with tempfile.TemporaryDirectory(prefix="nndex-bench-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "data.npy", M)
        np.save(tmp / "queries.npy", Q)
        spec = {
            "data": str(tmp / "data.npy"),
            "queries": str(tmp / "queries.npy"),
            "check_out": str(tmp / "check.npz"),
            "k": K,
            "check_rows": check_rows,
            "min_time_s": ctx.args.min_time,
            "min_reps": ctx.args.min_reps,
            "slow_call_s": ctx.args.slow_call_s,
        }
        for group in groups:
            if group:
                res, first = run_original_worker(ctx, tmp, spec, group)
                results.update(res)
                firsts.update(first)
    return results, firsts


# ---------------------------------------------------------------------------
# One shape
# ---------------------------------------------------------------------------

def fmt_time(ns: float | None) -> str:
    if ns is None:
        return ""
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def short(cell: Cell) -> str:
    return fmt_time(cell.stats["median_ns"]) if cell.stats else (cell.note or "-")


def bench_numpy_and_nndex(row: Row, index, default_index, pool: np.ndarray, M: np.ndarray, q: np.ndarray,
                          ref: Reference, ctx: Context) -> None:
    wl = row.workload
    idx, sims = index.search(q, k=K)
    problems = check_topk(idx, sims, ref, K, wl.expect_shape(K))
    if problems:
        row.check_failed = True
        row.nndex.note = row.numpy.note = "CHECK FAILED"
        log(f"  CHECK FAILED {row.shape} {wl.label}:\n    " + "\n    ".join(problems))
        return
    if wl.nq <= DISTINCT_MAX_NQ:
        # Distinct queries for both nndex columns: cache off, and the defaults (every call a miss).
        nxt = rotating(pool, wl)
        row.nndex.stats = timing(ctx.args, lambda: index.search(nxt(), k=K))
        nxt = rotating(pool, wl)
        row.defaults.stats = timing(ctx.args, lambda: default_index.search(nxt(), k=K))
        info = default_index.cache_info()
        if info.hits:
            log(f"  warning: {info.hits} cache hits in the defaults column ({info.misses} misses)")
    else:
        row.nndex.stats = timing(ctx.args, lambda: index.search(q, k=K))
        row.defaults.note = "not cached (> 64 queries)"
    np_skip = numpy_skip_reason(row.rows, wl, ctx.mem_available)
    if np_skip:
        row.numpy.note = np_skip
    elif wl.one_d:
        row.numpy.stats = timing(ctx.args, lambda: numpy_single(M, q, K))
    else:
        row.numpy.stats = timing(ctx.args, lambda: numpy_batch(M, q, K))


def attach_original(rows: list[Row], results: dict, firsts: dict, ref: Reference) -> None:
    for row in rows:
        if row.original is None or row.original.note:
            continue
        wl = row.workload
        res = results.get(wl.key)
        if res is None or "error" in res or wl.key not in firsts:
            row.original.note = "error"
            if res and "error" in res:
                log(f"  nndex 0.2.1 {row.shape} {wl.label}: {res['error']}")
            continue
        first = firsts[wl.key]
        problems = check_topk(first["idx"], first["sims"], ref, K, (first["idx"].shape[0], K))
        if problems:
            row.original.note = "CHECK FAILED"
            log(f"  nndex 0.2.1 CHECK FAILED {row.shape} {wl.label}:\n    " + "\n    ".join(problems))
            continue
        row.original.stats = res


def bench_shape(rows: int, dims: int, ctx: Context) -> list[Row]:
    args = ctx.args
    wls = workloads_for(args.batches)
    max_nq = max(w.nq for w in wls)
    log(f"[{rows}x{dims}] generating data ...")
    M = make_data(rows, dims)
    Q = make_queries(max_nq, dims)
    check_rows = min(max_nq, check_rows_for(rows))
    ref = Reference.compute(M, Q[:check_rows], K)

    t0 = time.perf_counter()
    index = make_index(ctx.nndex_mod, M, ctx.threads)
    log(f"[{rows}x{dims}] nndex index built in {time.perf_counter() - t0:.3f} s")
    default_index = make_index(ctx.nndex_mod, M, ctx.threads, enable_cache=True)
    pool = make_queries(DISTINCT_POOL, dims, salt=2)

    out: list[Row] = []
    for wl in wls:
        row = Row(rows, dims, wl, original=Cell() if ctx.original_python else None)
        out.append(row)
        reason = skip_reason(rows, dims, wl, args)
        if reason:
            row.nndex.note = row.numpy.note = reason
            if row.original:
                row.original.note = reason
            continue
        bench_numpy_and_nndex(row, index, default_index, pool, M, wl.queries(Q), ref, ctx)
        if row.check_failed and row.original:
            row.original.note = "not run"
        log(f"[{rows}x{dims}] {wl.label:>10}: nndex {short(row.nndex)}, defaults {short(row.defaults)}, "
            f"numpy {short(row.numpy)}")

    del index, default_index
    if ctx.original_python:
        todo = [r.workload for r in out if r.original is not None and not r.original.note]
        if todo:
            log(f"[{rows}x{dims}] timing nndex 0.2.1 ...")
            results, firsts = run_original(ctx, M, Q, todo, check_rows)
            attach_original(out, results, firsts, ref)
            for r in out:
                if r.original and r.original.stats:
                    log(f"[{rows}x{dims}] {r.workload.label:>10}: nndex 0.2.1 {short(r.original)}")
    return out


def measure_floor(ctx: Context) -> tuple[dict, object]:
    """Per-call overhead: single query on a trivial 16 x 2 index.
    Returns the timings and the index (whose isa/threads the report shows)."""
    M = make_data(*FLOOR_SHAPE)
    q = make_queries(1, FLOOR_SHAPE[1])[0]
    index = make_index(ctx.nndex_mod, M, ctx.threads)
    nn = timing(ctx.args, lambda: index.search(q, k=K))
    npy = timing(ctx.args, lambda: numpy_single(M, q, K))
    return {"nndex": nn, "numpy": npy}, index


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt_spread(stats: dict | None) -> str:
    if not stats:
        return ""
    lo, hi = stats["p10_ns"], stats["p90_ns"]
    med = fmt_time(stats["median_ns"])
    unit = med.split()[-1]
    scale = {"µs": 1e3, "ms": 1e6, "s": 1e9}[unit]
    digits = 1 if unit == "µs" else 2
    text = f"{lo / scale:.{digits}f}–{hi / scale:.{digits}f} {unit}"
    if stats.get("slow"):
        text += f" ({stats['reps']} runs)"
    return text


def ratio(a: Cell | None, b: Cell) -> float | None:
    if a is None or not a.stats or not b.stats:
        return None
    return a.stats["median_ns"] / b.stats["median_ns"]


@dataclass
class Limits:
    read_gbps: float | None      # all-thread read bandwidth
    peak_gflops: float | None    # all-thread FMA peak for nndex's ISA
    peak_key: str | None
    llc_bytes: int | None


def throughput(row: Row, limits: Limits) -> tuple[float | None, str, str]:
    """(value, formatted value, formatted % of limit) for nndex's median."""
    if not row.nndex.stats:
        return None, "", ""
    sec = row.nndex.stats["median_ns"] / 1e9
    if row.workload.one_d:
        gbps = row.rows * row.dims * 4 / sec / 1e9
        pct = ""
        if limits.read_gbps:
            pct = f"{100 * gbps / limits.read_gbps:.0f}%"
            if limits.llc_bytes and row.rows * row.dims * 4 <= limits.llc_bytes:
                pct += " †"
        return gbps, f"{gbps:.1f} GB/s", pct
    gflops = 2.0 * row.workload.nq * row.rows * row.dims / sec / 1e9
    pct = f"{100 * gflops / limits.peak_gflops:.0f}%" if limits.peak_gflops else ""
    return gflops, f"{gflops:.1f} GFLOP/s", pct


def markdown_table(rows: list[Row], limits: Limits, with_original: bool) -> str:
    head = ["shape", "workload", "nndex median", "nndex p10–p90", "defaults median", "defaults / nndex",
            "numpy median", "numpy p10–p90", "numpy / nndex", "nndex throughput", "% of limit"]
    if with_original:
        head += ["0.2.1 median", "0.2.1 / nndex"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    for row in rows:
        r = ratio(row.numpy, row.nndex)
        _, tp, pct = throughput(row, limits)
        rd = ratio(row.defaults, row.nndex)
        cells = [row.shape, row.workload.label, short(row.nndex), fmt_spread(row.nndex.stats),
                 short(row.defaults), f"{rd:.2f}×" if rd else "", short(row.numpy), fmt_spread(row.numpy.stats),
                 f"{r:.2f}×" if r else "", tp, pct]
        if with_original:
            ro = ratio(row.original, row.nndex)
            cells += [short(row.original) if row.original else "", f"{ro:.2f}×" if ro else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header_lines(meta: dict) -> list[str]:
    m = meta
    lines = ["# nndex exact top-k benchmark", ""]
    lines.append(f"- CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['usable_cpus']} usable)")
    lines.append(f"- nndex: ISA {m['nndex']['isa']}, threads {m['nndex']['threads']} "
                 f"({m['nndex']['file']})")
    lines.append(f"- numpy {m['blas']['numpy']}: {describe_blas(m['blas'])}")
    if m.get("removed_env"):
        lines.append(f"- removed from this benchmark's environment (they slow OpenBLAS down): "
                     f"{m['removed_env']}")
    bw = m.get("membw")
    if bw and "error" not in bw:
        line = (f"- memory read bandwidth (membw, {bw['bytes'] / 2**30:.2f} GiB, best of {bw['reps']}): "
                f"{bw['read_gbps_1t']:.1f} GB/s on 1 thread, {bw['read_gbps_all']:.1f} GB/s "
                f"on {bw['threads']} threads")
        lines.append(line)
        peaks = bw.get("peak_gflops") or {}
        if peaks:
            lines.append("- FMA peak: " + ", ".join(
                f"{key} {v['1t']:.0f} GFLOP/s (1 thread) / {v['all']:.0f} ({bw['threads']} threads)"
                for key, v in peaks.items()))
        shares = [v.get("cpu_share_all") for v in peaks.values() if v.get("cpu_share_all") is not None]
        if bw.get("read_cpu_share_all") is not None:
            shares.append(bw["read_cpu_share_all"])
        if shares and min(shares) < 0.9:
            lines.append(f"- warning: during the probe's best all-thread pass the threads held a CPU only "
                         f"{100 * min(shares):.0f}% of the time (other processes were running), so the "
                         "all-thread limits are lower bounds")
    elif bw:
        lines.append(f"- memory bandwidth probe unavailable: {bw['error']}")
    s = m["settings"]
    lines.append(f"- k = {K}; each cell: warm-up, then repeats until {s['min_time_s']} s and at least "
                 f"{s['min_reps']} calls (3 for calls over {s['slow_call_s']} s); median and p10–p90 "
                 "of per-call wall time")
    who = "nndex, numpy's BLAS" + (" and nndex 0.2.1" if m.get("original_python") else "")
    if s["threads"] is not None:
        lines.append(f"- threads pinned to {s['threads']} for {who}")
    else:
        lines.append(f"- threads: library defaults (all cores) for {who}")
    if m.get("original"):
        lines.append(f"- nndex 0.2.1: {m['original']}")
    return lines


def footer_lines(rows: list[Row], floor: dict | None, limits: Limits) -> list[str]:
    has_original = any(r.original is not None for r in rows)
    ratios = "numpy / nndex and 0.2.1 / nndex" if has_original else "numpy / nndex"
    lines = ["", f"{ratios} above 1 mean the new nndex is faster."]
    single = ("against the all-thread read bandwidth" if limits.read_gbps
              else "blank (no bandwidth figure)")
    if limits.peak_gflops:
        batch = f"against the {limits.peak_key} FMA peak on the same thread count"
    elif limits.read_gbps:
        batch = "blank (no FMA peak known for nndex's ISA)"
    else:
        batch = "blank"
    lines.append(f"% of limit: single queries {single}; batches {batch}.")
    if any(r.workload.one_d and "†" in throughput(r, limits)[2] for r in rows):
        lines.append(f"† the matrix fits in the last-level cache ({limits.llc_bytes / 2**20:.0f} MiB), "
                     "so DRAM bandwidth is not its limit.")
    if floor:
        nn = floor["nndex"]["median_ns"]
        lines.append(f"Per-call floor (16x2 index, single query): nndex {fmt_time(nn)}, "
                     f"numpy {fmt_time(floor['numpy']['median_ns'])}.")
        base = next((r for r in rows if (r.rows, r.dims) == (1000, 48) and r.workload.one_d
                     and r.nndex.stats), None)
        if base:
            lines.append(f"1000x48 single / floor = {base.nndex.stats['median_ns'] / nn:.2f}")
    failed = [f"{r.shape} {r.workload.label}" for r in rows if r.check_failed]
    if failed:
        lines.append("CROSS-CHECK FAILED (not timed): " + ", ".join(failed))
    return lines


def rows_to_json(rows: list[Row], limits: Limits) -> list[dict]:
    out = []
    for r in rows:
        value, _, _ = throughput(r, limits)
        d = {"rows": r.rows, "dims": r.dims, "workload": r.workload.key, "queries": r.workload.nq,
             "check_failed": r.check_failed}
        for name in ("nndex", "defaults", "numpy", "original"):
            cell = getattr(r, name)
            if cell is not None:
                d[name] = cell.stats if cell.stats else {"note": cell.note}
        d["numpy_over_nndex"] = ratio(r.numpy, r.nndex)
        d["original_over_nndex"] = ratio(r.original, r.nndex)
        if r.workload.one_d:
            d["nndex_gbps"] = value
        else:
            d["nndex_gflops"] = value
        out.append(d)
    return out


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def limit_blas_threads(threads: int | None):
    """Context limiting numpy's BLAS to `threads` (no-op for None)."""
    import contextlib
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log(f"threadpoolctl missing: relying on {THREAD_ENV_VARS[0]}={threads} set before numpy loaded")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def probe_machine(args: argparse.Namespace, threads: int) -> dict:
    if args.no_membw:
        return {"error": "skipped (--no-membw)"}
    try:
        return run_membw(threads, args.membw_mib)
    except Exception as exc:  # report, but keep benchmarking
        return {"error": str(exc)}


def setup_original(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    if not args.original:
        return None, None
    py, err = ensure_original_python(args)
    if err:
        log(f"nndex 0.2.1 unavailable: {err}")
        return None, f"unavailable ({err})"
    return py, f"{py} (query cache disabled, backend cpu)"


def main() -> int:
    args = parse_args()
    removed_env = os.environ.pop(common.REMOVED_ENV_VAR, None)
    nndex_mod = import_nndex()

    with limit_blas_threads(args.threads):
        original_python, original_desc = setup_original(args)
        ctx = Context(args=args, nndex_mod=nndex_mod, threads=args.threads,
                      original_python=original_python, mem_available=mem_available_bytes())

        log("measuring the per-call floor ...")
        floor, probe = measure_floor(ctx)
        isa = getattr(probe, "isa", None)
        nn_threads = int(getattr(probe, "threads", None) or args.threads or usable_cpus())

        membw = probe_machine(args, nn_threads)
        peak_key = peak_key_for_isa(isa)
        limits = Limits(
            read_gbps=membw.get("read_gbps_all"),
            peak_gflops=((membw.get("peak_gflops") or {}).get(peak_key) or {}).get("all"),
            peak_key=peak_key,
            llc_bytes=last_level_cache_bytes(),
        )
        meta = {
            "cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(),
            "nndex": {"isa": isa, "threads": nn_threads, "file": getattr(nndex_mod, "__file__", None)},
            "blas": blas_info(), "removed_env": removed_env, "membw": membw,
            "original": original_desc,
            "original_python": str(original_python) if original_python else None,
            "settings": {"mode": "quick" if args.quick else ("full" if args.full else "default"),
                         "min_time_s": args.min_time, "min_reps": args.min_reps,
                         "slow_call_s": args.slow_call_s, "threads": args.threads, "k": K,
                         "shapes": [f"{r}x{d}" for r, d in args.shapes], "batches": args.batches},
        }

        rows: list[Row] = []
        t_start = time.perf_counter()
        for r, d in args.shapes:
            rows += bench_shape(r, d, ctx)
        log(f"benchmark took {time.perf_counter() - t_start:.0f} s")

    report = header_lines(meta) + ["", markdown_table(rows, limits, original_python is not None)]
    report += footer_lines(rows, floor, limits)
    print("\n".join(report))

    if args.json:
        payload = {**meta, "floor": floor, "limits": limits.__dict__, "results": rows_to_json(rows, limits)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 1 if any(r.check_failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
