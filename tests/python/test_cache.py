"""The query-result cache and the index (constructor) cache behind enable_cache=True."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

from nndex import CacheInfo, NNdex, _nndex
from nndex._cache import INDEX_CACHE, QUERY_CACHE_MAX_ROWS
from oracle_helpers import make_data, make_queries, run_in_threads

DATA = make_data(600, 16)
QUERIES = make_queries(5, 16, salt=3)


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    INDEX_CACHE.clear()
    yield
    INDEX_CACHE.clear()


def _identical(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------------------------
# Query results
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("approx", [False, True], ids=["exact", "ivf"])
def test_hits_return_identical_results(approx):
    options = {"approx": True, "nlist": 8, "nprobe": 2} if approx else {}
    cached = NNdex(DATA, **options)
    plain = NNdex(DATA, enable_cache=False, **options)
    for query in (QUERIES, QUERIES[0], QUERIES[:1], QUERIES.astype(np.float64), QUERIES.tolist()):
        first = cached.search(query, k=6)
        second = cached.search(query, k=6)
        _identical(first, second)
        _identical(first, plain.search(query, k=6))
    info = cached.cache_info()
    assert isinstance(info, CacheInfo)
    # The list is converted to the same float32 matrix as QUERIES, so it hits twice; the float64
    # batch (searched in float64 by the native side) has an entry of its own.
    assert (info.hits, info.misses, info.entries) == (6, 4, 4)
    assert info.bytes > 0 and info.max_entries == 1024 and info.max_bytes == 64 << 20


def test_key_covers_k_nprobe_dtype_and_shape():
    index = NNdex(DATA, approx=True, nlist=8, nprobe=2)
    index.search(QUERIES[0], k=5)
    index.search(QUERIES[0], k=6)
    index.search(QUERIES[0], k=5, nprobe=8)
    one_row = index.search(QUERIES[:1], k=5)
    index.search(QUERIES[:1].astype(np.float64), k=5)
    info = index.cache_info()
    assert (info.hits, info.misses, info.entries) == (0, 5, 5)
    assert one_row[0].shape == (1, 5)
    assert index.search(QUERIES[0], k=5)[0].shape == (5,)
    # A 1-D float64 query is searched as float32, so it shares the float32 entry.
    assert index.search(QUERIES[0].astype(np.float64), k=5)[0].shape == (5,)
    assert index.cache_info().hits == 2


def test_results_are_private_copies():
    index = NNdex(DATA)
    ids, sims = index.search(QUERIES, k=4)
    keep = ids.copy(), sims.copy()
    ids[:] = -1  # the caller owns (and may scribble on) what it got
    sims[:] = 0
    again = index.search(QUERIES, k=4)
    _identical(again, keep)
    assert again[0].flags.writeable and again[1].flags.writeable
    again[0][:] = 7
    _identical(index.search(QUERIES, k=4), keep)
    assert index.cache_info().hits == 2


def test_large_batches_are_not_cached():
    index = NNdex(DATA)
    big = make_queries(QUERY_CACHE_MAX_ROWS + 1, 16, salt=4)
    index.search(big, k=3)
    index.search(big, k=3)
    index.search(big[:QUERY_CACHE_MAX_ROWS], k=3)
    info = index.cache_info()
    assert (info.hits, info.misses, info.entries) == (0, 1, 1)


def test_failed_searches_are_not_cached():
    index = NNdex(DATA)
    bad = np.full(16, np.nan, dtype=np.float32)
    for _ in range(2):
        with pytest.raises(ValueError):
            index.search(bad, k=3)
    assert index.cache_info().entries == 0


def test_disabled_cache():
    index = NNdex(DATA, enable_cache=False)
    index.search(QUERIES, k=3)
    index.search(QUERIES, k=3)
    assert index.cache_info() == CacheInfo(False, 0, 0, 0, 0, 0, 0, False)
    index.clear_cache()  # a no-op


def test_clear_cache():
    index = NNdex(DATA)
    index.search(QUERIES, k=3)
    index.search(QUERIES, k=3)
    index.clear_cache()
    info = index.cache_info()
    assert (info.hits, info.misses, info.entries, info.bytes) == (0, 0, 0, 0)


def _native_cache(data, max_entries, max_bytes, colliding_hash=False):
    """A native query cache over a fresh exact index of `data` (what NNdex builds, with small bounds)."""
    native = NNdex(data, enable_cache=False)._index
    return _nndex.QueryCache(native, max_entries, max_bytes, QUERY_CACHE_MAX_ROWS, colliding_hash)


def _entry_bytes(dims, k):
    return dims * 4 + k * (8 + 4) + 256  # query, ids, similarities and the per-entry overhead


def test_lru_bounds_by_entries_and_bytes():
    data = make_data(50, 4)
    queries = make_queries(5, 4, salt=2)
    cache = _native_cache(data, max_entries=3, max_bytes=10_000)
    for q in queries[:3]:
        cache.search(q, 4)
    cache.search(queries[0], 4)  # a hit: queries[0] becomes the most recent
    cache.search(queries[3], 4)  # evicts queries[1], the least recent
    assert cache.stats() == (1, 4, 3, 3 * _entry_bytes(4, 4))
    cache.search(queries[1], 4)  # gone: a miss (which evicts queries[2])
    for q in (queries[0], queries[3], queries[1]):
        cache.search(q, 4)
    hits, misses, entries, size = cache.stats()
    assert (hits, misses, entries) == (4, 5, 3)

    per_entry = _entry_bytes(200, 4)
    small = _native_cache(make_data(50, 200), max_entries=100, max_bytes=2 * per_entry + 10)
    for q in make_queries(5, 200, salt=3):
        small.search(q, 4)
        assert small.stats()[3] <= 2 * per_entry + 10
    assert small.stats()[2:] == (2, 2 * per_entry)
    huge = _native_cache(make_data(50, 200), max_entries=10, max_bytes=per_entry - 1)
    huge.search(make_queries(1, 200)[0], 4)  # larger than the whole budget: not stored
    assert huge.stats()[2:] == (0, 0)
    assert (cache.max_entries, cache.max_bytes, cache.max_rows) == (3, 10_000, QUERY_CACHE_MAX_ROWS)


def test_keys_are_compared_not_just_hashed():
    """With every key hashing equally, different queries still get their own results."""
    cache = _native_cache(DATA, max_entries=64, max_bytes=1 << 20, colliding_hash=True)
    plain = NNdex(DATA, enable_cache=False)
    near = QUERIES.copy()
    near[1] = QUERIES[0]
    near[1, 15] = np.nextafter(QUERIES[0, 15], np.float32(2))  # differs from queries[0] in one bit
    for _ in range(2):
        for q in near:
            _identical(cache.search(q, 5), plain.search(q, k=5))
        _identical(cache.search_batch(near[:2], 5), plain.search(near[:2], k=5))
        _identical(cache.search(near[0], 6), plain.search(near[0], k=6))  # same bytes, other k
    hits, misses, entries, _ = cache.stats()
    assert (hits, misses, entries) == (len(near) + 2, len(near) + 2, len(near) + 2)


def test_strided_and_float64_batches_are_keyed_by_their_values():
    index = NNdex(DATA)
    plain = NNdex(DATA, enable_cache=False)
    wide = np.zeros((5, 32), np.float32)
    wide[:, ::2] = QUERIES
    strided = wide[:, ::2]  # the same values as QUERIES, read with a stride
    fortran = np.asfortranarray(QUERIES)
    for batch in (QUERIES, strided, fortran):
        _identical(index.search(batch, k=4), plain.search(QUERIES, k=4))
    assert (index.cache_info().hits, index.cache_info().misses) == (2, 1)
    as_f64 = QUERIES.astype(np.float64)
    _identical(index.search(as_f64, k=4), plain.search(as_f64, k=4))
    assert index.cache_info().misses == 2  # float64 bytes differ: an entry of their own


def test_default_searches_go_straight_to_the_native_cache():
    cached = NNdex(DATA)
    assert isinstance(cached._searcher, _nndex.QueryCache) and cached._searcher.index is cached._index
    plain = NNdex(DATA, enable_cache=False)
    assert plain._searcher is plain._index


def test_concurrent_searches_share_the_cache():
    index = NNdex(DATA, approx=True, nlist=8, nprobe=3)
    plain = NNdex(DATA, enable_cache=False, approx=True, nlist=8, nprobe=3)
    queries = make_queries(12, 16, salt=8)
    expected = [plain.search(q, k=5) for q in queries] + [plain.search(queries[:3], k=5)]
    barrier = threading.Barrier(6)

    def worker(seed):
        rng = np.random.default_rng(seed)
        barrier.wait()
        for _ in range(150):
            i = int(rng.integers(0, len(expected)))
            got = index.search(queries[:3] if i == len(queries) else queries[i], k=5)
            _identical(got, expected[i])
            got[0][:] = -1  # scribbling on results must not reach other threads

    run_in_threads(worker, 6)
    info = index.cache_info()
    assert info.hits + info.misses == 6 * 150
    assert info.entries == len(expected)
    assert info.hits >= 6 * 150 - 6 * len(expected)


def test_a_hit_is_much_faster_than_a_search():
    data = make_data(20_000, 64)
    index = NNdex(data, threads=1)
    q = make_queries(1, 64, salt=11)[0]
    index.search(q, k=10)

    def median(fn, n=30):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return sorted(times)[n // 2]

    hit = median(lambda: index.search(q, k=10))
    miss = median(lambda: (index.clear_cache(), index.search(q, k=10)))
    assert hit * 5 < miss, (hit, miss)


# ------------------------------------------------------------------------------------------------
# Index reuse
# ------------------------------------------------------------------------------------------------

APPROX = {"approx": True, "nlist": 8, "nprobe": 2}


def test_identical_approximate_builds_share_one_index():
    a = NNdex(DATA, **APPROX)
    b = NNdex(DATA.copy(), **APPROX)  # other buffer, same contents
    assert a.cache_info().reused_index is False
    assert b.cache_info().reused_index is True
    assert a._index is b._index
    _identical(a.search(QUERIES, k=5), b.search(QUERIES, k=5))
    c = NNdex(np.asfortranarray(DATA), **APPROX)  # other layout: built again, same results
    assert c._index is not a._index
    _identical(c.search(QUERIES, k=5), a.search(QUERIES, k=5))
    assert b.cache_info().hits == 0  # result caches stay per object


@pytest.mark.parametrize(
    "change",
    [
        {"nprobe": 3},
        {"nlist": 9},
        {"seed": 5},
        {"normalized": True},
        {"threads": 1},
        {"enable_cache": False},
    ],
    ids=lambda c: next(iter(c)),
)
def test_other_options_build_again(change):
    a = NNdex(DATA, **APPROX)
    b = NNdex(DATA, **{**APPROX, **change})
    assert b._index is not a._index
    assert b.cache_info().reused_index is False


def test_changed_contents_build_again():
    buf = DATA.copy()
    a = NNdex(buf, **APPROX)
    buf[599, 15] += 1.0  # in place, same address, same first value: still a different index
    b = NNdex(buf, **APPROX)
    assert b._index is not a._index
    c = NNdex(buf.astype(np.float64), **APPROX)
    assert c._index is not b._index


def test_exact_indexes_are_not_reused():
    """Hashing costs more than an exact build (see nndex._cache), so exact builds never look up."""
    a = NNdex(DATA)
    b = NNdex(DATA)
    assert a._index is not b._index
    assert len(INDEX_CACHE) == 0


def test_index_cache_is_weak_and_bounded():
    a = NNdex(DATA, **APPROX)
    assert len(INDEX_CACHE) == 1
    del a
    gc.collect()
    assert len(INDEX_CACHE) == 0
    keep = [NNdex(DATA, **{**APPROX, "seed": s}) for s in range(6)]
    assert len(INDEX_CACHE) == INDEX_CACHE.max_entries == 4
    assert NNdex(DATA, **{**APPROX, "seed": 5})._index is keep[5]._index  # recent: kept
    assert NNdex(DATA, **{**APPROX, "seed": 0})._index is not keep[0]._index  # evicted
