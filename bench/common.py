"""Shared pieces of the benchmark suite: process environment, machine description, data, timing,
result checks and JSON I/O.

Import order matters: `prepare_environment()` must run before numpy is first imported (run_all.py
and the worker entry points call it at the top), so this module imports numpy lazily.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _timing import measure  # noqa: E402  (standard library only)

REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BUILD_DIR = BENCH_DIR / ".build"

SEED = 20240607
K = 10
# Two results agree when, rank by rank, the returned ids have the reference's scores within this
# (so a different id is accepted only where scores tie) ...
TIE_TOL = 1e-6
# ... and the similarities a library reports match the true dot products this closely.
SIM_TOL = 1e-5

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_ENV_VAR = "NNDEX_BENCH_REMOVED_ENV"


# ---------------------------------------------------------------------------
# Process environment (before numpy is imported)
# ---------------------------------------------------------------------------

def prepare_environment(script: Path) -> None:
    """Re-executes this process without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which force an older
    OpenBLAS kernel or a wrong cache size and slow numpy and faiss down. Records what was removed
    in NNDEX_BENCH_REMOVED_ENV (inherited by worker processes) so the report can say so."""
    present = [v for v in OPENBLAS_OVERRIDES if v in os.environ]
    if not present:
        return
    if "numpy" in sys.modules:
        raise RuntimeError("prepare_environment() must run before numpy is imported")
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    removed = ";".join(f"{v}={os.environ[v]}" for v in present)
    prev = os.environ.get(REMOVED_ENV_VAR)
    env[REMOVED_ENV_VAR] = f"{prev};{removed}" if prev else removed
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, str(script), *sys.argv[1:]], env)


def removed_env() -> str | None:
    return os.environ.get(REMOVED_ENV_VAR)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------

def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_family_model() -> str | None:
    fam = model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key == "cpu family" and fam is None:
                fam = line.split(":", 1)[1].strip()
            elif key == "model" and model is None:
                model = line.split(":", 1)[1].strip()
    except OSError:
        return None
    return f"family {fam}, model {model}" if fam else None


def cache_sizes() -> dict[str, int]:
    """Data/unified cache sizes of cpu0 by level name (L1d, L2, L3), in bytes."""
    out: dict[str, int] = {}
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (d / "type").read_text().strip()
            if kind == "Instruction":
                continue
            level = (d / "level").read_text().strip()
            size = (d / "size").read_text().strip().upper()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        try:
            out[f"L{level}" + ("d" if level == "1" else "")] = int(size.rstrip("KMG")) * mult
        except ValueError:
            pass
    return out


def meminfo_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def os_description() -> str:
    pretty = None
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{pretty or platform.system()}, kernel {platform.release()}"


def compiler_description() -> str:
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else cxx
    except (OSError, subprocess.SubprocessError):
        return f"{cxx} (not found)"


def hypervisor() -> str | None:
    if "hypervisor" not in cpu_flags():
        return None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            if line.lower().startswith("hypervisor vendor"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown hypervisor"


def thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        return text[text.index("[") + 1:text.index("]")]
    except (OSError, ValueError):
        return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_version(dist: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def blas_libraries() -> list[dict]:
    """Every BLAS / OpenMP library loaded in this process, as threadpoolctl sees it (the kernel
    OpenBLAS chose at run time is `architecture`)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
    return [{k: d.get(k) for k in keys} for d in threadpool_info()]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def unit_rows(x):
    import numpy as np
    x /= np.linalg.norm(x, axis=1, keepdims=True).astype(x.dtype)
    return x


def gaussian(rows: int, dims: int, salt: int = 0):
    """Standard-normal rows, L2-normalised, float32; the same (rows, dims, salt) gives the same data."""
    import numpy as np
    rng = np.random.default_rng([SEED, rows, dims, salt])
    out = np.empty((rows, dims), dtype=np.float32)
    step = 1 << 18
    for i in range(0, rows, step):  # chunked: no float64 temporaries of the full size
        out[i:i + step] = rng.standard_normal((min(step, rows - i), dims), dtype=np.float32)
    return unit_rows(out)


