"""Approximate search: recall@10 against queries per second, and build time, for nndex's IVF mode,
faiss IndexIVFFlat, usearch HNSW and hnswlib.

Datasets: a clustered synthetic set (Gaussian mixture of 300 centres), plain Gaussian data (the
hardest case for every method: no structure to exploit) and real sentence embeddings
(tests/fixtures/minilm_embeddings.npy, all-MiniLM-L6-v2, 384 dims; its first 300 rows are the
queries). All rows and queries are L2-normalised float32; similarity is the inner product. The
ground truth is numpy's exact top-10 (float32 matmul + argpartition).

Each (dataset, library) runs in a fresh worker process: it loads the data, builds the index (timed,
with its resident-memory growth measured), then sweeps the search parameter (nprobe for IVF, ef for
HNSW) from cheap to expensive. At every point it measures recall@10 over all queries, the batch
throughput (all queries in one call, all threads; median of repeated calls) and the single-query
throughput (1-D queries one at a time, in order). The sweep stops once recall reaches 0.995. For
each target recall (0.90 / 0.95 / 0.99) the report takes the cheapest point that reaches it.

Run through run_all.py; `python bench/ann_suite.py [--quick]` runs this part alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import (K, REPO_DIR, RESULTS_DIR, clustered, gaussian, log, prepare_environment,
                    proc_status_bytes, recall_at_k, reset_peak_rss, settle, time_call, usable_cpus,
                    write_json)

MINILM = REPO_DIR / "tests" / "fixtures" / "minilm_embeddings.npy"
MINILM_QUERIES = 300
TARGETS = (0.90, 0.95, 0.99)
STOP_RECALL = 0.995


@dataclass
class Dataset:
    name: str      # e.g. "clustered-100k"
    kind: str      # clustered | gaussian | minilm
    n: int         # rows in the index (minilm: set from the file)
    d: int
    nq: int


@dataclass
class AnnConfig:
    datasets: list[Dataset]
    peers: list[str]
    threads: int
    batch_min_time_s: float
    batch_min_reps: int
    single_queries: int        # at most this many 1-D queries per point ...
    single_budget_s: float     # ... or this much time
    max_batch_s: float         # stop a sweep after a point whose batch call took longer
    max_build_s: float         # skip a build projected to take longer than this
    worker_timeout_s: float


def config(quick: bool, peers: list[str] | None = None, datasets: list[str] | None = None) -> AnnConfig:
    from peers import ANN_PEERS
    keys = peers or [c.key for c in ANN_PEERS]
    if quick:
        sets = [Dataset("clustered-100k", "clustered", 100_000, 128, 300),
                Dataset("minilm", "minilm", 0, 384, MINILM_QUERIES)]
        cfg = AnnConfig(sets, keys, usable_cpus(), batch_min_time_s=0.1, batch_min_reps=2, single_queries=100,
                        single_budget_s=0.25, max_batch_s=2.0, max_build_s=120, worker_timeout_s=300)
    else:
        sets = [Dataset("clustered-100k", "clustered", 100_000, 128, 1000),
                Dataset("gaussian-100k", "gaussian", 100_000, 128, 1000),
                Dataset("minilm", "minilm", 0, 384, MINILM_QUERIES),
                Dataset("clustered-1M", "clustered", 1_000_000, 128, 1000),
                Dataset("gaussian-1M", "gaussian", 1_000_000, 128, 1000)]
        cfg = AnnConfig(sets, keys, usable_cpus(), batch_min_time_s=0.3, batch_min_reps=3, single_queries=500,
                        single_budget_s=0.6, max_batch_s=15.0, max_build_s=600, worker_timeout_s=1500)
    if datasets:
        cfg.datasets = [d for d in cfg.datasets if d.name in datasets]
    return cfg


# ---------------------------------------------------------------------------
# Data and ground truth (parent process)
# ---------------------------------------------------------------------------

def make_dataset(ds: Dataset):
    """(base, queries) for a dataset, or None when its file is missing."""
    import numpy as np
    if ds.kind == "clustered":
        return clustered(ds.n, ds.d, salt=0), clustered(ds.nq, ds.d, salt=1)
    if ds.kind == "gaussian":
        return gaussian(ds.n, ds.d, salt=0), gaussian(ds.nq, ds.d, salt=1)
    if ds.kind == "minilm":
        if not MINILM.exists():
            return None
        X = np.load(MINILM).astype(np.float32, copy=True)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        ds.n, ds.d = X.shape[0] - ds.nq, X.shape[1]
        return np.ascontiguousarray(X[ds.nq:]), np.ascontiguousarray(X[:ds.nq])
    raise ValueError(ds.kind)


def ground_truth(X, Q, k: int = K):
    """numpy's exact top-k ids of each query (float32 matmul, chunked)."""
    import numpy as np
    out = np.empty((Q.shape[0], k), dtype=np.int64)
    step = max(1, (1 << 27) // X.shape[0])  # ~512 MB of scores per chunk
    for i in range(0, Q.shape[0], step):
        S = Q[i:i + step] @ X.T
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(S, part, axis=1)
        out[i:i + step] = np.take_along_axis(part, np.argsort(-vals, axis=1, kind="stable"), axis=1)
    return out


# ---------------------------------------------------------------------------
# Worker (one process per dataset and library)
# ---------------------------------------------------------------------------

def time_single(peer, Q, k: int, max_queries: int, budget_s: float) -> dict:
    """Per-query latency of 1-D searches over the queries in order (one untimed warm-up)."""
    peer.search(Q[0], k)
    clock = time.perf_counter_ns
    lat = []
    deadline = clock() + int(budget_s * 1e9)
    gc.disable()
    try:
        for i in range(min(max_queries, Q.shape[0])):
            t0 = clock()
            peer.search(Q[i], k)
            t1 = clock()
            lat.append(t1 - t0)
            if t1 > deadline and len(lat) >= 20:
                break
    finally:
        gc.enable()
    lat.sort()
    total = sum(lat)
    return {"queries": len(lat), "qps": len(lat) / (total / 1e9), "median_us": lat[len(lat) // 2] / 1e3,
            "p10_us": lat[int(0.1 * (len(lat) - 1))] / 1e3, "p90_us": lat[int(0.9 * (len(lat) - 1))] / 1e3}


def measure_build(peer, X, threads: int) -> dict:
    """Builds, timed, with the process's resident memory before, after and at its peak."""
    gc.collect()
    rss0 = proc_status_bytes("VmRSS")
    hwm_reset = reset_peak_rss()
    t0 = time.perf_counter()
    peer.build(X, threads)
    build_s = time.perf_counter() - t0
    gc.collect()
    rss1 = proc_status_bytes("VmRSS")
    hwm = proc_status_bytes("VmHWM")
    memory = {"raw_bytes": int(X.nbytes), "rss_before": rss0, "rss_after": rss1,
              "peak_rss": hwm if hwm_reset else None, "reported_bytes": peer.memory_reported()}
    return {"build_s": build_s, "memory": memory, "describe": peer.describe()}


def worker(spec_path: Path, out_path: Path) -> None:
    import numpy as np
    from peers import ann_peer
    spec = json.loads(spec_path.read_text())
    cls = ann_peer(spec["peer"])
    X = np.load(spec["base"])
    Q = np.load(spec["queries"])
    gt = np.load(spec["gt"])
    threads = spec["threads"]
    peer = cls()
    result = {"peer": cls.key, "label": cls.label, "version": cls.version(), "param": cls.param,
              "threads": threads, "n": int(X.shape[0]), "d": int(X.shape[1]), "nq": int(Q.shape[0])}

    result.update(measure_build(peer, X, threads))
    write_json(out_path, result)  # partial result survives a crash in the sweep

    def point(value, label=None):
        peer.set(value)
        t1 = time.perf_counter_ns()
        ids = peer.search(Q, K)
        first_ns = time.perf_counter_ns() - t1
        rec = recall_at_k(np.asarray(ids).reshape(Q.shape[0], K), gt)
        batch = time_call(lambda: peer.search(Q, K), spec["batch_min_time_s"], spec["batch_min_reps"],
                          slow_call_s=max(1.0, spec["batch_min_time_s"]), first_call_ns=first_ns)
        if cls.spins:
            settle()
        single = time_single(peer, Q, K, spec["single_queries"], spec["single_budget_s"])
        p = {"value": value, "label": label or str(value), "recall": rec, "batch": batch,
             "batch_qps": Q.shape[0] / (batch["median_ns"] / 1e9), "single": single}
        return p, first_ns / 1e9

    sweep = []
    if cls.key == "nndex_ivf":
        p, _ = point(None, f"default ({peer.index.nprobe})")
        result["default"] = p
    for value in peer.sweep_values():
        p, first_s = point(value)
        sweep.append(p)
        log(f"  {cls.key} {cls.param}={value}: recall {p['recall']:.4f}, batch {p['batch_qps']:.0f} QPS, "
            f"single {p['single']['qps']:.0f} QPS")
        result["sweep"] = sweep
        write_json(out_path, result)
        if p["recall"] >= STOP_RECALL or first_s > spec["max_batch_s"]:
            break
    result["sweep"] = sweep
    write_json(out_path, result)


# ---------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------

def projected_build(history: list[tuple[int, float]], n: int) -> float | None:
    """n log n extrapolation from the largest earlier build of the same library."""
    if not history:
        return None
    n0, s0 = max(history)
    if n <= n0:
        return None
    return s0 * (n / n0) * (math.log(n) / math.log(max(n0, 2)))


def targets_of(sweep: list[dict]) -> dict:
    """For each target recall: the cheapest sweep point (first in sweep order) reaching it."""
    out = {}
    for t in TARGETS:
        hit = next((p for p in sweep if p["recall"] >= t), None)
        out[f"{t:.2f}"] = None if hit is None else {
            "value": hit["value"], "recall": hit["recall"], "batch_qps": hit["batch_qps"],
            "batch_spread_pct": 100.0 * (hit["batch"]["p90_ns"] - hit["batch"]["p10_ns"]) / (2 * hit["batch"]["median_ns"]),
            "single_qps": hit["single"]["qps"], "single_median_us": hit["single"]["median_us"]}
    return out


def run(cfg: AnnConfig, deadline: float | None = None) -> dict:
    """deadline: time.monotonic() by which the suite must be done (the whole run's time budget); a
    build projected to overrun it is skipped, and a worker is stopped at it (keeping what it measured)."""
    import numpy as np
    from peers import ann_peer
    classes = []
    unavailable = {}
    for key in cfg.peers:
        cls = ann_peer(key)
        why = cls.available()
        if why:
            unavailable[key] = why
        else:
            classes.append(cls)
    builds: dict[str, list[tuple[int, float]]] = {}
    out = {"config": asdict(cfg), "targets": list(TARGETS), "unavailable": unavailable, "datasets": []}
    t_all = time.perf_counter()
    for ds in cfg.datasets:
        t0 = time.perf_counter()
        data = make_dataset(ds)
        entry = {"dataset": asdict(ds), "results": {}, "notes": []}
        out["datasets"].append(entry)
        if data is None:
            entry["notes"].append(f"skipped: {MINILM.relative_to(REPO_DIR)} not found")
            log(f"[{ds.name}] skipped: {MINILM} not found")
            continue
        X, Q = data
        entry["dataset"] = asdict(ds)
        gt = ground_truth(X, Q)
        log(f"[{ds.name}] {X.shape[0]}x{X.shape[1]}, {Q.shape[0]} queries; data and ground truth in "
            f"{time.perf_counter() - t0:.1f} s")
        with tempfile.TemporaryDirectory(prefix="nndex-ann-") as tmp:
            tmp = Path(tmp)
            np.save(tmp / "base.npy", X)
            np.save(tmp / "queries.npy", Q)
            np.save(tmp / "gt.npy", gt)
            del X
            for cls in classes:
                proj = projected_build(builds.get(cls.key, []), ds.n)
                left = None if deadline is None else deadline - time.monotonic()
                note = None
                if proj is not None and proj > cfg.max_build_s:
                    note = f"skipped: build projected at ~{proj:.0f} s (limit {cfg.max_build_s:g} s)"
                elif left is not None and (left < 10 or (proj is not None and 1.5 * proj > left)):
                    note = f"skipped: the run's time budget has {max(left, 0):.0f} s left" + (
                        f", the build is projected at ~{proj:.0f} s" if proj is not None else "")
                if note:
                    entry["results"][cls.key] = {"peer": cls.key, "label": cls.label, "note": note}
                    log(f"[{ds.name}] {cls.label}: {note}")
                    continue
                res = run_worker(tmp, cls, cfg, left)
                if "build_s" in res:
                    builds.setdefault(cls.key, []).append((ds.n, res["build_s"]))
                if "sweep" in res:
                    res["targets"] = targets_of(res["sweep"])
                entry["results"][cls.key] = res
                summary = ", ".join(
                    f"{t}: {v['batch_qps']:.0f} QPS @ {cls.param}={v['value']}" if v else f"{t}: not reached"
                    for t, v in (res.get("targets") or {}).items())
                log(f"[{ds.name}] {cls.label}: build {res.get('build_s', float('nan')):.1f} s; {summary}"
                    + (f" ({res['note']})" if res.get("note") else ""))
    out["seconds"] = time.perf_counter() - t_all
    log(f"ann suite took {out['seconds']:.0f} s")
    return out


def run_worker(tmp: Path, cls, cfg: AnnConfig, time_left: float | None = None) -> dict:
    spec = {"peer": cls.key, "base": str(tmp / "base.npy"), "queries": str(tmp / "queries.npy"),
            "gt": str(tmp / "gt.npy"), "threads": cfg.threads, "batch_min_time_s": cfg.batch_min_time_s,
            "batch_min_reps": cfg.batch_min_reps, "single_queries": cfg.single_queries,
            "single_budget_s": cfg.single_budget_s, "max_batch_s": cfg.max_batch_s}
    timeout = cfg.worker_timeout_s if time_left is None else max(10.0, min(cfg.worker_timeout_s, time_left))
    return spawn_worker(Path(__file__), spec, tmp, cls, timeout)


def spawn_worker(script: Path, spec: dict, tmp: Path, cls, timeout: float) -> dict:
    """Runs `script --worker SPEC OUT` in a fresh process (its stderr passed through) and returns what
    it wrote to OUT, with a note when it failed or ran out of time (keeping what it measured)."""
    spec_path = tmp / f"spec-{cls.key}.json"
    out_path = tmp / f"out-{cls.key}.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", str(spec_path), str(out_path)]
    note = None
    try:
        proc = subprocess.run(cmd, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr.strip().splitlines()[-200:]:
            print(line, file=sys.stderr)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            note = f"worker failed (exit {proc.returncode}): {tail}"
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:.0f} s (time limit); the sweep below is what it measured by then"
    res = json.loads(out_path.read_text()) if out_path.exists() else {"peer": cls.key, "label": cls.label}
    if note:
        res["note"] = note
        log(f"  {cls.label}: {note}")
    return res


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "ann.json")
    ap.add_argument("--worker", nargs=2, type=Path, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    write_json(args.out, run(config(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
