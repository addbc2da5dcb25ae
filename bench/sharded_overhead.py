"""What sharding on Ray costs on one machine: ShardedIndex with 1, 2, 4 ... shards against one NNdex
over the same rows, in the same process and run.

    python bench/sharded_overhead.py [--rows N --dims D --shards 1,2,4 --batch B --queries Q]

Data: --rows x --dims clustered float32 rows (bench/common.py), cosine, exact float32, k = 10.
Measured per configuration (medians with p10-p90 over calls):
1. single-query latency: one query per call, queries cycled;
2. batch throughput: --batch queries per call (queries/s);
3. the merge alone (nndex.distributed._merge.merge_top_k) for 2 ... 256 shards' top-10 lists of a
   batch, to show how the driver's share grows with the shard count.
The ShardedIndex runs on a local Ray cluster of all usable CPUs; its shards split the cores between
them (ShardedIndex's default), and the baseline NNdex uses every core. Every sharded answer is checked
against the baseline (exact: identical ids). Prints markdown tables; writes
bench/results/sharded_overhead_<cpu>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann_vs_hnswlib import cpu_kind  # noqa: E402
from common import (RESULTS_DIR, clustered, cpu_model, load_average, log, package_version,  # noqa: E402
                    time_call, usable_cpus, write_json)

K = 10


def summary(stats: dict, per: int = 1) -> dict:
    """Milliseconds per call: median, p10, p90 (per query when ``per`` queries make a call)."""
    return {key: stats[f"{key}_ns"] / 1e6 / per for key in ("median", "p10", "p90")} | {"reps": stats["reps"]}


def time_searches(search, queries, batch: int, min_time_s: float) -> dict:
    counter = iter(range(10**9))

    def one() -> None:
        search(queries[next(counter) % len(queries)])

    single = summary(time_call(one, min_time_s, 50, 5.0))
    batch_stats = summary(time_call(lambda: search(queries[:batch]), min_time_s, 5, 20.0))
    return {"single_ms": single, "batch_ms": batch_stats, "batch_qps": batch / (batch_stats["median"] / 1e3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=2048)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per timed measurement")
    args = parser.parse_args()

    import numpy as np
    import ray

    from nndex import NNdex, __version__
    from nndex.distributed import ShardedIndex
    from nndex.distributed._merge import merge_top_k

    cpus = usable_cpus()
    model = cpu_model()
    log(f"{model}, {cpus} CPUs; nndex {__version__}, ray {ray.__version__}")
    data = clustered(args.rows, args.dims)
    queries = clustered(args.queries, args.dims, salt=1)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)

    one = NNdex(data, enable_cache=False)
    want = one.search(queries[: args.batch], K)[0]
    results = {"baseline": time_searches(lambda q: one.search(q, K), queries, args.batch, args.min_time)}
    log(f"NNdex: {results['baseline']}")
    for shards in [int(s) for s in args.shards.split(",")]:
        t0 = time.perf_counter()
        with ShardedIndex(data, shards=shards) as index:
            build_s = time.perf_counter() - t0
            got = index.search(queries[: args.batch], K)[0]
            if not np.array_equal(got, want):
                raise SystemExit(f"{shards} shards: results differ from one NNdex")
            entry = time_searches(lambda q: index.search(q, K), queries, args.batch, args.min_time)
            entry |= {"build_s": build_s, "threads_per_shard": index.shard_states()[0]["threads"]}
        results[f"{shards}_shards"] = entry
        log(f"{shards} shards: {entry}")
    ray.shutdown()

    merge = {}
    rng = np.random.default_rng(0)
    for shards in (2, 8, 32, 128, 256):
        parts = []
        for s in range(shards):
            sims = -np.sort(-rng.random((args.batch, K), dtype=np.float32), axis=1)
            parts.append((rng.integers(0, 1 << 40, (args.batch, K)), sims))
        stats = time_call(lambda: merge_top_k(parts, K, True), 1.0, 5, 5.0)
        merge[shards] = stats["median_ns"] / 1e3 / args.batch  # microseconds per query
    payload = {
        "cpu": model, "cpus": cpus, "load_average": load_average(), "nndex": __version__,
        "ray": package_version("ray"), "rows": args.rows, "dims": args.dims, "k": K, "batch": args.batch,
        "results": results, "merge_us_per_query": merge,
    }
    path = RESULTS_DIR / f"sharded_overhead_{cpu_kind(model)}.json"
    write_json(path, payload)

    print(f"\n{model}, {cpus} CPUs, {args.rows:,} x {args.dims} float32, exact, k = {K}\n")
    print("| index | single query ms (p10-p90) | batch of %d: ms per query (p10-p90) | queries/s | vs NNdex (batch) |"
          % args.batch)
    print("|---|---|---|---|---|")
    base_qps = results["baseline"]["batch_qps"]
    for name, r in results.items():
        s, b = r["single_ms"], r["batch_ms"]
        per_query = {key: b[key] / args.batch for key in ("median", "p10", "p90")}
        label = "NNdex (one process)" if name == "baseline" else f"ShardedIndex, {name.replace('_', ' ')}"
        print(f"| {label} | {s['median']:.3f} ({s['p10']:.3f}-{s['p90']:.3f}) | {per_query['median']:.4f} "
              f"({per_query['p10']:.4f}-{per_query['p90']:.4f}) | {r['batch_qps']:,.0f} | "
              f"{r['batch_qps'] / base_qps:.2f}x |")
    print(f"\nmerge_top_k, batch of {args.batch}, k = {K}: " +
          ", ".join(f"{s} shards {us:.2f} us/query" for s, us in merge.items()))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
