"""Exact search results against the float64 oracle: shapes, k, single/batch, ties, threads."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from nndex import NNdex
from oracle_helpers import (
    assert_matches_oracle,
    assert_same_results,
    make_data,
    make_queries,
    oracle_topk,
)

# (rows, dims, number of batch queries). The first six are the original benchmark shapes.
SHAPES = [
    (1000, 48, 8),
    (1000, 768, 6),
    (10000, 48, 6),
    (10000, 768, 3),
    (50000, 128, 3),
    (100000, 2, 3),
    (1, 1, 4),
    (1, 3, 4),
    (7, 5, 8),
    (17, 15, 8),
    (33, 17, 8),
    (100, 1000, 6),
    (257, 1, 8),
]
SHAPE_IDS = [f"{r}x{d}" for r, d, _ in SHAPES]

# k as a function of the number of rows.
K_CASES = {
    "k1": lambda rows: 1,
    "k5": lambda rows: 5,
    "k10": lambda rows: 10,
    "krows": lambda rows: rows,
    "krows+5": lambda rows: rows + 5,
}


@functools.lru_cache(maxsize=None)
def cached_index(rows: int, dims: int, normalized: bool) -> NNdex:
    """One index per (shape, normalized) for the whole module: building is not what is tested here."""
    return NNdex(make_data(rows, dims, normalized), normalized=normalized)


@pytest.fixture(scope="module", autouse=True)
def _release_cached_indexes():
    yield
    cached_index.cache_clear()  # free the memory (and the objects) before interpreter shutdown


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("kname", list(K_CASES))
@pytest.mark.parametrize("rows,dims,nq", SHAPES, ids=SHAPE_IDS)
def test_single_query_matches_oracle(rows, dims, nq, kname, normalized):
    k = K_CASES[kname](rows)
    data = make_data(rows, dims, normalized)
    index = cached_index(rows, dims, normalized)
    queries = make_queries(2, dims, normalized)
    for q in queries:
        idx, sims = index.search(q, k=k)
        assert idx.shape == (min(k, rows),)
        assert_matches_oracle(idx, sims, data, q, k, normalized)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("kname", list(K_CASES))
@pytest.mark.parametrize("rows,dims,nq", SHAPES, ids=SHAPE_IDS)
def test_batch_query_matches_oracle(rows, dims, nq, kname, normalized):
    k = K_CASES[kname](rows)
    data = make_data(rows, dims, normalized)
    index = cached_index(rows, dims, normalized)
    queries = make_queries(nq, dims, normalized)
    idx, sims = index.search(queries, k=k)
    assert idx.shape == (nq, min(k, rows))
    assert_matches_oracle(idx, sims, data, queries, k, normalized)


BATCH_VS_SINGLE_SHAPES = [(1000, 48), (1000, 768), (10000, 48), (7, 5), (33, 17), (100, 1000), (1, 3)]


@pytest.mark.parametrize("k", [1, 10, 40], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("rows,dims", BATCH_VS_SINGLE_SHAPES, ids=[f"{r}x{d}" for r, d in BATCH_VS_SINGLE_SHAPES])
def test_batch_equals_per_row_single_search(rows, dims, normalized, k):
    index = cached_index(rows, dims, normalized)
    queries = make_queries(6, dims, normalized, salt=7)
    bidx, bsims = index.search(queries, k=k)
    assert bidx.shape == (6, min(k, rows))
    for r in range(queries.shape[0]):
        sidx, ssims = index.search(queries[r], k=k)
        assert sidx.shape == (min(k, rows),)
        assert_same_results((sidx, ssims), (bidx[r], bsims[r]), sim_tol=1e-6)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_two_d_query_with_one_row_keeps_two_dims(normalized):
    data = make_data(40, 6, normalized)
    index = NNdex(data, normalized=normalized)
    q = make_queries(1, 6, normalized)
    idx, sims = index.search(q, k=5)
    assert idx.shape == (1, 5) and sims.shape == (1, 5)
    single_idx, single_sims = index.search(q[0], k=5)
    assert single_idx.shape == (5,)
    assert_same_results((idx[0], sims[0]), (single_idx, single_sims))
    assert_matches_oracle(idx, sims, data, q, 5, normalized)


@pytest.mark.parametrize("k,expected", [(3, 3), (40, 40), (100, 40)], ids=["k3", "k=rows", "k>rows"])
def test_two_d_query_with_zero_rows(k, expected):
    index = NNdex(make_data(40, 6))
    idx, sims = index.search(np.empty((0, 6), dtype=np.float32), k=k)
    assert idx.shape == (0, expected) and sims.shape == (0, expected)
    assert idx.dtype == np.int64 and sims.dtype == np.float32


def test_default_k_is_ten():
    data = make_data(50, 8)
    index = NNdex(data)
    q = make_queries(1, 8)[0]
    idx, sims = index.search(q)
    assert idx.shape == (10,)
    assert_matches_oracle(idx, sims, data, q, 10, False)
    idx, sims = NNdex(make_data(4, 8)).search(q)
    assert idx.shape == (4,)


# ----------------------------------------------------------------------------------------------
# Ties
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("k,expected", [(1, 1), (10, 10), (50, 50), (60, 50)], ids=["k1", "k10", "k50", "k60"])
def test_identical_rows_come_back_in_index_order(normalized, k, expected, rng):
    row = rng.uniform(0.1, 1.0, size=12).astype(np.float32)
    data = np.tile(row, (50, 1))
    q = rng.uniform(-1.0, 1.0, size=12).astype(np.float32)
    index = NNdex(data, normalized=normalized)
    idx, sims = index.search(q, k=k)
    np.testing.assert_array_equal(idx, np.arange(expected))
    assert np.all(sims == sims[0]), sims
    bidx, bsims = index.search(np.stack([q, -q, q]), k=k)
    for r in range(3):
        np.testing.assert_array_equal(bidx[r], np.arange(expected))
        assert np.all(bsims[r] == bsims[r][0])


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_duplicates_scattered_among_random_rows(normalized):
    data = make_data(200, 16, normalized)
    v = data[150] * 4.0  # longer than every other row, so it also wins under raw dot product
    positions = [3, 77, 150, 199]
    data[positions] = v
    index = NNdex(data, normalized=normalized)
    idx, sims = index.search(v, k=6)
    np.testing.assert_array_equal(idx[:4], positions)
    assert np.all(sims[:4] == sims[0])
    assert_matches_oracle(idx, sims, data, v, 6, normalized)
    if not normalized:
        np.testing.assert_allclose(sims[:4], 1.0, atol=1e-5)


def test_scaled_copies_tie_under_cosine():
    # Power-of-two scalings normalise to bit-identical unit vectors, so the scores tie exactly.
    data = make_data(64, 10)
    v = data[5].copy()
    data[2] = 0.5 * v
    data[9] = 2.0 * v
    data[30] = 4.0 * v
    index = NNdex(data)
    idx, sims = index.search(v, k=4)
    np.testing.assert_array_equal(idx, [2, 5, 9, 30])
    assert np.all(sims == sims[0])
    np.testing.assert_allclose(sims, 1.0, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_ties_across_a_large_index_go_to_lower_indices(threads):
    # Copies spread over the whole index, so with several threads they land in different chunks.
    rows, dims = 20000, 24
    data = make_data(rows, dims)
    v = make_queries(1, dims, salt=3)[0] * 8.0
    positions = [0, 4999, 5000, 9999, 15001, 19999]
    data[positions] = v
    index = NNdex(data, threads=threads)
    idx, sims = index.search(v, k=4)
    np.testing.assert_array_equal(idx, positions[:4])
    assert np.all(sims == sims[0])

    same = np.tile(v, (rows, 1))
    index = NNdex(same, threads=threads)
    idx, sims = index.search(make_queries(3, dims, salt=4), k=10)
    for r in range(3):
        np.testing.assert_array_equal(idx[r], np.arange(10))
        assert np.all(sims[r] == sims[r][0])


def test_integer_valued_dot_products_tie_exactly():
    # Small integers give exact float32 dot products, so the oracle's order must be matched exactly.
    rng = np.random.default_rng(99)
    data = rng.integers(-2, 3, size=(500, 6)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(10, 6)).astype(np.float32)
    index = NNdex(data, normalized=True)
    for k in (1, 7, 64, 500):
        idx, sims = index.search(queries, k=k)
        exp_idx, exp_sims = oracle_topk(data, queries, k, True)
        np.testing.assert_array_equal(idx, exp_idx)
        np.testing.assert_array_equal(sims, exp_sims.astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Negative scores, k > rows, one-row index
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("k", [1, 10, 300], ids=["k1", "k10", "k=rows"])
def test_all_negative_scores(normalized, k):
    data = -np.abs(make_data(300, 20, normalized))
    queries = np.abs(make_queries(4, 20, normalized))
    data[:, 0] -= 0.01  # every score strictly negative
    queries[:, 0] += 0.01
    index = NNdex(data, normalized=normalized)
    idx, sims = index.search(queries, k=k)
    assert np.all(sims < 0), sims
    assert_matches_oracle(idx, sims, data, queries, k, normalized)
    idx1, sims1 = index.search(queries[0], k=k)
    assert np.all(sims1 < 0)
    assert_matches_oracle(idx1, sims1, data, queries[0], k, normalized)


@pytest.mark.parametrize("k", [8, 9, 100, 10**6], ids=["k=rows+1", "k=rows+2", "k100", "k1e6"])
def test_k_larger_than_rows_returns_every_row(k):
    data = make_data(7, 5)
    index = NNdex(data)
    q = make_queries(3, 5)
    idx, sims = index.search(q, k=k)
    assert idx.shape == (3, 7)
    for r in range(3):
        assert sorted(idx[r].tolist()) == list(range(7))
    assert_matches_oracle(idx, sims, data, q, k, False)
    idx, sims = index.search(q[1], k=k)
    assert idx.shape == (7,)
    assert_matches_oracle(idx, sims, data, q[1], k, False)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("as_1d", [True, False], ids=["1d-data", "2d-data"])
def test_one_row_index(normalized, as_1d):
    row = make_data(1, 9, normalized)
    data = row[0] if as_1d else row
    index = NNdex(data, normalized=normalized)
    assert index.rows == 1 and index.dims == 9
    queries = make_queries(3, 9, normalized)
    for k in (1, 5):
        idx, sims = index.search(queries[0], k=k)
        assert idx.shape == (1,)
        assert idx[0] == 0
        assert_matches_oracle(idx, sims, row, queries[0], k, normalized)
        idx, sims = index.search(queries, k=k)
        assert idx.shape == (3, 1)
        np.testing.assert_array_equal(idx, 0)
        assert_matches_oracle(idx, sims, row, queries, k, normalized)


def test_query_equal_to_a_row_finds_it_first():
    data = make_data(1000, 48)
    index = NNdex(data)
    for r in (0, 1, 499, 998, 999):
        idx, sims = index.search(data[r], k=3)
        assert idx[0] == r
        np.testing.assert_allclose(sims[0], 1.0, atol=1e-5)


def test_cosine_ignores_query_scale():
    data = make_data(500, 32)
    index = NNdex(data)
    q = make_queries(1, 32)[0]
    base = index.search(q, k=20)
    for scale in (2.0, 0.25, 1024.0):
        assert_same_results(index.search(q * np.float32(scale), k=20), base)


# ----------------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------------

THREAD_SHAPES = [(10000, 48, 6), (1000, 768, 6), (50000, 128, 2), (33, 17, 5), (100000, 2, 2)]


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("rows,dims,nq", THREAD_SHAPES, ids=[f"{r}x{d}" for r, d, _ in THREAD_SHAPES])
def test_thread_count_does_not_change_results(rows, dims, nq, normalized):
    data = make_data(rows, dims, normalized)
    queries = make_queries(nq, dims, normalized, salt=11)
    results = {}
    for threads in (1, 2, 3):
        index = NNdex(data, normalized=normalized, threads=threads)
        assert index.threads == threads
        results[threads] = (index.search(queries, k=10), index.search(queries[0], k=25))
    for threads in (2, 3):
        assert_same_results(results[threads][0], results[1][0])
        assert_same_results(results[threads][1], results[1][1])
    assert_matches_oracle(*results[1][0], data, queries, 10, normalized)


# ----------------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    HAVE_HYPOTHESIS = False

if HAVE_HYPOTHESIS:
    _SETTINGS = settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

    @_SETTINGS
    @given(
        rows=st.integers(1, 60),
        dims=st.integers(1, 40),
        nq=st.integers(0, 5),
        k=st.integers(1, 70),
        normalized=st.booleans(),
        single=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_property_random_shapes(rows, dims, nq, k, normalized, single, seed):
        rng = np.random.default_rng(seed)
        if normalized:
            data = (rng.uniform(-1, 1, size=(rows, dims)) / np.sqrt(dims)).astype(np.float32)
            queries = (rng.uniform(-1, 1, size=(nq, dims)) / np.sqrt(dims)).astype(np.float32)
        else:
            data = rng.standard_normal((rows, dims)).astype(np.float32)
            queries = rng.standard_normal((nq, dims)).astype(np.float32)
            data[~np.any(data != 0, axis=1), 0] = 1.0
            queries[~np.any(queries != 0, axis=1), 0] = 1.0
        index = NNdex(data, normalized=normalized)
        q = queries[0] if single and queries.shape[0] else queries
        idx, sims = index.search(q, k=k)
        assert_matches_oracle(idx, sims, data, q, k, normalized)

    @_SETTINGS
    @given(
        rows=st.integers(1, 30),
        dims=st.integers(1, 12),
        nq=st.integers(1, 4),
        k=st.integers(1, 35),
        normalized=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_property_small_integers_with_many_ties(rows, dims, nq, k, normalized, seed):
        rng = np.random.default_rng(seed)
        data = rng.integers(-3, 4, size=(rows, dims)).astype(np.float32)
        queries = rng.integers(-3, 4, size=(nq, dims)).astype(np.float32)
        if not normalized:
            data[~np.any(data != 0, axis=1), 0] = 1.0
            queries[~np.any(queries != 0, axis=1), 0] = 1.0
        index = NNdex(data, normalized=normalized)
        idx, sims = index.search(queries, k=k)
        assert_matches_oracle(idx, sims, data, queries, k, normalized)
        if normalized:
            # Integer dot products are exact in float32: the tie order must match exactly.
            exp_idx, exp_sims = oracle_topk(data, queries, k, True)
            np.testing.assert_array_equal(idx, exp_idx)
            np.testing.assert_array_equal(sims, exp_sims.astype(np.float32))

else:  # pragma: no cover

    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_property_random_shapes():
        pass
