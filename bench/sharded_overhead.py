"""What sharding on Ray costs on one machine: ShardedIndex with 1, 2, 4 ... shards against one NNdex
over the same rows, in the same process and run.

    python bench/sharded_overhead.py [--rows N --dims D --shards 1,2,3,4 --batch B --rounds R]

Data: --rows x --dims clustered float32 rows (bench/common.py), cosine, exact float32, k = 10.
Measured per configuration (medians with p10-p90 over calls):
1. single-query latency: one query per call, queries cycled, and the driver process's CPU time per
   query (what stays on the driver when the shards run on other machines);
2. batch throughput: --batch queries per call (queries/s);
both on the full data and on its first --overhead-rows rows, where the search itself takes
microseconds and what remains is the fan-out (Ray round trips, the driver's checks and merge);
configurations are timed in turn, --rounds times, so a slow spell of a shared machine hits them all;
3. the merge alone (nndex.distributed._merge.merge_top_k) for 2 ... 256 shards' top-10 lists of a
   batch, to show how the driver's share grows with the shard count.
The ShardedIndex runs on a local Ray cluster of all usable CPUs; its shards split the cores between
them (ShardedIndex's default), and the baseline NNdex uses every core. Every sharded answer is checked
against the baseline (exact: identical ids). Prints markdown tables; writes
bench/results/sharded_overhead_<cpu>.json.
"""

from __future__ import annotations

import argparse
import statistics
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

    single = time_call(one, min_time_s, 20, 5.0)["median_ns"] / 1e6
    # The driver's own CPU time per single query (its threads included): the part of the fan-out that
    # stays on the driver when the shards run on other machines.
    cpu0 = time.process_time()
    for _ in range(50):
        one()
    driver = (time.process_time() - cpu0) / 50 * 1e3
    return {"single": single, "driver_cpu": driver,
            "batch": time_call(lambda: search(queries[:batch]), min_time_s, 3, 20.0)["median_ns"] / 1e6}


def interleaved(searchers: dict, queries, batch: int, rounds: int, min_time_s: float) -> dict:
    """Each searcher timed once per round, in turn, so that a slow spell of a shared machine falls on
    all of them: per searcher the median over rounds and the range of the round medians (ms)."""
    samples = {name: {"single": [], "driver_cpu": [], "batch": []} for name in searchers}
    for _ in range(rounds):
        for name, search in searchers.items():
            r = time_searches(search, queries, batch, min_time_s)
            for key in ("single", "driver_cpu", "batch"):
                samples[name][key].append(r[key])
    out = {}
    for name, got in samples.items():
        out[name] = {f"{key}_ms": {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": v}
                     for key, v in got.items()}
        out[name]["batch_qps"] = batch / (out[name]["batch_ms"]["median"] / 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--shards", default="1,2,3,4")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=2048)
    parser.add_argument("--overhead-rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per timed measurement")
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

    shard_counts = [int(s) for s in args.shards.split(",")]
    tables = {}
    for label, rows in (("full", data), ("overhead", data[: args.overhead_rows])):
        # "overhead": an index so small that its own search is microseconds, so the time is the fan-out.
        one = NNdex(rows, enable_cache=False)
        want = one.search(queries[: args.batch], K)[0]
        searchers = {"baseline": lambda q, one=one: one.search(q, K)}
        indexes = []
        for shards in shard_counts:
            index = ShardedIndex(rows, shards=shards, enable_cache=False)  # as the baseline: no result cache
            if not np.array_equal(index.search(queries[: args.batch], K)[0], want):
                raise SystemExit(f"{shards} shards: results differ from one NNdex")
            indexes.append(index)
            searchers[f"{shards}_shards"] = lambda q, index=index: index.search(q, K)
        tables[label] = interleaved(searchers, queries, args.batch, args.rounds, args.min_time)
        tables[label]["rows"] = len(rows)
        log(f"{label}: {tables[label]}")
        for index in indexes:
            index.close()
    ray.shutdown()

    merge = {}
    rng = np.random.default_rng(0)
    for shards in (2, 8, 32, 128, 256):
        parts = []
        for s in range(shards):
            sims = -np.sort(-rng.random((args.batch, K), dtype=np.float32), axis=1)
            parts.append((rng.integers(0, args.rows, (args.batch, K)), sims))  # ids as a search returns them
        stats = time_call(lambda: merge_top_k(parts, K, True), 1.0, 5, 5.0)
        merge[shards] = stats["median_ns"] / 1e3 / args.batch  # microseconds per query
    payload = {
        "cpu": model, "cpus": cpus, "load_average": load_average(), "nndex": __version__,
        "ray": package_version("ray"), "rows": args.rows, "dims": args.dims, "k": K, "batch": args.batch,
        "results": tables, "merge_us_per_query": merge,
    }
    path = RESULTS_DIR / f"sharded_overhead_{cpu_kind(model)}.json"
    write_json(path, payload)

    for label, table in tables.items():
        print(f"\n{model}, {cpus} CPUs, {table['rows']:,} x {args.dims} float32, exact, k = {K}; medians of "
              f"{args.rounds} interleaved rounds (range of the rounds)\n")
        print(f"| index | single query, ms | driver CPU, ms a query | batch of {args.batch}, ms | queries/s (batch) |"
              " vs NNdex (batch) |")
        print("|---|---|---|---|---|---|")
        base = table["baseline"]["batch_qps"]
        for name, r in table.items():
            if name == "rows":
                continue
            s1, b, c = r["single_ms"], r["batch_ms"], r["driver_cpu_ms"]
            who = "NNdex" if name == "baseline" else f"ShardedIndex, {name.split('_')[0]} shard(s)"
            print(f"| {who} | {s1['median']:.3f} ({s1['min']:.3f}-{s1['max']:.3f}) | {c['median']:.3f} | {b['median']:.1f} "
                  f"({b['min']:.1f}-{b['max']:.1f}) | {r['batch_qps']:,.0f} | {r['batch_qps'] / base:.2f}x |")
    print(f"\nmerge_top_k, batch of {args.batch}, k = {K}: " +
          ", ".join(f"{s} shards {us:.2f} us/query" for s, us in merge.items()))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
