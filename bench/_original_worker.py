"""Times the original nndex 0.2.1 (PyPI) for bench_exact.py.

It runs inside bench/.venv-original (the original has the same import name as
the new library, so the two cannot share an interpreter), started with
`python -I` so that PYTHONPATH and the current directory cannot smuggle the new
nndex in. Usage:

    python -I _original_worker.py SPEC.json

SPEC.json names the data and query .npy files written by bench_exact.py, the
workloads and the timing settings. The worker prints one JSON object on its
last stdout line and saves the results of the first search of each workload
to spec["check_out"] (.npz) so that the parent can cross-check them against
numpy.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _timing only

import numpy as np  # noqa: E402

from _timing import measure  # noqa: E402


def load_original():
    import importlib.metadata

    import nndex

    return nndex, importlib.metadata.version("nndex")


def build_index(NNdex, data):
    """CPU backend, pre-normalised data, and the query-result cache OFF:
    the benchmark repeats the same query, which the cache would answer
    without searching."""
    try:
        return NNdex(data, normalized=True, backend="cpu", enable_cache=False), True
    except TypeError:
        return NNdex(data, normalized=True), False


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    nndex, version = load_original()
    data = np.load(spec["data"])
    queries = np.load(spec["queries"])

    t0 = time.perf_counter()
    index, cache_off = build_index(nndex.NNdex, data)
    build_s = time.perf_counter() - t0

    k = int(spec["k"])
    results: dict[str, dict] = {}
    checks: dict[str, np.ndarray] = {}
    for wl in spec["workloads"]:
        name = wl["name"]
        q = queries[0] if wl["one_d"] else queries[: wl["nq"]]
        try:
            idx, sims = index.search(q, k=k)
            idx = np.asarray(idx).astype(np.int64).reshape(-1, k)
            sims = np.asarray(sims, dtype=np.float32).reshape(-1, k)
            rows = int(spec["check_rows"])
            checks[name + "__idx"] = idx[:rows]
            checks[name + "__sims"] = sims[:rows]
            results[name] = measure(
                lambda q=q: index.search(q, k=k),
                min_time_s=spec["min_time_s"],
                min_reps=spec["min_reps"],
                slow_call_s=spec["slow_call_s"],
            )
        except Exception as exc:  # reported per workload, the others go on
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}

    np.savez(spec["check_out"], **checks)
    print(
        json.dumps(
            {
                "version": version,
                "file": getattr(nndex, "__file__", None),
                "cache_disabled": cache_off,
                "build_s": build_s,
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -I _original_worker.py SPEC.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
