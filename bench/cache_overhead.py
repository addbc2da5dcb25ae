"""What the default options (enable_cache=True) cost a search that misses the cache.

For each shape, one exact index with enable_cache=False and one with the defaults over the same
matrix; single queries and 32-query batches, every query distinct (so every default search is a
miss, with the cache filling and evicting), plus a repeated query (hits). Blocks of calls alternate
between the two indexes (the first call of a block is not counted); each cell is the median over
all counted calls, in microseconds.

The cache is filled to its bounds before each workload is timed (up to --fill-seconds), so the
misses measured are those of a cache in use. While it is still growing, each new entry of a large
batch also costs fresh pages (about 25 us for the 100 KB of a 32 x 768 batch), once per entry.

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


def _measure(fn_off, fn_on, seconds: float, block: int, min_calls: int = 7) -> tuple[float, float]:
    """Alternates blocks of `block` calls of the two functions (each call takes its next distinct
    query); the first call of each block is left out, so a block measures one index in steady use."""
    off: list[int] = []
    on: list[int] = []
    pairs = ((fn_off, off), (fn_on, on))
    deadline = time.perf_counter() + seconds
    while len(off) < min_calls or time.perf_counter() < deadline:
        pairs = pairs[::-1]  # neither index always runs second
        for fn, out in pairs:
            for i in range(block + 1 if block > 1 else 1):
                start = time.perf_counter_ns()
                fn()
                if i or block <= 1:
                    out.append(time.perf_counter_ns() - start)
    return _median_us(off), _median_us(on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=SHAPES)
    parser.add_argument("--seconds", type=float, default=0.4, help="time per cell and index")
    parser.add_argument("--threads", type=int, default=None, help="threads per index (default: every core)")
    parser.add_argument("--fill-seconds", type=float, default=1.0, help="time spent filling the cache first")
    parser.add_argument("--block", type=int, default=8, help="calls of one index in a row (1: alternate calls)")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"{'shape':>12} {'workload':>8} {'cache off':>10} {'defaults':>10} {'ratio':>6}")
    for shape in args.shapes.split(","):
        rows, dims = (int(x) for x in shape.split("x"))
        data = rng.standard_normal((rows, dims), dtype=np.float32)
        off = NNdex(data, enable_cache=False, threads=args.threads)
        on = NNdex(data, threads=args.threads)
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
            # Steady state: fill the cache to its bounds first (within a second), so the timed misses
            # replace entries as they would after a while of use; until then each new entry of a
            # large batch also pays for fresh pages (see the closing note of the module docstring).
            on.clear_cache()
            fill, deadline = make(on, "on"), time.perf_counter() + args.fill_seconds
            while time.perf_counter() < deadline:
                info = on.cache_info()
                if info.entries >= info.max_entries or info.bytes > info.max_bytes * 0.95:
                    break
                fill()
            t_off, t_on = _measure(make(off, "off"), make(on, "on"), args.seconds, args.block)
            print(f"{shape:>12} {workload:>8} {t_off:>10.1f} {t_on:>10.1f} {t_on / t_off:>6.2f}", flush=True)
        q = queries[0]
        on.search(q, k=K)
        t_off, t_hit = _measure(lambda: off.search(q, k=K), lambda: on.search(q, k=K), args.seconds / 2, args.block)
        print(f"{shape:>12} {'hit':>8} {t_off:>10.1f} {t_hit:>10.1f} {t_hit / t_off:>6.2f}", flush=True)
        del off, on, data


if __name__ == "__main__":
    main()
