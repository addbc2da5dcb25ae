"""nndex's approximate indexes against hnswlib (and usearch, faiss IVF / IVFPQ / RaBitQ) at recall@10 >= 0.95.

    python bench/ann_vs_hnswlib.py [--quick] [--datasets docs-60k,clustered-1M] [--peers nndex_graph,hnswlib]

For each dataset and library: the fastest swept setting that reaches recall@10 >= 0.95, and there

- single-query latency: 1-D queries one at a time, in order, the library limited to ONE thread;
- batch per-query time: one call with 500 queries, limited to TWO threads, divided by 500;
- build time on all threads, and memory: the worker's resident-set growth over the build (kept) and
  its peak during the build, both as a multiple of the raw float32 matrix (rows * dims * 4 bytes).

Datasets: docs-60k and docs-250k (real sentence embeddings, 384 dims, with held-out queries, cached
in bench/data/ by bench/datasets.py; skipped with a message when missing) and clustered-1M
(1,000,000 x 128 Gaussian mixture from common.clustered, 1,000 queries). Rows and queries are
L2-normalised float32; similarity is the inner product; k = 10; the ground truth is numpy's exact
top-10 (ann_suite.ground_truth). Recall is measured over all queries.

Libraries (peers.py; every nndex index with enable_cache=False and normalized=True):
nndex defaults (`NNdex(X, approx=True)`, no tuning: reported at its own recall even below 0.95),
nndex graph (`approx="graph"`, ef swept; "n/a" while nndex has none), nndex IVF (`approx="ivf"`,
or `approx=True` for an nndex without that spelling; nprobe swept), hnswlib (M=16,
ef_construction=200; ef swept), usearch (connectivity 16, expansion_add 200; expansion_search
swept), faiss IndexIVFFlat (nlist = 4 sqrt(n); nprobe swept), faiss IndexIVFPQFastScan (M = d/2
subquantizers of 4 bits) and IndexIVFRaBitQ (when the installed faiss has it), both behind
IndexRefineFlat, swept over k_factor x nprobe.

Method: each (dataset, library) runs in a fresh worker process (ann_suite's machinery). It builds
with every usable CPU (threadpoolctl limits every BLAS/OpenMP pool as well), then sweeps at 2
threads: recall over all queries, then the 500-query batch timed (median and p10/p90 of repeated
calls, _timing.measure). A sweep (each k_factor row of a two-parameter sweep) stops at recall 0.99,
when recall stops rising, or after a call slower than a limit. Then the library is switched to 1
thread (faiss omp_set_num_threads, hnswlib/usearch threads arguments; nndex, which fixes its thread
count when an index is made, saves and re-loads the index with threads=1) and every swept point gets
its single-query latencies (median, p10/p90 over the queries). The setting reported is the cheapest
reaching 0.95 (two-parameter sweeps: the fastest measured, separately for single queries and batches).

Prints markdown tables; writes bench/results/ann_vs_hnswlib_<cpu>.json and, per dataset,
ann_vs_hnswlib_<dataset>.png (recall against single latency and against batch per-query time: each
library's Pareto front over its swept settings).
--quick (subsets, short timings) writes *_quick.json / *_quick.png instead. A run merges into that
JSON: results of peers and datasets it did not run (same sizes) are kept, so `--peers nndex_graph`
re-measures one library without rebuilding the others.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BENCH_DIR, K, RESULTS_DIR, blas_libraries, clustered, cpu_model, load_average,  # noqa: E402
                    log, prepare_environment, read_json, recall_at_k, removed_env, settle, time_call, unit_rows,
                    usable_cpus, write_json)

DATA_DIR = BENCH_DIR / "data"
TARGET = 0.95
STOP_RECALL = 0.99
PEERS = ["nndex_default", "nndex_graph", "nndex_ivf", "hnswlib", "usearch_hnsw", "faiss_ivf",
         "faiss_ivfpq_refine", "faiss_rabitq"]
NNDEX_PEERS = ["nndex_default", "nndex_graph", "nndex_ivf"]
BASELINE = "hnswlib"


@dataclass
class Dataset:
    name: str
    kind: str      # docs (bench/data/<name>.npy + <name>-queries.npy) | clustered
    n: int         # rows (docs: at most this many; 0 = all)
    d: int
    nq: int


@dataclass
class Settings:
    quick: bool
    build_threads: int
    batch_threads: int = 2
    single_threads: int = 1
    batch_size: int = 500
    batch_min_time_s: float = 0.3
    batch_min_reps: int = 5
    single_queries: int = 1000
    single_budget_s: float = 0.8
    max_batch_s: float = 10.0      # stop a sweep after a recall call (all queries) slower than this
    worker_timeout_s: float = 3600


def datasets(quick: bool) -> list[Dataset]:
    if quick:  # small subsets: a development run of ~2 minutes
        return [Dataset("docs-60k", "docs", 10_000, 384, 500), Dataset("docs-250k", "docs", 10_000, 384, 500),
                Dataset("clustered-1M", "clustered", 30_000, 128, 500)]
    return [Dataset("docs-60k", "docs", 0, 384, 1000), Dataset("docs-250k", "docs", 0, 384, 1000),
            Dataset("clustered-1M", "clustered", 1_000_000, 128, 1000)]


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(True, usable_cpus(), batch_min_time_s=0.05, batch_min_reps=2, single_queries=100,
                        single_budget_s=0.1, max_batch_s=2.0, worker_timeout_s=300)
    return Settings(False, usable_cpus())


def load_dataset(ds: Dataset, data_dir: Path = DATA_DIR):
    """(X, Q) as normalised float32, or a string saying why the dataset is missing."""
    import numpy as np
    if ds.kind == "clustered":
        return clustered(ds.n, ds.d, salt=0), clustered(ds.nq, ds.d, salt=1)
    base, queries = data_dir / f"{ds.name}.npy", data_dir / f"{ds.name}-queries.npy"
    missing = [str(p) for p in (base, queries) if not p.exists()]
    if missing:
        return f"skipped: {', '.join(missing)} not found (bench/datasets.py caches it)"
    X = np.load(base, mmap_mode="r")
    X = unit_rows(np.array(X[:ds.n] if ds.n else X, dtype=np.float32))
    Q = unit_rows(np.array(np.load(queries, mmap_mode="r")[:ds.nq], dtype=np.float32))
    ds.n, ds.d, ds.nq = X.shape[0], X.shape[1], Q.shape[0]
    return X, Q


# ---------------------------------------------------------------------------
# Worker (one process per dataset and library)
# ---------------------------------------------------------------------------

def thread_limit(threads: int):
    """Every BLAS / OpenMP pool of the process (numpy's, faiss's OpenBLAS and OpenMP) at `threads`."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=threads)
    except ImportError:
        return nullcontext()


