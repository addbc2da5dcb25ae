"""A short demo: `python -m nndex.demo` builds an index over 100,000 x 384 random embeddings and queries it."""

from __future__ import annotations

import argparse
import time

import numpy as np

from nndex import NNdex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    data = rng.standard_normal((args.rows, args.dims), dtype=np.float32)
    start = time.perf_counter()
    index = NNdex(data)
    print(f"built {index!r} in {(time.perf_counter() - start) * 1e3:.1f} ms")

    query = data[123] + 0.1 * rng.standard_normal(args.dims, dtype=np.float32)
    start = time.perf_counter()
    indices, sims = index.search(query, k=args.k)
    elapsed = time.perf_counter() - start
    print(f"\nsingle query (a noisy copy of row 123), top {args.k} in {elapsed * 1e6:.0f} us:")
    for i, s in zip(indices, sims):
        print(f"  row {i:>7}  similarity {s:.4f}")

    queries = rng.standard_normal((args.batch, args.dims), dtype=np.float32)
    start = time.perf_counter()
    batch_indices, batch_sims = index.search(queries, k=args.k)
    elapsed = time.perf_counter() - start
    print(f"\nbatch of {args.batch} queries in {elapsed * 1e3:.1f} ms ({args.batch / elapsed:,.0f} queries/s); first two:")
    for row in range(2):
        pairs = ", ".join(f"{i}:{s:.3f}" for i, s in zip(batch_indices[row], batch_sims[row]))
        print(f"  query {row}: {pairs}")


if __name__ == "__main__":
    main()
