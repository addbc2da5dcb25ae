"""The graph index (approx=True / approx="graph"): the recall promise of the defaults on real sentence
embeddings and on clustered data, held-out queries; the result contract (min(k, rows) distinct rows,
exact similarities, batch equals single, any thread); per-call ``ef``; save / load / pickle; the
option checks (each refused call leaves the index and the caches as they were)."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

from nndex import NNdex
from oracle_helpers import gaussian_mixture, stable_seed

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
K = 10


def _truth(data: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q.astype(np.float64) @ x.T.astype(np.float64)), axis=1, kind="stable")[:, :k]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found.tolist(), truth.tolist())]))


@pytest.fixture(scope="module")
def minilm():
    emb = np.load(os.path.join(FIXTURES, "minilm_embeddings.npy"))
    data, queries = np.ascontiguousarray(emb[300:]), np.ascontiguousarray(emb[:300])  # held out
    return data, queries, _truth(data, queries), NNdex(data, approx=True, enable_cache=False)


@pytest.fixture(scope="module")
def clustered():
    x = gaussian_mixture(20300, 64, centres=300, spread=1.0, seed=stable_seed(12, 1))
    data, queries = x[:20000], x[20000:]
    return data, queries, _truth(data, queries), NNdex(data, approx=True, enable_cache=False)


def test_defaults_build_a_graph_that_keeps_the_recall_promise(minilm, clustered):
    for data, queries, truth, index in (minilm, clustered):
        assert index.method == "graph" and index.approx is True and not index.uses_ivf
        assert index.ef >= K
        assert f"ef={index.ef}" in repr(index) and "method='graph'" in repr(index)
        found, _ = index.search(queries, k=K)
        assert _recall(found, truth) >= 0.95


def test_ef_per_call_raises_recall_and_a_full_beam_is_exact(clustered):
    data, queries, truth, index = clustered
    narrow = _recall(index.search(queries, k=K, ef=10)[0], truth)
    wide = _recall(index.search(queries, k=K, ef=500)[0], truth)
    assert wide >= narrow and wide >= 0.995


def test_similarities_are_exact_float32_and_single_equals_batch(minilm):
    data, queries, _, index = minilm
    exact = NNdex(data, enable_cache=False)
    ids, sims = index.search(queries, k=K)
    for q in range(0, 300, 37):
        one_ids, one_sims = index.search(queries[q], k=K)
        assert np.array_equal(one_ids, ids[q]) and np.array_equal(one_sims, sims[q])
        # Each returned similarity is the exact index's for that row.
        exact_ids, exact_sims = exact.search(queries[q], k=len(data))
        by_row = dict(zip(exact_ids.tolist(), exact_sims.tolist()))
        assert all(np.float32(by_row[i]) == s for i, s in zip(one_ids.tolist(), one_sims.tolist()))
        assert np.all(np.diff(one_sims) <= 0)


@pytest.mark.parametrize("k", [1, 7, 100, 5000])
def test_every_query_gets_min_k_distinct_rows(minilm, k):
    data, queries, _, index = minilm
    ids, sims = index.search(queries[:5], k=k, ef=12)
    assert ids.shape == (5, min(k, len(data)))
    for row in ids:
        assert len(set(row.tolist())) == len(row) and row.min() >= 0 and row.max() < len(data)


def test_save_load_mmap_bytes_and_pickle_answer_the_same(tmp_path, clustered):
    data, queries, _, index = clustered
    expected = index.search(queries, k=K)
    path = tmp_path / "graph.nndex"
    index.save(path)
    copies = [NNdex.load(path, mmap=True), NNdex.load(path, mmap=False), pickle.loads(pickle.dumps(index))]
    for copy in copies:
        assert copy.method == "graph" and copy.ef == index.ef
        got = copy.search(queries, k=K)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_int8_storage_from_file_borrows_the_rows(tmp_path, clustered):
    data, queries, truth, _ = clustered
    path = tmp_path / "rows.npy"
    np.save(path, data)
    index = NNdex.from_file(path, approx=True, storage="int8", enable_cache=False)
    assert index.method == "graph" and index.storage == "int8"
    f32 = NNdex(data, approx=True, enable_cache=False)
    assert index.memory_bytes < f32.memory_bytes - data.nbytes // 2  # the float32 rows stay in the file
    assert _recall(index.search(queries, k=K)[0], truth) >= 0.95


def test_explicit_methods_and_small_matrices():
    data = gaussian_mixture(20000, 32, centres=30, spread=1.0, seed=stable_seed(12, 2))
    assert NNdex(data, approx="ivf").method == "ivf"
    assert NNdex(data, approx=True, nlist=8).method == "ivf"  # IVF options pick IVF
    assert NNdex(data, approx=True, storage="bf16").method == "ivf"  # the graph navigates on int8
    assert NNdex(data[:500], approx=True).method == "exact"  # too small: searched exactly
    tiny = NNdex(data[:3], approx="graph")  # named explicitly: built whatever the size
    assert tiny.method == "graph"
    ids, _ = tiny.search(data[0], k=10)
    assert sorted(ids.tolist()) == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"approx": "hnsw"}, "approx must be"),
        ({"approx": "graph", "storage": "bf16"}, "int8 codes"),
        ({"approx": "graph", "nprobe": 4}, "nprobe apply only to IVF"),
        ({"approx": "ivf", "ef": 20}, "apply only to graph"),
        ({"approx": True, "nlist": 8, "ef": 20}, "not both"),
        ({"ef": 20}, "approximate indexes"),
        ({"approx": True, "ef": 20, "recall": 0.9}, "ef or recall"),
        ({"approx": True, "graph_degree": 2}, "graph_degree must be"),
        ({"approx": True, "graph_degree": 1000}, "graph_degree must be"),
    ],
)
def test_bad_options_are_value_errors(kwargs, message):
    data = gaussian_mixture(2000, 16, centres=10, spread=1.0, seed=stable_seed(12, 3))
    with pytest.raises(ValueError, match=message):
        NNdex(data, **kwargs)


@pytest.mark.parametrize("value", [0, -1])
def test_bad_ef_values_are_value_errors_and_change_nothing(minilm, value):
    data, queries, _, index = minilm
    before = index.search(queries[:3], k=K)
    with pytest.raises(ValueError, match="ef"):
        index.search(queries[:3], k=K, ef=value)
    with pytest.raises(ValueError, match="ef"):
        NNdex(data, approx=True, ef=value)
    after = index.search(queries[:3], k=K)
    assert np.array_equal(before[0], after[0])


def test_many_threads_search_one_graph_and_agree(clustered):
    data, queries, _, index = clustered
    expected = [index.search(q, k=K) for q in queries[:64]]
    results: dict[int, list] = {}

    def work(t: int) -> None:
        results[t] = [index.search(q, k=K) for q in queries[:64]]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        for (a, b), (c, d) in zip(got, expected):
            assert np.array_equal(a, c) and np.array_equal(b, d)


def test_the_build_releases_the_gil():
    data = gaussian_mixture(30000, 64, centres=100, spread=1.0, seed=stable_seed(12, 4))
    done = threading.Event()
    box = {}

    def build() -> None:
        box["index"] = NNdex(data, approx="graph", enable_cache=False)
        done.set()

    thread = threading.Thread(target=build)
    ticks = 0
    thread.start()
    while not done.is_set():
        ticks += 1  # runs only while the build lets go of the GIL
    thread.join()
    assert box["index"].method == "graph" and ticks > 1000