def label_of(param: str, value) -> str:
    if value is None:
        return "defaults"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{n.strip()}={v}" for n, v in zip(param.split(","), value))
    return f"{param}={value}"


def worker(spec_path: Path, out_path: Path) -> None:
    import numpy as np
    from ann_suite import measure_build, time_single
    from peers import Unsupported, ann_peer
    spec = json.loads(spec_path.read_text())
    cls = ann_peer(spec["peer"])
    X, Q, gt = (np.load(spec[k]) for k in ("base", "queries", "gt"))
    B = Q[:spec["batch_size"]]
    peer = cls()
    res = {"peer": cls.key, "label": cls.label, "version": cls.version(), "param": cls.param,
           "n": int(X.shape[0]), "d": int(X.shape[1]), "nq": int(Q.shape[0]), "batch_size": int(B.shape[0])}
    try:
        with thread_limit(spec["build_threads"]):
            res.update(measure_build(peer, X, spec["build_threads"]))
    except Unsupported as exc:
        res["na"] = f"n/a: {exc}"
        write_json(out_path, res)
        return
    write_json(out_path, res)

    # Sweep at the batch thread count: recall (all queries), batch time.
    sweep, rows = [], {}  # rows: recalls so far of each k_factor row (one row, None, for 1-D sweeps)
    with thread_limit(spec["batch_threads"]):
        peer.set_threads(spec["batch_threads"])
        for value in peer.sweep_values():
            row = value[0] if isinstance(value, tuple) else None
            if rows.get(row) == "stopped":
                continue
            peer.set(value)
            t0 = time.perf_counter()
            ids = peer.search(Q, K)
            first_s = time.perf_counter() - t0
            rec = recall_at_k(np.asarray(ids).reshape(Q.shape[0], K), gt)
            batch = time_call(lambda: peer.search(B, K), spec["batch_min_time_s"], spec["batch_min_reps"],
                              slow_call_s=max(1.0, spec["batch_min_time_s"]))
            if cls.spins:
                settle()
            per_q = {q: batch[f"{q}_ns"] / B.shape[0] / 1e3 for q in ("median", "p10", "p90")}
            sweep.append({"value": value, "label": label_of(cls.param, value), "recall": rec, "batch": batch,
                          "batch_us": per_q})
            log(f"  {cls.key} {sweep[-1]['label']}: recall {rec:.4f}, batch {per_q['median']:.1f} us/query")
            res["sweep"] = sweep
            write_json(out_path, res)
            seen = rows.setdefault(row, [])
            seen.append(rec)
            flat = len(seen) >= 3 and seen[-1] - seen[-3] < 0.002  # recall no longer rising
            if rec >= STOP_RECALL or first_s > spec["max_batch_s"] or (flat and rec < TARGET):
                rows[row] = "stopped"

    # The same points, one thread, one 1-D query at a time.
    with thread_limit(spec["single_threads"]):
        peer.set_threads(spec["single_threads"])
        for p in sweep:
            peer.set(p["value"])
            p["single"] = time_single(peer, Q, K, spec["single_queries"], spec["single_budget_s"])
            write_json(out_path, res)
    res["notes"] = list(getattr(peer, "notes", []))
    write_json(out_path, res)


