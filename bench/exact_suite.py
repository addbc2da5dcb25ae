"""Exact top-k search: nndex against numpy, simsimd, faiss IndexFlatIP and usearch's brute force.

Every library gets the same L2-normalised float32 matrix and queries. Each result is cross-checked
against float64 dot products before it is timed (the returned ids must carry the true top-k scores
rank by rank, within 1e-6, so ids may differ only where scores tie). Workloads: a single 1-D query
and batches of 4, 128 and 2048; k = 10 everywhere and k = 100 on one shape; on 1 thread and on all
threads. A library whose call would take too long (projected from its previous, smaller workload)
or need too much memory is skipped for that cell, and the cell says so.

Run through run_all.py; `python bench/exact_suite.py [--quick]` runs this part alone.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import (K, RESULTS_DIR, check_topk, gaussian, log, meminfo_bytes, prepare_environment,
                    reference_topk, settle, time_call, usable_cpus, write_json)


@dataclass
class ExactConfig:
    shapes: list[tuple[int, int]]
    batches: list[int]
    threads: list[int]
    k100_shape: tuple[int, int] | None
    min_time_s: float
    min_reps: int
    slow_call_s: float      # calls slower than this get 3 timed repeats
    max_call_s: float       # skip a library whose projected call time exceeds this
    queries: int = 2048
    peers: list[str] | None = None  # None: every available peer


ALL_SHAPES = [(1000, 48), (1000, 768), (10000, 48), (10000, 768), (50000, 128), (100000, 2),
              (1000000, 128), (200000, 768)]


def config(quick: bool, threads: list[int] | None = None, shapes=None, peers=None) -> ExactConfig:
    all_threads = usable_cpus()
    thr = threads or sorted({1, all_threads})
    if quick:
        # 1,000,000 x 128 stands in for the two large matrices; big batches are skipped by the call limit.
        cfg = ExactConfig(shapes=[s for s in ALL_SHAPES if s != (200000, 768)], batches=[4, 128, 2048],
                          threads=thr, k100_shape=(50000, 128), min_time_s=0.08, min_reps=3, slow_call_s=0.3,
                          max_call_s=0.6)
    else:
        cfg = ExactConfig(shapes=list(ALL_SHAPES), batches=[4, 128, 2048], threads=thr, k100_shape=(50000, 128),
                          min_time_s=0.4, min_reps=5, slow_call_s=1.0, max_call_s=8.0)
    if shapes:
        cfg.shapes = shapes
    cfg.peers = peers
    return cfg


def reference_rows(n: int) -> int:
    """Queries cross-checked per workload: the float64 reference holds rows x n scores (<= 256 MB)."""
    return max(16, min(256, (1 << 25) // n))


@contextlib.contextmanager
def limit_threads(threads: int):
    """Caps every BLAS and OpenMP pool in the process (numpy's OpenBLAS, faiss's OpenBLAS and
    OpenMP) at `threads`; each adapter also passes `threads` to its library."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log("threadpoolctl missing: numpy's BLAS thread count cannot be limited")
        yield
        return
    with threadpool_limits(limits=threads):
        yield


def _short(stats: dict | None) -> str:
    if not stats:
        return "-"
    ns = stats["median_ns"]
    return f"{ns / 1e3:.1f}us" if ns < 1e6 else f"{ns / 1e6:.2f}ms" if ns < 1e9 else f"{ns / 1e9:.2f}s"


@dataclass
class Cell:
    stats: dict | None = None
    note: str | None = None


@dataclass
class Row:
    n: int
    d: int
    k: int
    nq: int          # 1 for the single (1-D) query
    threads: int
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def workload(self) -> str:
        return "single" if self.nq == 1 else f"batch {self.nq}"