def clustered(rows: int, dims: int, centres: int = 300, spread: float = 0.35, salt: int = 0,
              centre_seed: int = 0):
    """Gaussian mixture: `centres` unit centres, each row a centre plus isotropic noise of total norm
    about `spread` (per-coordinate sigma spread/sqrt(dims)), L2-normalised. Queries drawn with another
    salt but the same centre_seed come from the same mixture."""
    import numpy as np
    crng = np.random.default_rng([SEED, dims, centres, 7919, centre_seed])
    C = unit_rows(crng.standard_normal((centres, dims), dtype=np.float32))
    rng = np.random.default_rng([SEED, rows, dims, salt, 104729])
    out = np.empty((rows, dims), dtype=np.float32)
    sigma = np.float32(spread / np.sqrt(dims))
    step = 1 << 18
    for i in range(0, rows, step):
        m = min(step, rows - i)
        lab = rng.integers(0, centres, m)
        out[i:i + m] = C[lab] + sigma * rng.standard_normal((m, dims), dtype=np.float32)
    return unit_rows(out)


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def time_call(fn, min_time_s: float, min_reps: int, slow_call_s: float, first_call_ns: int | None = None) -> dict:
    """Median and spread of fn()'s wall time (see _timing.measure)."""
    return measure(fn, min_time_s=min_time_s, min_reps=min_reps, slow_call_s=slow_call_s,
                   first_call_ns=first_call_ns)


def settle(seconds: float = 0.15) -> None:
    """Lets BLAS/OpenMP worker threads of the previous library stop spinning (OpenBLAS keeps its
    threads busy-waiting for ~0.1 s after a call), so that they do not steal a core from the next."""
    time.sleep(seconds)


# ---------------------------------------------------------------------------
# Result checks
# ---------------------------------------------------------------------------

def reference_topk(M, Q, k: int):
    """True scores (float64) of queries Q against every row of M, and the k best per query.
    Returns (scores (nq, n) float64, topk_scores (nq, k) float64 descending)."""
    import numpy as np
    S = np.empty((Q.shape[0], M.shape[0]), dtype=np.float64)
    Qd = Q.astype(np.float64)
    step = 1 << 16  # rows converted to float64 at a time (no full float64 copy of M)
    for i in range(0, M.shape[0], step):
        S[:, i:i + step] = Qd @ M[i:i + step].astype(np.float64).T
    kk = min(k, S.shape[1])
    part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    top = -np.sort(-np.take_along_axis(S, part, axis=1), axis=1)
    return S, top


def check_topk(ids, sims, scores, topk_scores, tie_tol: float = TIE_TOL, sim_tol: float = SIM_TOL) -> list[str]:
    """Problems with a batch of results (empty: agrees with the reference).

    ids (and sims, or None when the library's scores are not comparable) are (nq, k) for the first
    nq <= len(scores) queries. At each rank the returned id must carry the reference's score for that
    rank within tie_tol (so a different id is fine only where scores tie); ids must be distinct and
    in range; reported similarities must match the true dot products within sim_tol."""
    import numpy as np
    ids = np.asarray(ids).reshape(-1, topk_scores.shape[1])
    rows = min(ids.shape[0], scores.shape[0])
    ids = ids[:rows].astype(np.int64)
    n = scores.shape[1]
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        return [f"id out of range [0, {n}): min {ids.min()}, max {ids.max()}"]
    problems: list[str] = []
    if sims is not None:
        sims = np.asarray(sims, dtype=np.float64).reshape(-1, topk_scores.shape[1])[:rows]
    for r in range(rows):
        if len(np.unique(ids[r])) != ids.shape[1]:
            problems.append(f"query {r}: duplicate ids {ids[r].tolist()}")
            continue
        got = scores[r, ids[r]]
        want = topk_scores[r]
        bad = np.abs(got - want) > tie_tol * np.maximum(1.0, np.abs(want))
        if bad.any():
            j = int(np.argmax(bad))
            problems.append(f"query {r}, rank {j}: id {ids[r, j]} scores {got[j]:.8f}, "
                            f"the true rank-{j} score is {want[j]:.8f}")
        if sims is not None:
            err = np.abs(sims[r] - got)
            if (err > sim_tol).any():
                j = int(np.argmax(err))
                problems.append(f"query {r}, rank {j}: reported similarity {sims[r, j]:.7f}, "
                                f"true {got[j]:.7f}")
        if len(problems) >= 3:
            break
    return problems


def recall_at_k(ids, gt) -> float:
    """Mean |ids[i] & gt[i]| / k over the queries (ids and gt are (nq, k); -1 ids never match)."""
    import numpy as np
    ids = np.asarray(ids)
    k = gt.shape[1]
    hits = 0
    for a, b in zip(ids[:, :k], gt):
        hits += len(np.intersect1d(a, b, assume_unique=False))
    return hits / (k * gt.shape[0])


# ---------------------------------------------------------------------------
# Memory of this process
# ---------------------------------------------------------------------------

def proc_status_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------

def write_json(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(Path(path).read_text())