# ---------------------------------------------------------------------------
# Parent: data, workers, summary
# ---------------------------------------------------------------------------

def cpu_kind(model: str) -> str:
    """A short file-name word for the CPU: epyc, xeon, ryzen, ... or the model's first word."""
    m = model.lower()
    for word in ("epyc", "xeon", "ryzen", "threadripper", "graviton", "neoverse", "ampere", "apple", "core"):
        if word in m:
            return word
    words = [w for w in re.findall(r"[a-z0-9]+", m) if w not in ("amd", "intel", "r", "tm", "cpu")]
    return words[0] if words else "cpu"


def best(res: dict) -> dict:
    """The point reaching TARGET for single queries and for batches: in a one-parameter sweep the
    cheapest setting (the first, robust to timing noise), in a two-parameter sweep the fastest
    measured. nndex defaults: its only point, whatever its recall."""
    pts = [p for p in res.get("sweep", []) if "single" in p]
    if res["peer"] == "nndex_default":
        return {"single": pts[0], "batch": pts[0]} if pts else {}
    ok = [p for p in pts if p["recall"] >= TARGET]
    if not ok:
        return {}
    if not isinstance(ok[0]["value"], list):
        return {"single": ok[0], "batch": ok[0]}
    return {"single": min(ok, key=lambda p: p["single"]["median_us"]),
            "batch": min(ok, key=lambda p: p["batch_us"]["median"])}


def summarise(res: dict) -> dict | None:
    b = best(res)
    if not b:
        return None
    mem = res["memory"]
    raw = mem["raw_bytes"]
    s, t = b["single"], b["batch"]
    return {"single_setting": s["label"], "single_recall": s["recall"], "single_us": s["single"]["median_us"],
            "single_p10_us": s["single"]["p10_us"], "single_p90_us": s["single"]["p90_us"],
            "batch_setting": t["label"], "batch_recall": t["recall"], "batch_us": t["batch_us"]["median"],
            "batch_p10_us": t["batch_us"]["p10"], "batch_p90_us": t["batch_us"]["p90"], "build_s": res["build_s"],
            "rss_growth_x": (mem["rss_after"] - mem["rss_before"]) / raw,
            "peak_x": None if mem["peak_rss"] is None else (mem["peak_rss"] - mem["rss_before"]) / raw}


def batch_of(entry: dict) -> int:
    return next((r["batch_size"] for r in entry["results"].values() if "batch_size" in r), 0)


