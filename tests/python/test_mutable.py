"""The mutable index from Python: ids=, add, remove, compact, filter= on exact and approximate indexes
of every storage, against a numpy oracle; the refused calls (each a ValueError that changes
nothing); files, pickles and the caches after changes; searches racing adds and removes; and a
hypothesis state machine running random sequences of all of it."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nndex import NNdex
from oracle_helpers import gaussian_mixture

K = 10
KINDS = [
    ("exact", "f32"), ("exact", "bf16"), ("exact", "int8"),
    ("graph", "f32"), ("graph", "int8"), ("ivf", "f32"), ("ivf", "int8"),
]


def _approx(kind: str):
    return False if kind == "exact" else kind


class Oracle:
    """The truth: live rows by id, searched exactly in float64."""

    def __init__(self, normalized: bool = False):
        self.rows: dict[int, np.ndarray] = {}
        self.normalized = normalized

    def add(self, data: np.ndarray, ids) -> None:
        for row, i in zip(np.atleast_2d(data), ids):
            self.rows[int(i)] = np.asarray(row, dtype=np.float64)

    def search(self, queries: np.ndarray, k: int, allowed=None):
        ids = np.array(sorted(i for i in self.rows if allowed is None or i in allowed), dtype=np.int64)
        if ids.size == 0:
            return ids.reshape(len(queries), 0), np.zeros((len(queries), 0))
        x = np.stack([self.rows[int(i)] for i in ids])
        q = np.atleast_2d(queries).astype(np.float64)
        if not self.normalized:
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        scores = q @ x.T
        order = np.lexsort((np.broadcast_to(ids, scores.shape), -scores), axis=1)[:, :k]
        return ids[order], np.take_along_axis(scores, order, axis=1)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    if truth.shape[1] == 0:
        return 1.0
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def _floor(kind: str, storage: str) -> float:
    return 0.9 if kind != "exact" else 1.0 if storage == "f32" else 0.98


@pytest.fixture(scope="module")
def mixture():
    data = gaussian_mixture(16000, 48, centres=100, spread=1.0, seed=7)
    return data[:15900], data[15900:]


@pytest.mark.parametrize("kind,storage", KINDS)
def test_filters_by_ids_and_by_mask(mixture, kind, storage):
    data, queries = mixture
    ids = np.arange(data.shape[0], dtype=np.int64) * 3 + 11
    index = NNdex(data, approx=_approx(kind), storage=storage, ids=ids, enable_cache=False)
    assert index.method == kind
    oracle = Oracle()
    oracle.add(data, ids)
    rng = np.random.default_rng(3)
    for fraction in (0.5, 0.1, 0.01, 0.001):
        allowed = ids[rng.random(ids.size) < fraction]
        allowed_set = set(allowed.tolist())
        truth, _ = oracle.search(queries, K, allowed_set)
        mask = np.zeros(ids.max() + 1, dtype=bool)
        mask[allowed] = True
        for flt in (allowed, mask, list(allowed_set), mask.tolist()):
            found, sims = index.search(queries, K, filter=flt)
            assert found.shape == (len(queries), min(K, allowed.size))
            assert set(found.ravel().tolist()) <= allowed_set
            assert _recall(found, truth) >= _floor(kind, storage), (kind, storage, fraction)
    # Fewer allowed rows than k: exactly those rows, on every kind of index.
    few = ids[[5, 600, 9000]]
    found, _ = index.search(queries[0], K, filter=few)
    assert sorted(found.tolist()) == sorted(few.tolist())
    found, _ = index.search(queries[0], K, filter=np.array([], dtype=np.int64))
    assert found.shape == (0,)


@pytest.mark.parametrize("kind,storage", KINDS)
def test_grow_double_then_remove_half(mixture, kind, storage):
    """The recall promise after the index doubles (one call and many) and after half the rows go."""
    data, queries = mixture
    half = data.shape[0] // 2
    index = NNdex(data[:half], approx=_approx(kind), storage=storage, enable_cache=False)
    oracle = Oracle()
    oracle.add(data[:half], range(half))
    added = index.add(data[half : half + 4000])
    assert added.tolist() == list(range(half, half + 4000))
    oracle.add(data[half : half + 4000], added)
    for start in range(half + 4000, data.shape[0], 500):
        chunk = data[start : start + 500]
        oracle.add(chunk, index.add(chunk))
    assert len(index) == index.rows == data.shape[0]
    found, _ = index.search(queries, K)
    assert _recall(found, oracle.search(queries, K)[0]) >= _floor(kind, storage)
    gone = np.random.default_rng(1).permutation(index.ids)[: len(index) // 2]
    assert index.remove(gone) == gone.size
    for i in gone.tolist():
        del oracle.rows[i]
    found, _ = index.search(queries, K)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert _recall(found, oracle.search(queries, K)[0]) >= _floor(kind, storage)
    index.compact()
    assert index.segments == 1 and index.removed_rows == 0
    assert sorted(index.ids.tolist()) == sorted(oracle.rows)
    assert _recall(index.search(queries, K)[0], oracle.search(queries, K)[0]) >= _floor(kind, storage)


def test_exact_similarities_match_a_fresh_index(mixture):
    data, queries = mixture
    index = NNdex(data[:3000], enable_cache=False)
    index.add(data[3000:5000], ids=np.arange(10_000, 12_000))
    index.remove(np.arange(0, 3000, 3))
    live = index.ids
    rows = np.concatenate([data[:3000], data[3000:5000]])[np.r_[np.arange(3000), np.arange(3000, 5000)]]
    by_id = dict(zip(list(range(3000)) + list(range(10_000, 12_000)), rows))
    fresh = NNdex(np.stack([by_id[i] for i in live.tolist()]), ids=live, enable_cache=False)
    a = index.search(queries, K)
    b = fresh.search(queries, K)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_refused_calls_raise_value_error_and_change_nothing():
    data = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    index = NNdex(data, ids=np.arange(300) * 2)
    q = data[0]
    before = index.search(q, 5)
    state = (len(index), index.next_id, index.ids.tolist())

    def unchanged():
        assert (len(index), index.next_id, index.ids.tolist()) == state
        np.testing.assert_array_equal(index.search(q, 5)[0], before[0])

    bad_adds = [
        ((data[:2],), {"ids": [1000, 1000]}, "1000 appears more than once"),
        ((data[:2],), {"ids": [-1, 1000]}, "non-negative"),
        ((data[:2],), {"ids": [4, 1000]}, "4 is already in the index"),
        ((data[:2],), {"ids": [1000]}, "one id per row"),
        ((data[:2],), {"ids": [1.5, 2.5]}, "integers"),
        ((data[:2],), {"ids": [[1, 2]]}, "1-D"),
        ((np.full((2, 8), np.nan, np.float32),), {}, "NaN|not finite|non-finite"),
        ((data[:2, :7],), {}, "dims"),
        ((np.zeros((2, 8), np.int32),), {}, "float32 or float64"),
    ]
    for args, kwargs, message in bad_adds:
        with pytest.raises(ValueError, match=message):
            index.add(*args, **kwargs)
        unchanged()
    for ids, message in (([2, 7], "7 is not in the index"), ([2, 2], "appears more than once"), ([True], "bool")):
        with pytest.raises(ValueError, match=message):
            index.remove(ids)
        unchanged()
    for flt, message in (
        (np.ones(598, dtype=bool), "mask has 598 entries"),
        (np.array([-3]), "non-negative"),
        (np.array([0.5]), "integers"),
        (np.ones((2, 2), dtype=bool), "1-D"),
    ):
        with pytest.raises(ValueError, match=message):
            index.search(q, 5, filter=flt)
    unchanged()


@pytest.mark.parametrize("mmap", [True, False])
def test_files_and_pickles_keep_ids_and_removals(tmp_path, mixture, mmap):
    data, queries = mixture
    index = NNdex(data[:6000], approx=True, storage="int8", ids=np.arange(6000) + 500, enable_cache=False)
    index.add(data[6000:8000])
    index.remove(np.arange(500, 1500))
    path = tmp_path / "mutated.nndex"
    index.save(path)
    loaded = NNdex.load(path, mmap=mmap, enable_cache=False)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    assert (loaded.next_id, loaded.segments, len(loaded)) == (index.next_id, index.segments, len(index))
    for a, b in zip(loaded.search(queries, K), index.search(queries, K)):
        np.testing.assert_array_equal(a, b)
    # A loaded index, mapped or not, takes further changes without touching the file.
    size = path.stat().st_size
    assert loaded.remove([1500]) == 1
    assert loaded.add(data[:1]).tolist() == [index.next_id]
    assert 1500 not in loaded and 1500 in index
    assert path.stat().st_size == size
    again = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(again.search(queries, K)[0], index.search(queries, K)[0])


def test_query_cache_and_shared_indexes_follow_changes(mixture):
    data, queries = mixture
    first = NNdex(data[:5000], approx=True)  # reused from the index cache by the second
    second = NNdex(data[:5000], approx=True)
    assert second.cache_info().reused_index
    q = queries[0]
    top = int(first.search(q, 1)[0][0])
    first.search(q, 1)
    assert first.cache_info().hits == 1
    first.remove([top])  # takes a private copy: the other index is untouched
    assert int(first.search(q, 1)[0][0]) != top
    assert int(second.search(q, 1)[0][0]) == top
    new = first.add(q)  # the query itself: now the best match
    assert int(first.search(q, 1)[0][0]) == int(new[0])


def test_dataframe_rows_follow_ids(mixture):
    pd = pytest.importorskip("pandas")
    data, _ = mixture
    index = NNdex(data[:100], enable_cache=False)
    frame = pd.DataFrame({"name": [f"row{i}" for i in range(120)]})
    with pytest.raises(ValueError, match="must match index rows"):
        index.search(data[3], 2, dataframe=frame)
    index.add(data[100:120])
    index.remove([3])
    found = index.search(data[3], 2, dataframe=frame)
    assert "row3" not in found["name"].tolist()
    with pytest.raises(ValueError, match="needs at least 120 rows"):
        index.search(data[3], 2, dataframe=frame.iloc[:110])


def test_searches_racing_changes_see_whole_states():
    """Searching threads beside adding and removing ones: every batch returns min(k, live) distinct ids
    that were all live together at some moment, and nothing crashes."""
    rng = np.random.default_rng(5)
    data = rng.standard_normal((6000, 16)).astype(np.float32)
    index = NNdex(data[:2000], enable_cache=False)
    queries = rng.standard_normal((8, 16)).astype(np.float32)
    errors: list[BaseException] = []
    stop = threading.Event()
    seen_states: list[set[int]] = []  # every live set the index passed through
    results: list[set[int]] = []  # the ids of each batch, checked once every state is recorded
    lock = threading.Lock()
    with lock:
        seen_states.append(set(range(2000)))

    def searcher():
        try:
            while not stop.is_set():
                found, sims = index.search(queries, K)
                for row in found.tolist():
                    assert len(set(row)) == len(row) == K
                with lock:
                    results.append(set(found.ravel().tolist()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    live = set(range(2000))
    for start in range(2000, 6000, 400):
        added = index.add(data[start : start + 400])
        live |= set(added.tolist())
        with lock:
            seen_states.append(set(live))
        gone = rng.choice(sorted(live), 100, replace=False)
        index.remove(gone)
        live -= set(gone.tolist())
        with lock:
            seen_states.append(set(live))
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert results
    for union in results:
        assert any(union <= state for state in seen_states)


class MutableIndexMachine(RuleBasedStateMachine):
    """Random sequences of build / add / remove / compact / save / load / (filtered) search against the
    oracle, on exact and approximate indexes of every storage."""

    DIMS = 12

    @initialize(kind=st.sampled_from(KINDS), rows=st.integers(1, 300), seed=st.integers(0, 2**16),
                custom_ids=st.booleans())
    def build(self, kind, rows, seed, custom_ids):
        self.rng = np.random.default_rng(seed)
        self.kind, self.storage = kind
        data = self.rng.standard_normal((rows, self.DIMS)).astype(np.float32)
        ids = self.rng.choice(10 * rows + 10, rows, replace=False) if custom_ids else None
        approx = _approx(self.kind)
        self.index = NNdex(data, approx=approx, storage=self.storage, ids=ids, enable_cache=False,
                           **({"graph_degree": 8} if self.kind == "graph" else {}))
        self.oracle = Oracle()
        self.oracle.add(data, range(rows) if ids is None else ids)
        self.next_id = rows if ids is None else int(ids.max()) + 1

    @rule(n=st.integers(1, 80), custom=st.booleans())
    def add(self, n, custom):
        data = self.rng.standard_normal((n, self.DIMS)).astype(np.float32)
        if custom:
            pool = np.setdiff1d(np.arange(self.next_id + 3 * n), np.array(sorted(self.oracle.rows), dtype=np.int64))
            ids = self.rng.choice(pool, n, replace=False)
            assert self.index.add(data, ids=ids).tolist() == ids.tolist()
        else:
            ids = self.index.add(data)
            assert ids.tolist() == list(range(self.next_id, self.next_id + n))
        self.oracle.add(data, ids)
        self.next_id = max(self.next_id, int(np.max(ids)) + 1)

    @precondition(lambda self: len(self.oracle.rows) > 0)
    @rule(fraction=st.floats(0.01, 1.0))
    def remove(self, fraction):
        live = np.array(sorted(self.oracle.rows), dtype=np.int64)
        gone = self.rng.choice(live, max(1, int(len(live) * fraction)), replace=False)
        assert self.index.remove(gone) == len(gone)
        for i in gone.tolist():
            del self.oracle.rows[i]

    @rule()
    def remove_missing(self):
        with pytest.raises(ValueError, match="not in the index"):
            self.index.remove([self.next_id + 5])

    @rule()
    def compact(self):
        self.index.compact()
        assert self.index.removed_rows == 0

    @rule(mmap=st.booleans())
    def save_and_load(self, mmap):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "machine.nndex")
            self.index.save(path)
            self.index = NNdex.load(path, mmap=mmap, enable_cache=False)

    @rule(k=st.integers(1, 15), selectivity=st.sampled_from([None, "ids", "mask"]), fraction=st.floats(0.0, 1.0))
    def search(self, k, selectivity, fraction):
        queries = self.rng.standard_normal((3, self.DIMS)).astype(np.float32)
        allowed = None
        flt = None
        if selectivity is not None:
            live = np.array(sorted(self.oracle.rows), dtype=np.int64)
            allowed = set(live[self.rng.random(live.size) < fraction].tolist())
            if selectivity == "ids":
                flt = np.array(sorted(allowed), dtype=np.int64)
            else:
                flt = np.zeros(self.next_id + 1, dtype=bool)
                flt[list(allowed)] = True
        found, sims = self.index.search(queries, k, filter=flt)
        truth, truth_sims = self.oracle.search(queries, k, allowed)
        assert found.shape == truth.shape
        pool = allowed if allowed is not None else set(self.oracle.rows)
        assert set(found.ravel().tolist()) <= pool
        if self.kind == "exact" and self.storage == "f32":
            np.testing.assert_allclose(sims, truth_sims, rtol=1e-4, atol=1e-5)
        # Small indexes are searched exactly or nearly so: the oracle's best is found.
        if truth.shape[1] > 0 and self.storage == "f32":
            assert _recall(found[:, :1], truth[:, :1]) >= (1.0 if self.kind == "exact" else 0.6)

    @invariant()
    def same_rows(self):
        assert len(self.index) == len(self.oracle.rows)
        assert self.index.next_id >= self.next_id


TestMutableIndexMachine = MutableIndexMachine.TestCase
# NNDEX_MACHINE_EXAMPLES raises the number of random sequences (300 run in a few seconds).
TestMutableIndexMachine.settings = settings(
    max_examples=int(os.environ.get("NNDEX_MACHINE_EXAMPLES", "60")), stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
