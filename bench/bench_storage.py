#!/usr/bin/env python3
"""Compressed storage: nndex storage="bf16" / "int8" against storage="f32" in the same run, with
faiss (IndexScalarQuantizer bf16 / SQ8 re-ranked by IndexRefineFlat), simsimd (bf16 / int8 dot
products) and usearch (exact search on bf16 / i8) as peers, plus recall@10 against exact float32 search and the resident memory of a
memory-mapped int8 index.

    python bench/bench_storage.py --quick     # small shapes, a few minutes on 2 cores
    python bench/bench_storage.py             # the issue's shapes (1,000,000 x 128, 200,000 x 768, ...)

Prints a markdown report on stdout (progress on stderr); --json PATH writes every number.
Timings are medians with p10-p90 over calls on distinct queries (the query cache never hits).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import common  # noqa: E402

REPO_DIR = BENCH_DIR.parent
MINILM = REPO_DIR / "tests" / "fixtures" / "minilm_embeddings.npy"
K = 10
STORAGES = ("f32", "bf16", "int8")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes (CI-sized)")
    p.add_argument("--json", type=Path, help="also write every number here")
    p.add_argument("--no-peers", action="store_true", help="skip faiss and usearch")
    p.add_argument("--no-memory", action="store_true", help="skip the mmap resident-memory check")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per single-query measurement")
    return p.parse_args()


def single_query(search, queries, min_time_s: float) -> dict:
    """Median per-call time of search(q) over distinct queries, cycled."""
    i = [0]

    def call():
        search(queries[i[0] % len(queries)])
        i[0] += 1

    return common.time_call(call, min_time_s=min_time_s, min_reps=30, slow_call_s=2.0)


def batch_query(search, queries) -> dict:
    return common.time_call(lambda: search(queries), min_time_s=1.0, min_reps=3, slow_call_s=0.5)


def fmt(t: dict) -> str:
    return f"{t['median_ns'] / 1e6:.3f} ms ({t['p10_ns'] / 1e6:.3f}-{t['p90_ns'] / 1e6:.3f})"


def recall(ids, truth) -> float:
    hits = sum(len(set(a[:K]) & set(b[:K])) for a, b in zip(ids, truth))
    return hits / (len(truth) * K)


def nndex_rows(X, Q, batch: bool, min_time_s: float) -> dict:
    from nndex import NNdex

    out = {}
    truth = None
    for storage in STORAGES:
        ix = NNdex(X, storage=storage, enable_cache=False)  # distinct queries: measure the search
        ids, _ = ix.search(Q, k=K)
        if truth is None:
            truth = ids
        t = batch_query(lambda q: ix.search(q, k=K), Q) if batch else single_query(lambda q: ix.search(q, k=K), Q, min_time_s)
        out[storage] = {"time": t, "recall": recall(ids, truth), "isa": ix.isa, "memory_bytes": ix.memory_bytes}
        common.log(f"  nndex {storage}: {fmt(t)} recall {out[storage]['recall']:.4f} isa {ix.isa}")
        del ix
        common.settle()
    return out, truth


def peer_rows(X, Q, truth, batch: bool, min_time_s: float) -> dict:
    import numpy as np

    out = {}
    try:
        import faiss

        faiss.omp_set_num_threads(common.usable_cpus())
        # k_factor 2 for both: nndex's default shortlist for k = 10 (18 bf16 / 20 int8 rows).
        for name, qt, factor in (("faiss bf16+refine", faiss.ScalarQuantizer.QT_bf16, 2),
                                 ("faiss SQ8+refine", faiss.ScalarQuantizer.QT_8bit, 2)):
            base = faiss.IndexScalarQuantizer(X.shape[1], qt, faiss.METRIC_INNER_PRODUCT)
            base.train(X)
            ix = faiss.IndexRefineFlat(base)
            ix.add(X)
            ix.k_factor = factor
            _, ids = ix.search(Q, K)
            search = (lambda q: ix.search(q, K)) if batch else (lambda q: ix.search(q[None, :], K))
            t = batch_query(search, Q) if batch else single_query(search, Q, min_time_s)
            out[name] = {"time": t, "recall": recall(ids, truth)}
            common.log(f"  {name}: {fmt(t)} recall {out[name]['recall']:.4f}")
            del ix, base
            common.settle()
    except ImportError:
        common.log("  faiss not installed: skipped")
    try:
        import ml_dtypes
        import simsimd

        # simsimd's dot products over the compressed arrays, the top k taken by numpy (its cdist returns
        # the whole query x row matrix, float64): bf16 bit patterns, and int8 codes whose dots are
        # multiplied by the rows' scales (without them the ranking would be off).
        if not batch or len(Q) * len(X) <= (1 << 28):
            scale = (np.abs(X).max(axis=1) / 127).astype(np.float64)
            X8 = np.clip(np.round(X / scale[:, None].astype(np.float32)), -127, 127).astype(np.int8)
            Xb = X.astype(ml_dtypes.bfloat16).view(np.uint16)

            def top(d):
                d = np.atleast_2d(d)
                part = np.argpartition(-d, K - 1, axis=1)[:, :K]
                order = np.argsort(-np.take_along_axis(d, part, axis=1), axis=1)
                return np.take_along_axis(part, order, axis=1)

            for name, conv, dtype, rows_of, post in (
                    ("simsimd dot bf16", lambda a: a.astype(ml_dtypes.bfloat16).view(np.uint16), "bf16", Xb, None),
                    ("simsimd dot i8 x scale", lambda a: np.clip(np.round(a / (np.abs(a).max(axis=-1, keepdims=True) / 127)),
                                                                 -127, 127).astype(np.int8), "int8", X8, scale)):
                Qc = conv(Q)
                run = lambda q: top(np.asarray(simsimd.cdist(np.atleast_2d(q), rows_of, metric="dot", dtype=dtype,  # noqa: E731
                                                             threads=common.usable_cpus())) * (1 if post is None else post))
                ids = run(Qc)
                t = batch_query(run, Qc) if batch else single_query(run, Qc, min_time_s)
                out[name] = {"time": t, "recall": recall(ids, truth)}
                common.log(f"  {name}: {fmt(t)} recall {out[name]['recall']:.4f}")
                common.settle()
            del X8, Xb
        else:
            common.log("  simsimd: skipped (its query x row matrix would not fit in memory)")
    except ImportError:
        common.log("  simsimd or ml_dtypes not installed: skipped")
    try:
        import ml_dtypes
        from usearch.index import MetricKind, search as usearch_search

        # usearch's search() takes the compressed arrays themselves (converting float32 inside with
        # dtype="bf16" returned NaN distances in 2.26), so they are converted once, outside the timing:
        # bf16 as uint16 bit patterns, int8 as symmetric per-row codes (x / max|x| * 127).
        def int8_rows(a):
            return np.clip(np.round(a / np.abs(a).max(axis=-1, keepdims=True) * 127), -127, 127).astype(np.int8)

        if batch and len(Q) * len(X) > (1 << 28):
            common.log("  usearch exact: skipped (its batch search of this size aborted with std::bad_alloc)")
            return out
        for name, conv, dtype, metric in (
                ("usearch exact bf16", lambda a: a.astype(ml_dtypes.bfloat16).view(np.uint16), "bf16", MetricKind.IP),
                ("usearch exact i8", int8_rows, "i8", MetricKind.Cos)):
            Xc, Qc = conv(X), conv(Q)
            run = lambda q: usearch_search(Xc, q, K, metric, exact=True, dtype=dtype,  # noqa: E731
                                           threads=common.usable_cpus())
            ids = np.asarray(run(Qc).keys)
            t = batch_query(run, Qc) if batch else single_query(run, Qc, min_time_s)
            out[name] = {"time": t, "recall": recall(ids, truth)}
            common.log(f"  {name}: {fmt(t)} recall {out[name]['recall']:.4f}")
            del Xc
            common.settle()
    except ImportError:
        common.log("  usearch or ml_dtypes not installed: skipped")
    return out


MEMORY_CHILD = r"""
import json, sys, numpy as np
from nndex import NNdex
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
path, dims = sys.argv[1], int(sys.argv[2])
before = rss()
ix = NNdex.load(path, mmap=True)
rng = np.random.default_rng(3)
for _ in range(100):
    ix.search(rng.standard_normal(dims, dtype=np.float32), k=10)