def table(entry: dict) -> list[str]:
    ds, b = entry["dataset"], batch_of(entry)
    out = [f"### {ds['name']} ({ds['n']:,} x {ds['d']}, {ds['nq']:,} queries)", "",
           f"Fastest setting with recall@10 >= {TARGET} (nndex defaults: as built, whatever its recall). Times: "
           f"median (p10-p90); single queries on 1 thread; a batch of {b} on 2 threads, per query.", "",
           "| library | single: setting | recall | latency µs | batch: setting | recall | µs / query | build s "
           "| RSS growth | build peak |", "|" + " --- |" * 10]
    for key, res in entry["results"].items():
        sm = res.get("summary")
        if sm is None:
            why = res.get("na") or res.get("note") or ("no data" if not res.get("sweep") else
                                                         f"recall {TARGET} not reached")
            out.append(f"| {res['label']} | {why} |" + " |" * 8)
            continue
        low = " ⚠" if sm["single_recall"] < TARGET else ""
        peak = "?" if sm["peak_x"] is None else f"{sm['peak_x']:.2f}x"
        out.append(f"| {res['label']} | {sm['single_setting']} | {sm['single_recall']:.3f}{low} | "
                   f"{sm['single_us']:.0f} ({sm['single_p10_us']:.0f}-{sm['single_p90_us']:.0f}) | "
                   f"{sm['batch_setting']} | {sm['batch_recall']:.3f}{low} | "
                   f"{sm['batch_us']:.1f} ({sm['batch_p10_us']:.1f}-{sm['batch_p90_us']:.1f}) | "
                   f"{sm['build_s']:.1f} | {sm['rss_growth_x']:.2f}x | {peak} |")
    base = entry["results"].get(BASELINE, {}).get("summary")
    rows = [(k, entry["results"][k]) for k in NNDEX_PEERS if entry["results"].get(k, {}).get("summary")]
    if base and rows:
        out += ["", "nndex ÷ hnswlib (below 1: nndex faster / smaller):", "",
                "| nndex | single latency | batch per query | build | RSS growth | build peak |", "|" + " --- |" * 6]
        for _, res in rows:
            sm = res["summary"]
            r = [sm[f] / base[f] if sm[f] is not None and base[f] else None
                 for f in ("single_us", "batch_us", "build_s", "rss_growth_x", "peak_x")]
            out.append(f"| {res['label']} | " + " | ".join("?" if x is None else f"{x:.2f}" for x in r) + " |")
    notes = [f"{res['label']}: {n}" for res in entry["results"].values() for n in res.get("notes", [])]
    notes += [f"{r['label']}: {r['note']}" for r in entry["results"].values() if r.get("note") and r.get("summary")]
    return out + ([""] + [f"- {n}" for n in notes] if notes else []) + [""]


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(recall, time) points not beaten by a faster point with at least their recall."""
    front, top = [], -1.0
    for r, t in sorted(points, key=lambda x: (x[1], -x[0])):
        if r > top:
            front.append((r, t))
            top = r
    return sorted(front)


def plot(entry: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = (("single-query latency, 1 thread (µs)", lambda p: p["single"]["median_us"]),
              (f"batch of {batch_of(entry)}, 2 threads: time per query (µs)", lambda p: p["batch_us"]["median"]))
    for ax, (title, y) in zip(axes, panels):
        for res in entry["results"].values():
            pts = [(p["recall"], y(p)) for p in res.get("sweep", []) if "single" in p]
            if not pts:
                continue
            if res["peer"] == "nndex_default":
                ax.plot(*zip(*pts), "*", markersize=14, label=res["label"], zorder=5)
            else:
                ax.plot(*zip(*pareto(pts)), "o-", markersize=3, label=res["label"])
        ax.axvline(TARGET, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlim(0.8, 1.003)
        ax.set_xlabel("recall@10")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    ds = entry["dataset"]
    fig.suptitle(f"{ds['name']}: {ds['n']:,} x {ds['d']}, k=10, inner product", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(cfg: Settings, sets: list[Dataset], keys: list[str], results: Path, data_dir: Path = DATA_DIR) -> dict:
    import numpy as np
    from ann_suite import ground_truth, spawn_worker
    from peers import ann_peer, library_versions
    try:
        import faiss  # noqa: F401  (loaded, so that blas_libraries sees its OpenBLAS)
    except ImportError:
        pass
    results.mkdir(parents=True, exist_ok=True)
    model = cpu_model()
    suffix = "_quick" if cfg.quick else ""
    json_path = results / f"ann_vs_hnswlib_{cpu_kind(model)}{suffix}.json"
    earlier = {e["dataset"]["name"]: e for e in read_json(json_path)["datasets"]} if json_path.exists() else {}
    merged = dict(earlier)  # dataset name -> entry, this run's replacing the earlier ones
    out = {"cpu": model, "cpus": usable_cpus(), "settings": asdict(cfg), "target_recall": TARGET,
           "versions": library_versions(), "blas": blas_libraries(), "removed_env": removed_env(),
           "load_before": load_average(), "datasets": []}
    header = [f"## nndex vs hnswlib: recall@10 >= {TARGET}" + (" (--quick: small subsets)" if cfg.quick else ""), "",
              f"CPU: {model}, {usable_cpus()} usable CPUs; build on {cfg.build_threads} threads, batches on "
              f"{cfg.batch_threads}, single queries on {cfg.single_threads}.",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items() if v),
              "OpenBLAS: " + "; ".join(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture')}"
                                        for b in out["blas"] if b.get("user_api") == "blas") +
              (f"; removed from the environment: {out['removed_env']}" if out["removed_env"] else ""), ""]
    print("\n".join(header), flush=True)
    for ds in sets:
        t0 = time.perf_counter()
        data = load_dataset(ds, data_dir)
        entry = {"dataset": asdict(ds), "results": {}}
        if isinstance(data, str):
            entry["skipped"] = data
            merged.setdefault(ds.name, entry)
            log(f"[{ds.name}] {data}")
            print(f"### {ds.name}\n\n{data}\n", flush=True)
            continue
        X, Q = data
        entry["dataset"] = asdict(ds)
        gt = ground_truth(X, Q)
        log(f"[{ds.name}] {X.shape[0]}x{X.shape[1]}, {Q.shape[0]} queries; data and ground truth in "
            f"{time.perf_counter() - t0:.1f} s")
        with tempfile.TemporaryDirectory(prefix="nndex-hnsw-") as tmp:
            tmp = Path(tmp)
            for name, arr in (("base", X), ("queries", Q), ("gt", gt)):
                np.save(tmp / f"{name}.npy", arr)
            del X, data
            for key in keys:
                cls = ann_peer(key)
                why = cls.available()
                if why:
                    res = {"peer": key, "label": cls.label, "na": why if why.startswith("n/a") else f"n/a: {why}"}
                    log(f"[{ds.name}] {cls.label}: {res['na']}")
                else:
                    spec = {"peer": key, "base": str(tmp / "base.npy"), "queries": str(tmp / "queries.npy"),
                            "gt": str(tmp / "gt.npy"), **asdict(cfg)}
                    res = spawn_worker(Path(__file__), spec, tmp, cls, cfg.worker_timeout_s)
                    res["summary"] = summarise(res) if "build_s" in res else None
                    log(f"[{ds.name}] {cls.label}: build {res.get('build_s', float('nan')):.1f} s"
                        + (f"; {res['na']}" if res.get("na") else ""))
                entry["results"][key] = res
        old = earlier.get(ds.name, {})
        kept = [k for k in old.get("results", {}) if k not in entry["results"] and old["dataset"] == entry["dataset"]]
        if kept:
            log(f"[{ds.name}] kept from {json_path.name}: {', '.join(kept)}")
            entry["results"] = {k: entry["results"].get(k) or old["results"][k] for k in PEERS
                                if k in entry["results"] or k in kept}
        merged[ds.name] = entry
        print("\n".join(table(entry)), flush=True)
        if any(r.get("sweep") for r in entry["results"].values()):
            plot(entry, results / f"ann_vs_hnswlib_{ds.name}{suffix}.png")
    out["load_after"] = load_average()
    order = [d.name for d in datasets(False)]
    out["datasets"] = sorted(merged.values(), key=lambda e: order.index(e["dataset"]["name"]))
    write_json(json_path, out)
    return out


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small subsets and short timings (~2 min)")
    ap.add_argument("--datasets", help=f"comma-separated subset of: {', '.join(d.name for d in datasets(False))}")
    ap.add_argument("--peers", help=f"comma-separated subset of: {', '.join(PEERS)}")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON and PNGs go")
    ap.add_argument("--data", type=Path, default=DATA_DIR, help="where docs-*.npy are (default bench/data)")
    ap.add_argument("--worker", nargs=2, type=Path, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    sets = datasets(args.quick)
    wanted = args.datasets.split(",") if args.datasets else [d.name for d in sets]
    keys = args.peers.split(",") if args.peers else PEERS
    unknown = (set(wanted) - {d.name for d in sets}) | (set(keys) - set(PEERS))
    if unknown:
        ap.error(f"unknown datasets or peers: {', '.join(sorted(unknown))}")
    sets = [d for d in sets if d.name in wanted]
    t0 = time.perf_counter()
    run(settings(args.quick), sets, keys, args.results, args.data)
    log(f"ann_vs_hnswlib took {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