def bench_shape(n: int, d: int, cfg: ExactConfig, peer_classes, mem_available: int | None) -> list[Row]:
    import numpy as np
    t0 = time.perf_counter()
    M = gaussian(n, d, salt=0)
    Q = gaussian(cfg.queries, d, salt=1)
    R = reference_rows(n)
    ks = [K] + ([100] if cfg.k100_shape == (n, d) else [])
    scores, ordered = reference_topk(M, Q[:R], max(ks))
    tops = {k: ordered[:, :k] for k in ks}
    log(f"[{n}x{d}] data and float64 reference ready in {time.perf_counter() - t0:.1f} s")

    rows: list[Row] = []
    workloads = [1] + cfg.batches
    for threads in cfg.threads:
        with limit_threads(threads):
            peers = {}
            for cls in peer_classes:
                try:
                    p = cls()
                    t1 = time.perf_counter()
                    p.prepare(M, threads)
                    peers[cls.key] = (p, time.perf_counter() - t1)
                except Exception as exc:  # report, keep going
                    log(f"[{n}x{d}] {cls.label}: prepare failed: {exc}")
                    peers[cls.key] = (None, f"error: {exc}")
            for k in ks:
                last: dict[str, tuple[int, float]] = {}  # peer -> (nq, median seconds) of its last cell
                for nq in workloads:
                    row = Row(n, d, k, nq, threads)
                    rows.append(row)
                    q = Q[0] if nq == 1 else Q[:nq]
                    for cls in peer_classes:
                        p, prep = peers[cls.key]
                        cell = Cell()
                        row.cells[cls.key] = cell
                        if p is None:
                            cell.note = prep
                            continue
                        cell.note = skip_reason(cls, n, nq, last.get(cls.key), cfg, mem_available)
                        if cell.note:
                            continue
                        run_cell(p, cls, q, k, nq, scores, tops[k], cfg, cell)
                        if cell.stats:
                            last[cls.key] = (nq, cell.stats["median_ns"] / 1e9)
                        if cls.spins:
                            settle()
                    log(f"[{n}x{d}] k={k} {row.workload:>10} t={threads}: " + ", ".join(
                        f"{key} {_short(c.stats) if c.stats else c.note}" for key, c in row.cells.items()))
            for p, _ in peers.values():
                if p is not None:
                    p.close()
    return rows


def skip_reason(cls, n: int, nq: int, last: tuple[int, float] | None, cfg: ExactConfig,
                mem_available: int | None) -> str | None:
    if cls.materialises_scores and nq > 1 and mem_available:
        from peers import DENSE_BYTES_PER_PAIR
        need = nq * n * DENSE_BYTES_PER_PAIR
        if need > 0.4 * mem_available:
            return f"skipped: the {nq} x {n} score matrix needs ~{need / 2**30:.0f} GiB"
    if last is not None:
        prev_nq, prev_s = last
        projected = prev_s * nq / prev_nq
        if projected > cfg.max_call_s:
            return f"skipped: ~{projected:.0f} s per call projected (limit {cfg.max_call_s:g} s)"
    return None


def run_cell(p, cls, q, k: int, nq: int, scores, top, cfg: ExactConfig, cell: Cell) -> None:
    import numpy as np
    try:
        t0 = time.perf_counter_ns()
        ids, sims = p.search(q, k)
        first_ns = time.perf_counter_ns() - t0
    except Exception as exc:
        cell.note = f"error: {type(exc).__name__}: {exc}"
        log(f"  {cls.label}: {cell.note}")
        return
    ids = np.asarray(ids).reshape(-1, min(k, scores.shape[1]))
    sims = np.asarray(sims).reshape(ids.shape)
    problems = check_topk(ids, sims, scores, top)
    if problems:
        cell.note = "CHECK FAILED"
        log(f"  CHECK FAILED {cls.label} nq={nq} k={k}:\n    " + "\n    ".join(problems))
        return
    cell.stats = time_call(lambda: p.search(q, k), cfg.min_time_s, cfg.min_reps, cfg.slow_call_s,
                           first_call_ns=first_ns)


def run(cfg: ExactConfig) -> dict:
    from peers import EXACT_PEERS
    classes = []
    unavailable = {}
    for cls in EXACT_PEERS:
        if cfg.peers and cls.key not in cfg.peers:
            continue
        why = cls.available()
        if why:
            unavailable[cls.key] = why
            log(f"{cls.label} unavailable: {why}")
        else:
            classes.append(cls)
    mem = meminfo_bytes("MemAvailable")
    t0 = time.perf_counter()
    rows: list[Row] = []
    for n, d in cfg.shapes:
        rows += bench_shape(n, d, cfg, classes, mem)
    took = time.perf_counter() - t0
    log(f"exact suite took {took:.0f} s")
    return {
        "config": asdict(cfg),
        "peers": {cls.key: {"label": cls.label, "version": cls.version()} for cls in classes},
        "unavailable": unavailable,
        "seconds": took,
        "rows": [{"n": r.n, "d": r.d, "k": r.k, "nq": r.nq, "threads": r.threads,
                  "cells": {key: asdict(c) for key, c in r.cells.items()}} for r in rows],
    }


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "exact.json")
    args = ap.parse_args()
    write_json(args.out, run(config(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