print(json.dumps({"rss_growth": rss() - before, "memory_bytes": ix.memory_bytes, "isa": ix.isa}))
"""


def memory_check(rows: int, dims: int) -> dict:
    from nndex import NNdex

    X = common.gaussian(rows, dims, salt=5)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "int8.nndex")
        NNdex(X, storage="int8").save(path)
        f32_bytes = X.nbytes
        del X
        # Not in the page cache: the child's resident growth is what the searches map in.
        subprocess.run(["sync"], check=False)
        try:
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
        except OSError:
            pass
        res = subprocess.run([sys.executable, "-c", MEMORY_CHILD, path, str(dims)], capture_output=True, text=True,
                             check=True)
        r = json.loads(res.stdout)
    r["f32_bytes"] = f32_bytes
    r["limit_bytes"] = int(0.3 * f32_bytes + 32 * 2**20)
    common.log(f"  mmap int8 {rows}x{dims}: RSS growth {r['rss_growth'] / 2**20:.0f} MiB "
               f"(limit {r['limit_bytes'] / 2**20:.0f} MiB)")
    return r


def run(quick: bool, min_time_s: float = 1.0, peers: bool = True, memory: bool = True) -> dict:
    """Every measurement of this file; `quick` uses CI-sized shapes."""
    import numpy as np

    singles = [(50_000, 128), (20_000, 768)] if quick else [(1_000_000, 128), (200_000, 768)]
    batches = [(256, 10_000, 768)] if quick else [(2048, 10_000, 768), (2048, 1_000_000, 128)]
    report = {"cpu": common.cpu_model(), "single": {}, "batch": {}, "recall": {}}
    common.log(f"storage: CPU {report['cpu']}")

    for rows, dims in singles:
        common.log(f"single query {rows} x {dims}")
        X = common.gaussian(rows, dims)
        Q = common.gaussian(200, dims, salt=1)
        rows_out, truth = nndex_rows(X, Q, batch=False, min_time_s=min_time_s)
        if peers:
            rows_out.update(peer_rows(X, Q, truth, batch=False, min_time_s=min_time_s))
        report["single"][f"{rows}x{dims}"] = rows_out
        del X

    for nq, rows, dims in batches:
        common.log(f"batch {nq} x {rows} x {dims}")
        X = common.gaussian(rows, dims)
        Q = common.gaussian(nq, dims, salt=1)
        rows_out, truth = nndex_rows(X, Q, batch=True, min_time_s=min_time_s)
        if peers:
            rows_out.update(peer_rows(X, Q, truth, batch=True, min_time_s=min_time_s))
        report["batch"][f"{nq}x{rows}x{dims}"] = rows_out
        del X

    # Recall at the defaults on real sentence embeddings (the first 500 rows are the held-out queries,
    # tests/fixtures/README.md) and Gaussian data.
    from nndex import NNdex

    M = np.load(MINILM).astype(np.float32)
    for name, X, Q in (("minilm", M[500:], M[:500]),
                       ("gaussian 100000x384", common.gaussian(100_000, 384), common.gaussian(300, 384, salt=2))):
        truth, _ = NNdex(X).search(Q, k=K)
        report["recall"][name] = {s: recall(NNdex(X, storage=s).search(Q, k=K)[0], truth) for s in ("bf16", "int8")}
        common.log(f"  recall {name}: {report['recall'][name]}")

    if memory:
        report["memory"] = memory_check(100_000 if quick else 1_000_000, 384)
    return report


def main() -> None:
    common.prepare_environment(Path(__file__))
    args = parse_args()
    report = run(args.quick, args.min_time, peers=not args.no_peers, memory=not args.no_memory)
    print(render(report))
    if args.json:
        common.write_json(args.json, report)


def render(r: dict) -> str:
    lines = [f"## Compressed storage ({r['cpu']})", "",
             "`storage=\"bf16\"` / `\"int8\"` against `storage=\"f32\"` in the same run; similarities returned are "
             "exact float32. Peers: faiss IndexScalarQuantizer re-ranked by IndexRefineFlat (k_factor 2, about nndex's "
             "default shortlist at k = 10), simsimd dot products (cdist on bf16 / int8 arrays, top k by numpy), "
             "usearch exact search on bf16 / i8 arrays (no re-ranking). Recall@10 against "
             "exact float32 search.", ""]
    for kind in ("single", "batch"):
        for shape, rows in r[kind].items():
            base = rows["f32"]["time"]["median_ns"]
            lines += [f"### {kind} {shape}", "", "| method | time (median, p10-p90) | vs nndex f32 | recall@10 |",
                      "|---|---|---|---|"]
            for name, row in rows.items():
                label = f"nndex {name} ({row['isa']})" if "isa" in row else name
                lines.append(f"| {label} | {fmt(row['time'])} | {base / row['time']['median_ns']:.2f}x | {row['recall']:.4f} |")
            lines.append("")
    lines += ["### recall@10 against exact float32 (defaults)", "", "| data | bf16 | int8 |", "|---|---|---|"]
    for name, rec in r["recall"].items():
        lines.append(f"| {name} | {rec['bf16']:.4f} | {rec['int8']:.4f} |")
    if "memory" in r:
        m = r["memory"]
        lines += ["", "### int8 index loaded with mmap=True, 100 searches", "",
                  f"resident growth {m['rss_growth'] / 2**20:.0f} MiB; limit 0.3 x f32 matrix + 32 MiB = "
                  f"{m['limit_bytes'] / 2**20:.0f} MiB; memory_bytes {m['memory_bytes']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
