"""Oracle and data helpers shared by the nndex Python tests (imported by conftest and tests).

The oracle recomputes every answer in float64 with plain numpy:

* the data and the queries are first rounded to float32 (that is what the index stores and
  searches), then widened to float64;
* unless ``normalized=True`` every row and every query is scaled to unit L2 norm (cosine);
* scores are ``Q @ M.T``; the expected order sorts by descending score, ties by ascending row.

The library computes in float32, so its similarities may differ from the oracle by rounding
(well below 1e-6 for unit vectors); near-ties may therefore come back in another order or swap
across the k-th place. ``assert_matches_oracle`` tolerates exactly that and nothing more.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable

import numpy as np

# Absolute tolerance on a returned similarity versus the float64 oracle.
SIM_TOL = 1e-5
# Oracle scores closer than this count as a tie that float32 rounding may reorder.
TIE_TOL = 1e-6


# --------------------------------------------------------------------------------------------
# Data generation (deterministic: every data set is keyed by an explicit integer seed)
# --------------------------------------------------------------------------------------------


def stable_seed(*parts: int) -> int:
    """A seed derived from integers, stable across runs (unlike hash())."""
    seed = 0x5EED
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**63)
    return seed


@functools.lru_cache(maxsize=64)
def _cached_matrix(rows: int, dims: int, normalized: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if normalized:
        # Raw dot products: keep |score| <= 1 so that float32 rounding stays far below the
        # tolerances (uniform in [-1, 1] scaled by 1/sqrt(dims) bounds every dot product by 1).
        m = rng.uniform(-1.0, 1.0, size=(rows, dims)) / np.sqrt(dims)
    else:
        m = rng.standard_normal((rows, dims))
        # Never an all-zero row (probability zero anyway, but be explicit).
        zero = ~np.any(m != 0.0, axis=1)
        m[zero, 0] = 1.0
    out = np.ascontiguousarray(m, dtype=np.float32)
    out.setflags(write=False)
    return out


def make_matrix(rows: int, dims: int, normalized: bool = False, seed: int = 0) -> np.ndarray:
    """A fresh, writable, C-contiguous float32 matrix (rows x dims) for the given seed."""
    return _cached_matrix(int(rows), int(dims), bool(normalized), int(seed)).copy()


def make_data(rows: int, dims: int, normalized: bool = False) -> np.ndarray:
    return make_matrix(rows, dims, normalized, stable_seed(1, rows, dims, normalized))


def make_queries(n: int, dims: int, normalized: bool = False, salt: int = 0) -> np.ndarray:
    return make_matrix(n, dims, normalized, stable_seed(2, n, dims, normalized, salt))


# --------------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------------


def _as_f32_then_f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def oracle_scores(data, queries, normalized: bool) -> np.ndarray:
    """float64 scores, shape (n_queries, rows). 1-D data is one row; 1-D queries are one query."""
    m = _as_f32_then_f64(data)
    if m.ndim == 1:
        m = m[None, :]
    q = _as_f32_then_f64(queries)
    if q.ndim == 1:
        q = q[None, :]
    if not normalized:
        m = m / np.linalg.norm(m, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return q @ m.T


def oracle_order(score_row: np.ndarray) -> np.ndarray:
    """All row indices sorted by (-score, index)."""
    return np.lexsort((np.arange(score_row.shape[0]), -score_row))


def oracle_topk(data, queries, k: int, normalized: bool):
    """(indices int64, scores float64) exactly as the spec orders them, shape (n, min(k, rows))."""
    s = oracle_scores(data, queries, normalized)
    kk = min(k, s.shape[1])
    idx = np.stack([oracle_order(row)[:kk] for row in s]) if s.shape[0] else np.empty((0, kk), np.int64)
    sims = np.take_along_axis(s, idx, axis=1) if s.shape[0] else np.empty((0, kk))
    return idx.astype(np.int64), sims


def _check_row(ret_idx, ret_sims, score_row, kk, where, tie_tol, sim_tol):
    rows = score_row.shape[0]
    assert np.all(ret_idx >= 0) and np.all(ret_idx < rows), f"{where}: index out of range: {ret_idx}"
    assert np.unique(ret_idx).shape[0] == kk, f"{where}: duplicate indices returned: {ret_idx}"
    assert np.all(np.isfinite(ret_sims)), f"{where}: non-finite similarities: {ret_sims}"
    # The library's own similarities are sorted, and equal similarities go to the lower index.
    assert np.all(ret_sims[1:] <= ret_sims[:-1]), f"{where}: similarities not descending: {ret_sims}"
    same = ret_sims[1:] == ret_sims[:-1]
    assert np.all(ret_idx[1:][same] > ret_idx[:-1][same]), (
        f"{where}: equal similarities not ordered by ascending index: {ret_idx} / {ret_sims}"
    )

    scale = max(1.0, float(np.max(np.abs(score_row))))
    tie = tie_tol * scale

    order = oracle_order(score_row)
    exp_idx = order[:kk]
    exp_sims = score_row[exp_idx]
    np.testing.assert_allclose(
        ret_sims, exp_sims, atol=sim_tol * scale, rtol=0, err_msg=f"{where}: similarities vs oracle"
    )
    true = score_row[ret_idx]
    np.testing.assert_allclose(
        ret_sims, true, atol=sim_tol * scale, rtol=0,
        err_msg=f"{where}: returned similarity is not the returned row's score",
    )
    # Order: a later result may only beat an earlier one by a tie.
    bad = np.nonzero(true[1:] > true[:-1] + tie)[0]
    assert bad.size == 0, (
        f"{where}: order differs from the oracle beyond ties at positions {bad[:10]}; "
        f"returned {ret_idx[:20]}, oracle {exp_idx[:20]}"
    )
    # Membership: differences from the oracle's top-k only among ties with the k-th score.
    kth = exp_sims[-1]
    extra = np.setdiff1d(ret_idx, exp_idx)
    missing = np.setdiff1d(exp_idx, ret_idx)
    assert np.all(np.abs(score_row[extra] - kth) <= tie), (
        f"{where}: returned rows {extra[:10]} are not in the oracle top-{kk} (scores "
        f"{score_row[extra][:10]}, k-th {kth})"
    )
    assert np.all(np.abs(score_row[missing] - kth) <= tie), (
        f"{where}: oracle rows {missing[:10]} missing from the result (scores "
        f"{score_row[missing][:10]}, k-th {kth})"
    )


def assert_matches_oracle(idx, sims, data, queries, k, normalized, *, tie_tol=TIE_TOL, sim_tol=SIM_TOL):
    """Checks one search result against the float64 oracle (types, shape, values, order)."""
    m = np.asarray(data, dtype=np.float32)
    rows = 1 if m.ndim == 1 else m.shape[0]
    q = np.asarray(queries, dtype=np.float32)
    single = q.ndim == 1
    nq = 1 if single else q.shape[0]
    kk = min(int(k), rows)
    expected_shape = (kk,) if single else (nq, kk)

    assert isinstance(idx, np.ndarray), type(idx)
    assert isinstance(sims, np.ndarray), type(sims)
    assert idx.dtype == np.int64, idx.dtype
    assert sims.dtype == np.float32, sims.dtype
    assert idx.shape == expected_shape, (idx.shape, expected_shape)
    assert sims.shape == expected_shape, (sims.shape, expected_shape)
    if nq == 0:
        return

    scores = oracle_scores(m, q, normalized)
    idx2 = idx.reshape(nq, kk)
    sims2 = sims.reshape(nq, kk).astype(np.float64)
    for r in range(nq):
        _check_row(idx2[r], sims2[r], scores[r], kk, f"query {r}", tie_tol, sim_tol)


def assert_same_results(a, b, *, sim_tol=1e-6):
    """Two (indices, sims) results agree: same shapes/dtypes, equal indices, sims within sim_tol."""
    ia, sa = a
    ib, sb = b
    assert ia.shape == ib.shape and sa.shape == sb.shape, (ia.shape, ib.shape, sa.shape, sb.shape)
    assert ia.dtype == ib.dtype == np.int64
    assert sa.dtype == sb.dtype == np.float32
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(sa, sb, atol=sim_tol, rtol=0)


def gaussian_mixture(n: int, dims: int, centres: int, spread: float, seed: int) -> np.ndarray:
    """n points of a mixture of `centres` Gaussians around random unit centres, float32.

    Each point is centre + noise, the noise of norm about spread * (0.7..1.3, per centre); with
    spread=1 the noise is as large as the centre, so a point's cosine to its own centre is about
    0.7, nearest neighbours score about 0.6 and clusters overlap (not trivially separable).
    Cluster weights are uneven (gamma distributed) like real data.
    """
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dims))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    weights = rng.gamma(2.0, size=centres)
    weights /= weights.sum()
    labels = rng.choice(centres, size=n, p=weights)
    scale = spread * rng.uniform(0.7, 1.3, size=centres)
    x = c[labels] + scale[labels, None] * rng.standard_normal((n, dims)) / np.sqrt(dims)
    return np.ascontiguousarray(x, dtype=np.float32)


def run_in_threads(worker: Callable[[int], None], count: int) -> None:
    """Runs ``worker(i)`` for i in range(count), each in its own thread, and re-raises the first error
    one of them hit (a failed assert in a thread would otherwise only be printed)."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            worker(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
