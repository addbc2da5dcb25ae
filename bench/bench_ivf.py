"""Approximate search (IVF) against exact nndex and faiss IndexIVFFlat, at equal recall@10.

    python bench/bench_ivf.py [--quick] [--shapes 100000x128,1000000x128,200000x768] [--json out.json]

For each clustered data set (a Gaussian mixture of 300 centres, unit-normalised): builds nndex exact,
nndex approx (defaults: nlist ~ 2 sqrt(n), nprobe calibrated for recall@10 >= 0.95) and faiss
IndexIVFFlat (inner product, nlist = 4 sqrt(n), trained on 40 x nlist sampled rows), measures
recall@10 against exact search on held-out queries, and the median latency of single queries and
batches of 128. faiss's nprobe is swept until its recall reaches nndex's (so rows compare equal
recall). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for this process (see DEVELOPERS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import prepare_environment  # noqa: E402

prepare_environment(Path(__file__))

import numpy as np  # noqa: E402

from _timing import measure  # noqa: E402


def clustered(n: int, d: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((300, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.7, 1.3, 300).astype(np.float32)
    labels = rng.integers(0, 300, n + queries)
    x = centres[labels] + spread[labels, None] * rng.standard_normal((n + queries, d), dtype=np.float32) / math.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) / truth.shape[1] for a, b in zip(found, truth)]))


def median_ms(fn, quick: bool) -> tuple[float, float, float]:
    stats = measure(fn, min_time_s=0.3 if quick else 1.0, min_reps=5, slow_call_s=2.0)
    return stats["median_ns"] / 1e6, stats["p10_ns"] / 1e6, stats["p90_ns"] / 1e6


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_shape(n: int, d: int, quick: bool) -> dict:
    import faiss

    from nndex import NNdex

    data, queries = clustered(n, d, 1000)
    q1, q128 = queries[0], queries[:128]
    exact, exact_build = timed(lambda: NNdex(data, normalized=True, enable_cache=False))
    truth = exact.search(queries, 10)[0]
    approx, approx_build = timed(lambda: NNdex(data, normalized=True, approx=True, enable_cache=False))
    row = {"shape": f"{n}x{d}", "nlist": approx.nlist, "nprobe": approx.nprobe}
    row["nndex_recall"] = recall_at_10(approx.search(queries, 10)[0], truth)
    row["build_s"] = {"nndex_exact": exact_build, "nndex_ivf": approx_build}
    row["single_ms"] = {"nndex_exact": median_ms(lambda: exact.search(q1, 10), quick),
                        "nndex_ivf": median_ms(lambda: approx.search(q1, 10), quick)}
    row["batch128_ms"] = {"nndex_exact": median_ms(lambda: exact.search(q128, 10), quick),
                          "nndex_ivf": median_ms(lambda: approx.search(q128, 10), quick)}

    nlist = int(4 * math.sqrt(n))
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(3)
    train = data[rng.choice(n, min(n, 40 * nlist), replace=False)]

    def build_faiss():
        ivf.train(train)
        ivf.add(data)

    _, faiss_build = timed(build_faiss)
    row["build_s"]["faiss_ivfflat"] = faiss_build
    row["faiss_nlist"] = nlist
    for nprobe in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256):
        ivf.nprobe = nprobe
        got = ivf.search(queries, 10)[1]
        rec = recall_at_10(got, truth)
        if rec >= row["nndex_recall"] or nprobe >= nlist:
            break
    row["faiss_nprobe"] = nprobe
    row["faiss_recall"] = rec
    row["single_ms"]["faiss_ivfflat"] = median_ms(lambda: ivf.search(q1[None, :], 10), quick)
    row["batch128_ms"]["faiss_ivfflat"] = median_ms(lambda: ivf.search(q128, 10), quick)
    return row


def print_table(rows: list[dict], cpu: str) -> None:
    print(f"\nCPU: {cpu}; medians in ms (p10-p90); recall@10 vs exact on 1000 held-out queries\n")
    print("| shape | method | recall@10 | build s | single ms | batch-128 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        for key, name, rec in (("nndex_exact", "nndex exact", 1.0),
                               ("nndex_ivf", f"nndex IVF (nlist {r['nlist']}, nprobe {r['nprobe']})", r["nndex_recall"]),
                               ("faiss_ivfflat", f"faiss IVFFlat (nlist {r['faiss_nlist']}, nprobe {r['faiss_nprobe']})",
                                r["faiss_recall"])):
            s, b = r["single_ms"][key], r["batch128_ms"][key]
            print(f"| {r['shape']} | {name} | {rec:.3f} | {r['build_s'][key]:.2f} | {s[0]:.3f} ({s[1]:.3f}-{s[2]:.3f}) "
                  f"| {b[0]:.2f} ({b[1]:.2f}-{b[2]:.2f}) |")
        ex, iv, fa = (r["single_ms"][k][0] for k in ("nndex_exact", "nndex_ivf", "faiss_ivfflat"))
        print(f"| {r['shape']} | ratios | | | exact/IVF {ex / iv:.1f}x, faiss/IVF {fa / iv:.2f}x | "
              f"faiss/IVF {r['batch128_ms']['faiss_ivfflat'][0] / r['batch128_ms']['nndex_ivf'][0]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 x 128 only, shorter timing")
    parser.add_argument("--shapes", default="100000x128,1000000x128,200000x768")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    shapes = ["100000x128"] if args.quick else args.shapes.split(",")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    rows = []
    for shape in shapes:
        n, d = (int(v) for v in shape.split("x"))
        print(f"[bench_ivf] {shape} ...", file=sys.stderr, flush=True)
        rows.append(run_shape(n, d, args.quick))
    print_table(rows, cpu)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "threads": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
