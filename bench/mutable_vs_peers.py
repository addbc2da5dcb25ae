"""Mutable indexes: nndex's add / remove / filtered search against faiss and hnswlib.

    python bench/mutable_vs_peers.py [--dataset clustered|docs-60k|docs-250k] [--rows N --dims D --queries Q]

On one dataset (L2-normalised float32 rows, inner product, k = 10; default: 200,000 x 384 clustered):

1. Add throughput, all threads: an index of the first half of the rows, the second half added in
   batches of --batch rows with ids (rows/s: median and p10-p90 over batches, overall, slowest
   batch), and on a fresh half index in one call. nndex exact f32 and graph (approx="graph"), faiss
   IndexIDMap2 over IndexFlatIP / IndexHNSWFlat (add_with_ids), hnswlib (add_items; capacity reserved).
2. Filtered search on a fresh index of all rows, allowed: all (no filter), a random 50%, 10%, 1%,
   0.1% of the ids. Single queries on 1 thread (median, p90), batches of --batch-queries on 2 threads
   (per query; not hnswlib), recall@10 against the exact filtered top-10 (numpy, float64). Filters:
   nndex a boolean mask by id and an int64 id array, passed on every call; faiss IDSelectorBatch and
   IDSelectorBitmap, built once per subset (untimed); hnswlib `filter=lambda i: allowed[i]` (a list).
   HNSW peers (M=16, ef_construction=200) at the smallest ef of peers.HNSW_EFS with recall 0.95
   unfiltered; nndex graph at its own calibrated ef.
3. Mutations (nndex exact and graph), single queries: (a) the fresh index, (b) the half index grown
   by the batched adds, (c) (b) with a random 20% of the ids removed (below the 25% per-segment
   auto-compaction), (d) (c) compacted; with segments, removed_rows and the remove() / compact() time.

One worker process per library (ann_suite.spawn_worker). nndex fixes its threads when an index is
made: 1-thread searches use a copy saved and loaded with threads=1 (as peers.py does); every nndex
index has enable_cache=False. Prints markdown tables; writes bench/results/mutable_vs_peers_<cpu>.json
(one entry per dataset; other datasets' entries are kept).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import percentile  # noqa: E402
from ann_suite import spawn_worker  # noqa: E402
from ann_vs_hnswlib import DATA_DIR, Dataset, cpu_kind, load_dataset, thread_limit  # noqa: E402
from common import (K, RESULTS_DIR, blas_libraries, clustered, cpu_model, load_average, log,  # noqa: E402
                    prepare_environment, read_json, recall_at_k, removed_env, time_call, usable_cpus, write_json)

SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001)
REMOVE_FRACTION = 0.2
TARGET = 0.95
np = None  # numpy, imported by main() after prepare_environment() (see common.py)


# ---------------------------------------------------------------------------
# Adapters: new(X, ids) builds (ids None: a plain index of row numbers), add(X, ids), filters(),
# search(Q, kk, filt, threads) -> ids ((kk,) for a 1-D query, (n, kk) for a batch).
# ---------------------------------------------------------------------------

class Nndex:
    approx: bool | str = False

    def __init__(self, threads):
        from nndex import NNdex
        self.NNdex, self.threads, self.ix, self.ix1 = NNdex, threads, None, None

    def new(self, X, ids=None, capacity=0):
        self.ix = self.NNdex(X, normalized=True, approx=self.approx, ids=ids, threads=self.threads,
                             enable_cache=False)
        self.ix1 = None

    def add(self, X, ids):
        self.ix.add(X, ids)
        self.ix1 = None

    def one_thread(self):
        """A copy with threads=1, re-made after every change (save + load: nothing is rebuilt)."""
        if self.ix1 is None:
            with tempfile.TemporaryDirectory(prefix="nndex-mut-") as tmp:
                self.ix.save(Path(tmp) / "ix.nndex")
                self.ix1 = self.NNdex.load(Path(tmp) / "ix.nndex", mmap=False, threads=1, enable_cache=False,
                                           verify=False)
        return self.ix1

    def filters(self, mask, allowed):
        return {"mask": mask, "ids": allowed}

    def search(self, Q, kk, filt, threads):
        ix = self.one_thread() if threads == 1 else self.ix
        return ix.search(Q, k=kk, filter=filt)[0]

    def state(self):
        ix = self.one_thread()
        return {"rows": len(self.ix), "segments": self.ix.segments, "segments_loaded": ix.segments,
                "removed_rows": self.ix.removed_rows}


class NndexGraph(Nndex):
    approx = "graph"


class FaissFlat:
    def __init__(self, threads):
        import faiss
        self.faiss, self.threads, self.keep = faiss, threads, []

    def make(self, d):
        return self.faiss.IndexFlatIP(d)

    def new(self, X, ids=None, capacity=0):
        self.faiss.omp_set_num_threads(self.threads)
        self.base = self.make(X.shape[1])
        self.ix = self.base if ids is None else self.faiss.IndexIDMap2(self.base)  # ids: add_with_ids
        self.add(X, ids)

    def add(self, X, ids):
        return self.ix.add(X) if ids is None else self.ix.add_with_ids(X, ids)

    def params(self, sel):
        return self.faiss.SearchParameters(sel=sel)

    def filters(self, mask, allowed):
        f = self.faiss  # a bitmap: bit i % 8 of byte i // 8 is id i (its n counts bytes)
        batch, bitmap = f.IDSelectorBatch(allowed), f.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
        self.keep += [batch, bitmap]  # alive as long as the parameters that point to them
        return {"IDSelectorBatch": self.params(batch), "IDSelectorBitmap": self.params(bitmap)}

    def search(self, Q, kk, filt, threads):
        self.faiss.omp_set_num_threads(threads)
        one = Q.ndim == 1
        ids = self.ix.search(Q[None, :] if one else Q, kk, params=filt)[1]
        return ids[0] if one else ids


class FaissHnsw(FaissFlat):
    def make(self, d):
        from peers import HNSW_EF_CONSTRUCTION, HNSW_M
        ix = self.faiss.IndexHNSWFlat(d, HNSW_M, self.faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return ix

    def set_ef(self, ef):
        self.ef = self.base.hnsw.efSearch = ef

    def params(self, sel):
        return self.faiss.SearchParametersHNSW(sel=sel, efSearch=self.ef)


class Hnswlib:
    def __init__(self, threads):
        import hnswlib
        self.hnswlib, self.threads = hnswlib, threads

    def new(self, X, ids=None, capacity=0):
        from peers import HNSW_EF_CONSTRUCTION, HNSW_M
        self.ix = self.hnswlib.Index(space="ip", dim=X.shape[1])
        self.ix.init_index(max_elements=max(capacity, X.shape[0]), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M,
                           random_seed=100)
        self.add(X, np.arange(X.shape[0]) if ids is None else ids)

    def add(self, X, ids):
        self.ix.add_items(X, ids, num_threads=self.threads)

    def set_ef(self, ef):
        self.ix.set_ef(ef)

    def filters(self, mask, allowed):
        allowed_list = mask.tolist()  # a list lookup is the cheapest Python callback
        return {"lambda": lambda i: allowed_list[i]}

    def search(self, Q, kk, filt, threads):
        try:
            ids = self.ix.knn_query(Q, k=kk, num_threads=threads, filter=filt)[0].astype(np.int64)
        except RuntimeError:  # fewer than kk found ("Cannot return the results in a contiguous 2D array")
            ids = np.full((1 if Q.ndim == 1 else Q.shape[0], kk), -1, dtype=np.int64)
        return ids[0] if Q.ndim == 1 else ids


# key: (label, module it needs, adapter), in run order
LIBS = {"nndex_exact": ("nndex exact f32", "nndex", Nndex), "nndex_graph": ("nndex graph", "nndex", NndexGraph),
        "faiss_flat": ("faiss IndexFlatIP", "faiss", FaissFlat),
        "faiss_hnsw": ("faiss IndexHNSWFlat", "faiss", FaissHnsw), "hnswlib": ("hnswlib", "hnswlib", Hnswlib)}


# ---------------------------------------------------------------------------
# Worker (one process per library)
# ---------------------------------------------------------------------------

def single_queries(search, Q, gt, budget_s):
    """Latency of 1-D queries one at a time, in order, on 1 thread (one untimed warm-up), and their
    recall; stops after budget_s once 50 queries are done."""
    with thread_limit(1):
        search(Q[0])
        lat, got = [], []
        deadline = time.perf_counter_ns() + int(budget_s * 1e9)
        gc.disable()
        try:
            for q in Q:
                t0 = time.perf_counter_ns()
                ids = search(q)
                t1 = time.perf_counter_ns()
                lat.append(t1 - t0)
                got.append(np.pad(np.asarray(ids, dtype=np.int64), (0, gt.shape[1] - len(ids)), constant_values=-1))
                if t1 > deadline and len(lat) >= 50:
                    break
        finally:
            gc.enable()
    lat.sort()
    return {"queries": len(lat), "median_us": percentile(lat, 50) / 1e3, "p10_us": percentile(lat, 10) / 1e3,
            "p90_us": percentile(lat, 90) / 1e3, "recall": recall_at_k(np.array(got), gt[:len(got)])}


def batch_queries(search, B, gt, min_time_s):
    """Time per query of one batch call on 2 threads (median, p10-p90 of repeated calls), and recall."""
    with thread_limit(2):
        ids = search(B)
        t = time_call(lambda: search(B), min_time_s, 3, slow_call_s=1.0)
    per_q = {f"{q}_us": t[f"{q}_ns"] / B.shape[0] / 1e3 for q in ("median", "p10", "p90")}
    return {**per_q, "queries": int(B.shape[0]), "reps": t["reps"], "recall": recall_at_k(ids, gt[:B.shape[0]])}


def tune_ef(lib, Q, gt):
    """The HNSW peers: the smallest ef reaching TARGET recall unfiltered."""
    from peers import HNSW_EFS
    for ef in HNSW_EFS:
        lib.set_ef(ef)
        if recall_at_k(lib.search(Q, K, None, 2), gt) >= TARGET:
            break
    return ef


def worker(spec_path: Path, out_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    key, tmp, budget = spec["lib"], Path(spec["tmp"]), spec["single_budget_s"]
    X, Q = np.load(tmp / "base.npy"), np.load(tmp / "queries.npy")
    n, half, threads = X.shape[0], X.shape[0] // 2, spec["threads"]
    lib = LIBS[key][2](threads)
    res = {"lib": key, "label": LIBS[key][0], "threads": threads, "filtered": []}
    save = lambda: write_json(out_path, res)  # noqa: E731  (what was measured survives a crash)

    # 2. Filtered search on a fresh index of all rows (built first: section 3's state (a)).
    t0 = time.perf_counter()
    lib.new(X, capacity=n)
    res["build_s"] = time.perf_counter() - t0
    gt_all = np.load(tmp / "gt-1.0.npy")
    if hasattr(lib, "set_ef"):
        res["ef"] = tune_ef(lib, Q, gt_all)
    elif key == "nndex_graph":
        res["ef"] = lib.ix.ef  # its own, calibrated at build time
    for s in SELECTIVITIES:
        gt = np.load(tmp / f"gt-{s}.npy")
        kk = gt.shape[1]  # min(k, allowed rows)
        forms = {"none": None} if s == 1.0 else lib.filters(np.load(tmp / f"mask-{s}.npy"),
                                                             np.load(tmp / f"allowed-{s}.npy"))
        for form, filt in forms.items():
            row = {"selectivity": s, "filter": form, "k": kk,
                   "single": single_queries(lambda q: lib.search(q, kk, filt, 1), Q, gt, budget)}
            if key != "hnswlib":  # its filter is a Python callback per candidate: no threaded batch
                row["batch"] = batch_queries(lambda B: lib.search(B, kk, filt, 2), Q[:spec["batch_queries"]], gt,
                                             spec["batch_min_time_s"])
            res["filtered"].append(row)
            log(f"  {key} {s:.1%} {form}: {row['single']['median_us']:.0f} us, recall {row['single']['recall']:.3f}")
            save()
    fresh = {"state": "fresh", **lib.state(), **res["filtered"][0]["single"]} if key.startswith("nndex") else None
    del forms, filt

    # 1. Add throughput: the first half, then the second half in batches.
    lib.new(X[:half], np.arange(half), capacity=n)
    times = []
    for i in range(half, n, spec["batch"]):
        j = min(n, i + spec["batch"])
        t0 = time.perf_counter_ns()
        lib.add(X[i:j], np.arange(i, j))
        times.append((time.perf_counter_ns() - t0, j - i))
    rate = sorted(rows * 1e9 / t for t, rows in times)
    res["add"] = {"batch": spec["batch"], "batches": len(times), "rows_per_s": percentile(rate, 50),
                  "p10_rows_per_s": percentile(rate, 10), "p90_rows_per_s": percentile(rate, 90),
                  "overall_rows_per_s": (n - half) * 1e9 / sum(t for t, _ in times),
                  "slowest_batch_s": max(t for t, _ in times) / 1e9}
    save()

    # 3. Mutations (nndex): (b) the index grown above, (c) 20% of the ids removed, (d) compacted.
    if key.startswith("nndex"):
        def state(name, gt, change=None):
            t0 = time.perf_counter()
            returned = change() if change else None
            took, lib.ix1 = time.perf_counter() - t0, None
            return {"state": name, **({"call_s": took, "returned": returned} if change else {}), **lib.state(),
                    **single_queries(lambda q: lib.search(q, K, None, 1), Q, gt, budget)}
        removed, gt_removed = np.load(tmp / "removed.npy"), np.load(tmp / "gt-removed.npy")
        res["mutations"] = [fresh, state("grown", gt_all),
                            state(f"grown, {REMOVE_FRACTION:.0%} removed", gt_removed, lambda: lib.ix.remove(removed)),
                            state("removed, compacted", gt_removed, lib.ix.compact)]
        save()

    # 1. (end) The whole second half in one call, onto a fresh half index.
    lib = LIBS[key][2](threads)
    lib.new(X[:half], np.arange(half), capacity=n)
    t0 = time.perf_counter()
    lib.add(X[half:], np.arange(half, n))
    res["add"]["one_call_s"] = took = time.perf_counter() - t0
    res["add"]["one_call_rows_per_s"] = (n - half) / took
    save()


# ---------------------------------------------------------------------------
# Parent: data, exact filtered truth, workers, tables
# ---------------------------------------------------------------------------

def truth(X, Q, allowed):
    """Exact top-min(k, allowed) ids of each query among the allowed rows, float64."""
    kk = min(K, allowed.shape[0])
    out = np.empty((Q.shape[0], kk), dtype=np.int64)
    Xa, Qd = X[allowed].astype(np.float64), Q.astype(np.float64)
    for i in range(0, Q.shape[0], 128):
        S = Qd[i:i + 128] @ Xa.T
        part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1)
        out[i:i + 128] = allowed[np.take_along_axis(part, order, axis=1)]
    return out


def load(args):
    """(name, X, Q): the Gaussian mixture of common.clustered (queries from the same mixture), or a
    docs set of bench/datasets.py (its held-out queries)."""
    if args.dataset == "clustered":
        return f"clustered-{args.rows}x{args.dims}", clustered(args.rows, args.dims), clustered(args.queries,
                                                                                                args.dims, salt=1)
    data = load_dataset(Dataset(args.dataset, "docs", args.rows if args.rows_given else 0, 384, args.queries),
                        DATA_DIR)
    return sys.exit(f"{args.dataset}: {data}") if isinstance(data, str) else (args.dataset, *data)


def tables(entry):
    res = entry["results"]
    out = [f"### 1. Add throughput: {entry['half']:,} rows onto {entry['half']:,}, all threads", "",
            f"| library | batches of {entry['batch']}: rows/s median (p10-p90) | overall rows/s | slowest batch s "
            f"| one call s | one call rows/s | build of all {entry['n']:,} rows s |", "|" + " --- |" * 7]
    for r in (r for r in res.values() if "add" in r):
        a = r["add"]
        one = f"{a['one_call_s']:.3f} | {a['one_call_rows_per_s']:,.0f}" if "one_call_s" in a else "– | –"
        out.append(f"| {r['label']} | {a['rows_per_s']:,.0f} ({a['p10_rows_per_s']:,.0f}-{a['p90_rows_per_s']:,.0f}) "
                   f"| {a['overall_rows_per_s']:,.0f} | {a['slowest_batch_s']:.3f} | {one} | {r['build_s']:.2f} |")
    out += ["", "### 2. Filtered search on a fresh index: single query 1 thread, batch of "
            f"{entry['batch_queries']} on 2 threads (time per query)", "",
            "| library | allowed | filter | single µs median | p90 | recall | batch µs/query (p10-p90) | recall |",
            "|" + " --- |" * 8]
    for r in res.values():
        for f in r.get("filtered", []):
            s, b = f["single"], f.get("batch")
            lab = r["label"] + (f" (ef {r['ef']})" if "ef" in r else "")
            out.append(f"| {lab} | {f['selectivity']:.1%} | {f['filter']} | {s['median_us']:.0f} | {s['p90_us']:.0f} "
                       f"| {s['recall']:.3f} | " + (f"{b['median_us']:.1f} ({b['p10_us']:.1f}-{b['p90_us']:.1f}) | "
                                                    f"{b['recall']:.3f} |" if b else "– | – |"))
    out += ["", f"### 3. Mutations and search (single query, 1 thread, {entry['n']:,} rows)", "",
            "| library | state | rows | segments | removed rows | call ms | µs median | p90 | recall |",
            "|" + " --- |" * 9]
    for r in res.values():
        for m in r.get("mutations", []):
            seg = f"{m['segments']}" + ("" if m["segments"] == m["segments_loaded"] else
                                        f" (loaded: {m['segments_loaded']})")
            call = f"{1e3 * m['call_s']:.2f}" if "call_s" in m else "–"
            out.append(f"| {r['label']} | {m['state']} | {m['rows']:,} | {seg} | {m['removed_rows']:,} | {call} "
                       f"| {m['median_us']:.0f} | {m['p90_us']:.0f} | {m['recall']:.3f} |")
    notes = [f"{r['label']}: {r['note']}" for r in res.values() if r.get("note")]
    return "\n".join(out + ([""] + [f"- {n}" for n in notes] if notes else []) + [""])


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="clustered", help="clustered (synthetic) or docs-60k / docs-250k "
                    "(bench/data, from bench/datasets.py)")
    ap.add_argument("--rows", type=int, help="rows (clustered: default 200000; docs: at most this many)")
    ap.add_argument("--dims", type=int, default=384, help="clustered only")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1000, help="rows per add() call")
    ap.add_argument("--batch-queries", type=int, default=500, help="queries in a timed batch")
    ap.add_argument("--single-budget", type=float, default=2.0, help="seconds of single queries per cell")
    ap.add_argument("--batch-min-time", type=float, default=0.3, help="seconds of batch repeats per cell")
    ap.add_argument("--libs", help=f"comma-separated subset of: {', '.join(LIBS)}")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    ap.add_argument("--worker", nargs=2, type=Path, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    global np
    import numpy as np
    if args.worker:
        worker(*args.worker)
        return 0
    keys = args.libs.split(",") if args.libs else list(LIBS)
    if set(keys) - set(LIBS):
        ap.error(f"unknown libraries: {', '.join(sorted(set(keys) - set(LIBS)))}")
    sys.stdout.reconfigure(line_buffering=True)  # tables and notes interleave with the workers' logs
    args.rows_given, args.rows = args.rows is not None, args.rows or 200_000
    from peers import library_versions
    try:
        import faiss  # noqa: F401  (loaded, so that blas_libraries sees its OpenBLAS)
    except ImportError:
        pass
    name, X, Q = load(args)
    n, half = X.shape[0], X.shape[0] // 2
    rng, t0 = np.random.default_rng(20241203), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nndex-mut-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "base.npy", X)
        np.save(tmp / "queries.npy", Q)
        for s in SELECTIVITIES:  # random allowed subsets (sorted ids, masks by id) and their exact truth
            allowed = np.arange(n) if s == 1.0 else np.sort(rng.choice(n, max(1, round(s * n)), replace=False))
            np.save(tmp / f"allowed-{s}.npy", allowed)
            np.save(tmp / f"mask-{s}.npy", np.isin(np.arange(n), allowed))
            np.save(tmp / f"gt-{s}.npy", truth(X, Q, allowed))
        removed = np.sort(rng.choice(n, int(REMOVE_FRACTION * n), replace=False))
        np.save(tmp / "removed.npy", removed)
        np.save(tmp / "gt-removed.npy", truth(X, Q, np.setdiff1d(np.arange(n), removed)))
        del X
        log(f"[{name}] {n}x{Q.shape[1]}, {Q.shape[0]} queries; data and truth in {time.perf_counter() - t0:.1f} s")
        model = cpu_model()
        entry = {"dataset": name, "n": n, "d": int(Q.shape[1]), "nq": int(Q.shape[0]), "half": half,
                 "batch": args.batch, "batch_queries": min(args.batch_queries, Q.shape[0]), "results": {},
                 "skipped": {}}
        versions = {k: v for k, v in library_versions().items() if k in ("nndex", "numpy", "faiss-cpu", "hnswlib")}
        head = {"cpu": model, "cpus": usable_cpus(), "versions": versions, "blas": blas_libraries(),
                "removed_env": removed_env(), "load_before": load_average()}
        blas = "; ".join(f"{b.get('internal_api')} {b.get('version')} kernel {b.get('architecture')}"
                         for b in head["blas"] if b.get("user_api") == "blas")
        print(f"## Mutable indexes: nndex vs faiss and hnswlib, {name} ({n:,} x {Q.shape[1]}, {Q.shape[0]:,} "
              f"queries)\n\nCPU: {model}, {usable_cpus()} usable CPUs. Versions: "
              + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + f". OpenBLAS: {blas}"
              + (f"; removed from the environment: {head['removed_env']}" if head["removed_env"] else "") + "\n")
        for key in keys:
            try:
                __import__(LIBS[key][1])
            except ImportError as exc:
                entry["skipped"][key] = f"not installed ({exc})"
                print(f"{LIBS[key][0]}: skipped, not installed ({exc})\n")
                continue
            spec = {"lib": key, "tmp": str(tmp), "threads": usable_cpus(), "batch": args.batch,
                    "batch_queries": entry["batch_queries"], "single_budget_s": args.single_budget,
                    "batch_min_time_s": args.batch_min_time}
            lib = type("Lib", (), {"key": key, "label": LIBS[key][0]})
            entry["results"][key] = spawn_worker(Path(__file__), spec, tmp, lib, 7200)
    print(tables(entry))
    path = args.results / f"mutable_vs_peers_{cpu_kind(model)}.json"
    old = read_json(path) if path.exists() else {}
    datasets = {e["dataset"]: e for e in old.get("datasets", [])}
    datasets[name] = entry
    write_json(path, {**head, "load_after": load_average(), "datasets": list(datasets.values())})
    log(f"wrote {path} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
