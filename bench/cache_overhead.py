"""What the default options (enable_cache=True) cost a search that misses the cache.

For each shape, one exact index with enable_cache=False and one with the defaults over the same
matrix; single queries and 32-query batches, every query distinct (so every default search is a
miss, with the cache full and evicting), plus a repeated query (hits). Rounds alternate between
the two indexes; each cell is the median over all rounds, in microseconds.

    python bench/cache_overhead.py [--shapes 1000x48,10000x768] [--seconds 0.4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nndex import NNdex

SHAPES = "1000x48,1000x768,10000x48,10000x768,50000x128,100000x2,1000000x128"
BATCH = 32
K = 10


def _median_us(samples: list[int]) -> float:
    return float(np.median(samples)) / 1e3


def _measure(fn_off, fn_on, seconds: float, min_calls: int = 7) -> tuple[float, float]:
    """Alternates calls of the two functions (each call takes its next distinct query)."""
    off: list[int] = []
    on: list[int] = []
    deadline = time.perf_counter() + seconds
    pairs = ((fn_off, off), (fn_on, on))
    while len(off) < min_calls or time.perf_counter() < deadline:
        pairs = pairs[::-1]  # neither index always runs second (on caches the other just warmed)
        for fn, out in pairs:
            start = time.perf_counter_ns()
            fn()
            out.append(time.perf_counter_ns() - start)
    return _median_us(off), _median_us(on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=SHAPES)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per cell and index")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"{'shape':>12} {'workload':>8} {'cache off':>10} {'defaults':>10} {'ratio':>6}")
    for shape in args.shapes.split(","):
        rows, dims = (int(x) for x in shape.split("x"))
        data = rng.standard_normal((rows, dims), dtype=np.float32)
        off = NNdex(data, enable_cache=False)
        on = NNdex(data)
        queries = rng.standard_normal((4096, dims), dtype=np.float32)
        batches = rng.standard_normal((64, BATCH, dims), dtype=np.float32)
        for ix in (off, on):  # warm both (pool threads, pages)
            for q in queries[:20]:
                ix.search(q, k=K)
        on.clear_cache()
        counters = {"off": 0, "on": 0}

        def single(ix, name):
            def call():
                i = counters[name] = counters[name] + 1
                ix.search(queries[i % len(queries)], k=K)

            return call

        def batch(ix, name):
            def call():
                i = counters[name] = counters[name] + 1
                b = batches[i % len(batches)]
                b[0, 0] = i  # distinct from every earlier batch, however many calls run
                ix.search(b, k=K)

            return call

        np.testing.assert_array_equal(off.search(queries[-1], k=K)[0], on.search(queries[-1], k=K)[0])
        for workload, make in (("single", single), ("batch32", batch)):
            counters.update(off=0, on=0)
            t_off, t_on = _measure(make(off, "off"), make(on, "on"), args.seconds)
            print(f"{shape:>12} {workload:>8} {t_off:>10.1f} {t_on:>10.1f} {t_on / t_off:>6.2f}", flush=True)
        q = queries[0]
        on.search(q, k=K)
        t_off, t_hit = _measure(lambda: off.search(q, k=K), lambda: on.search(q, k=K), args.seconds / 2)
        print(f"{shape:>12} {'hit':>8} {t_off:>10.1f} {t_hit:>10.1f} {t_hit / t_off:>6.2f}", flush=True)
        del off, on, data


if __name__ == "__main__":
    main()
