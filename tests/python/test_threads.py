"""Concurrent use from Python threads: one index, many searching threads, GIL released."""

from __future__ import annotations

import threading
import time

import pytest

from nndex import NNdex
from oracle_helpers import assert_matches_oracle, assert_same_results, make_data, make_queries

N_THREADS = 8
SEARCHES_PER_THREAD = 20


def _plan(thread_no: int, n_queries: int):
    """A deterministic mix of single and batch searches with varying k for one thread."""
    plan = []
    for j in range(SEARCHES_PER_THREAD):
        seed = thread_no * SEARCHES_PER_THREAD + j
        k = 1 + (seed * 7) % 40
        if (thread_no + j) % 3 == 0:
            plan.append(("single", seed % n_queries, None, k))
        else:
            start = (seed * 5) % (n_queries - 1)
            stop = min(n_queries, start + 1 + seed % 16)
            plan.append(("batch", start, stop, k))
    return plan


def _run(index, queries, step):
    kind, a, b, k = step
    if kind == "single":
        return index.search(queries[a], k=k)
    return index.search(queries[a:b], k=k)


def _run_concurrently(n_threads, target):
    """Runs target(thread_no) in n_threads threads started together; re-raises the first error."""
    barrier = threading.Barrier(n_threads)
    errors = []

    def wrapper(t):
        try:
            barrier.wait(timeout=60)
            target(t)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=wrapper, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a search thread did not finish"
    if errors:
        raise errors[0]


CONFIGS = [
    (5000, 64, False, None),
    (5000, 64, False, 1),
    (5000, 64, True, 2),
    (2000, 300, False, 3),
    (40000, 8, True, None),
]


@pytest.mark.parametrize(
    "rows,dims,normalized,threads", CONFIGS, ids=[f"{r}x{d}-{'dot' if n else 'cos'}-t{t}" for r, d, n, t in CONFIGS]
)
def test_concurrent_searches_match_serial_results(rows, dims, normalized, threads):
    data = make_data(rows, dims, normalized)
    queries = make_queries(64, dims, normalized, salt=21)
    index = NNdex(data, normalized=normalized, threads=threads)
    plans = [_plan(t, queries.shape[0]) for t in range(N_THREADS)]
    serial = [[_run(index, queries, step) for step in plan] for plan in plans]
    # The serial results are themselves right.
    kind, a, b, k = plans[0][1]
    assert_matches_oracle(*serial[0][1], data, queries[a] if kind == "single" else queries[a:b], k, normalized)

    results = [[None] * SEARCHES_PER_THREAD for _ in range(N_THREADS)]

    def work(t):
        for j, step in enumerate(plans[t]):
            results[t][j] = _run(index, queries, step)

    _run_concurrently(N_THREADS, work)
    for t in range(N_THREADS):
        for j in range(SEARCHES_PER_THREAD):
            assert results[t][j] is not None, (t, j)
            assert_same_results(results[t][j], serial[t][j])


def test_concurrent_searches_on_different_indexes():
    datasets = [make_data(3000, d) for d in (16, 40, 97)]
    indexes = [NNdex(d) for d in datasets]
    queries = [make_queries(12, d.shape[1], salt=22) for d in datasets]
    serial = [ix.search(q, k=9) for ix, q in zip(indexes, queries)]
    results = {}

    def work(t):
        i = t % 3
        for j in range(SEARCHES_PER_THREAD):
            results[(t, j)] = (i, indexes[i].search(queries[i], k=9))

    _run_concurrently(N_THREADS, work)
    assert len(results) == N_THREADS * SEARCHES_PER_THREAD
    for (t, j), (i, res) in results.items():
        assert_same_results(res, serial[i])


def test_index_built_in_one_thread_searched_in_others():
    data = make_data(4000, 32)
    box = {}
    builder = threading.Thread(target=lambda: box.setdefault("index", NNdex(data)))
    builder.start()
    builder.join(timeout=60)
    index = box["index"]
    q = make_queries(5, 32, salt=23)
    expected = index.search(q, k=11)
    out = {}

    def work(t):
        out[t] = index.search(q, k=11)

    _run_concurrently(4, work)
    for t in range(4):
        assert_same_results(out[t], expected)
    assert_matches_oracle(*expected, data, q, 11, False)


def test_gil_is_released_during_search():
    """While one thread runs a long search, the main thread keeps running Python code."""
    rows, dims = 50000, 256
    index = NNdex(make_data(rows, dims), threads=1)
    probe = make_queries(32, dims, salt=24)
    t0 = time.perf_counter()
    index.search(probe, k=10)
    per_query = max((time.perf_counter() - t0) / probe.shape[0], 1e-6)
    n = int(min(4096, max(64, 0.5 / per_query)))  # aim for about half a second
    queries = make_queries(n, dims, salt=25)

    done = threading.Event()
    box = {}

    def worker():
        start = time.perf_counter()
        box["result"] = index.search(queries, k=10)
        box["duration"] = time.perf_counter() - start
        done.set()

    thread = threading.Thread(target=worker, daemon=True)
    last = time.perf_counter()
    max_gap = 0.0
    thread.start()
    while not done.is_set():
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
    thread.join(timeout=60)
    duration = box["duration"]
    assert box["result"][0].shape == (n, 10)
    if duration < 0.15:
        pytest.skip(f"search took only {duration:.3f} s; too short to observe the GIL")
    assert max_gap < 0.5 * duration, (
        f"the main thread stalled for {max_gap:.3f} s during a {duration:.3f} s search: GIL held?"
    )


def test_helpers_sleep_while_the_searching_thread_waits_for_the_gil():
    """Helpers poll briefly after each call (a loop of searches hands over work without a futex
    wake-up); they must not keep polling while the searching thread waits for the GIL, or they would
    take a core from the Python thread that holds it. Counted in CPU time: a shared VM's steal and
    frequency changes move wall-clock rates by tens of percent (bench/gil_share.py measures those).
    While one Python thread spins holding the GIL for `window` seconds and another searches in a
    loop on a split (multi-threaded) path, everything but the spinning thread (the searches and the
    helpers' polls) uses well under half a core; a helper that polled until the next call would use
    a whole one."""
    index = NNdex(make_data(1000, 768), enable_cache=False)  # 3 MB: split over the threads where L2s allow
    queries = make_queries(64, 768, salt=31)
    window = 0.3
    stop = threading.Event()
    searches = [0]
    box = {}

    def searcher():
        i = 0
        while not stop.is_set():
            index.search(queries[i % 64], k=10)
            i += 1
        searches[0] = i

    def holds_the_gil():
        start_cpu = time.thread_time()
        end = time.perf_counter() + window
        while time.perf_counter() < end:
            pass
        box["cpu"] = time.thread_time() - start_cpu

    helper = threading.Thread(target=searcher)
    holder = threading.Thread(target=holds_the_gil)
    helper.start()
    index.search(queries[0], k=10)  # the pool is running before the window opens
    process_cpu = time.process_time()
    holder.start()
    holder.join()  # this thread sleeps meanwhile: it adds no CPU time
    process_cpu = time.process_time() - process_cpu
    stop.set()
    helper.join()
    assert searches[0] > 0
    others = (process_cpu - box["cpu"]) / window
    assert others < 0.5, (
        f"while a Python thread held the GIL, searches and helpers used {others:.0%} of a core "
        f"({searches[0]} searches): helpers poll while the caller waits?"
    )
