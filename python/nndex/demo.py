"""A short demo: `python -m nndex.demo` builds an index over 100,000 x 384 random embeddings and queries it.

Each search is timed on its first call (cold: pages, threads and caches not yet warm) and as the
median of a few warm calls with distinct queries (so no result comes from the query cache), next
to numpy doing the same work: a matrix product with the normalised rows and argpartition.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Optional, Sequence

import numpy as np

from nndex import NNdex


def _timed(fn: Callable[[int], object], calls: int) -> tuple[float, float, object]:
    """Seconds of the first call fn(0), the median of the next `calls` calls fn(1..calls), and the
    first call's result."""
    start = time.perf_counter()
    first_result = fn(0)
    first = time.perf_counter() - start
    times = []
    for i in range(1, calls + 1):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return first, float(np.median(times)), first_result


def _numpy_topk(normed: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """numpy's exact top-k by cosine similarity: normalise, one matrix product, argpartition, sort."""
    q = np.atleast_2d(queries)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    scores = q @ normed.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def _report(name: str, first: float, warm: float, calls: int, per_call: int = 1) -> None:
    rate = f" ({per_call / warm:,.0f} queries/s)" if per_call > 1 else ""
    print(f"  {name:<7} first call {_us(first):>9}, then median {_us(warm):>9} over {calls} calls{rate}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="warm single-query calls timed (batches: a quarter)")
    args = parser.parse_args(argv)
    k = min(args.k, args.rows)

    rng = np.random.default_rng(42)
    data = rng.standard_normal((args.rows, args.dims), dtype=np.float32)
    start = time.perf_counter()
    index = NNdex(data)
    print(f"built {index!r} in {(time.perf_counter() - start) * 1e3:.1f} ms")
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)  # numpy's "index": the normalised rows

    # Single queries: noisy copies of row 123, a different one each call.
    single_calls = max(1, args.calls)
    noise = 0.1 * rng.standard_normal((single_calls + 1, args.dims), dtype=np.float32)
    singles = data[123] + noise
    first, warm, (indices, sims) = _timed(lambda i: index.search(singles[i], k=k), single_calls)
    np_first, np_warm, np_ids = _timed(lambda i: _numpy_topk(normed, singles[i], k), single_calls)
    print(f"\nsingle query (a noisy copy of row 123), top {k}:")
    for i, s in zip(indices, sims):
        print(f"  row {i:>7}  similarity {s:.4f}")
    _report("nndex", first, warm, single_calls)
    _report("numpy", np_first, np_warm, single_calls)
    print(f"  same top {k} as numpy: {'yes' if np.array_equal(np_ids[0], indices) else 'no (ties or rounding)'}")

    # Batches: distinct random queries each call.
    batch_calls = max(1, single_calls // 4)
    batches = rng.standard_normal((batch_calls + 1, args.batch, args.dims), dtype=np.float32)
    first, warm, (batch_indices, batch_sims) = _timed(lambda i: index.search(batches[i], k=k), batch_calls)
    np_first, np_warm, np_ids = _timed(lambda i: _numpy_topk(normed, batches[i], k), batch_calls)
    print(f"\nbatch of {args.batch} queries, top {k}; first two:")
    for row in range(min(2, args.batch)):
        pairs = ", ".join(f"{i}:{s:.3f}" for i, s in zip(batch_indices[row], batch_sims[row]))
        print(f"  query {row}: {pairs}")
    _report("nndex", first, warm, batch_calls, args.batch)
    _report("numpy", np_first, np_warm, batch_calls, args.batch)
    same = float(np.mean(np_ids == batch_indices))
    detail = "" if same == 1.0 else " (the rest: ties or float rounding)"
    print(f"  same top {k} as numpy: {same:.1%} of ranks{detail}")


if __name__ == "__main__":
    main()
