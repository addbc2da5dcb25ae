"""nndex.distributed.ShardedIndex on a local Ray cluster (2 CPUs, loopback, started once for this
module): answers equal to one NNdex over the same rows, files, changes, failures and refused input."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from nndex import NNdex  # noqa: E402
from nndex.distributed import Coverage, PartialResult, ShardedIndex, ShardUnavailableError  # noqa: E402
from oracle_helpers import run_in_threads  # noqa: E402

ROWS, DIMS = 3000, 17


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                 object_store_memory=256 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((ROWS, DIMS)).astype(np.float32)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(8).standard_normal((40, DIMS)).astype(np.float32)


@pytest.fixture(scope="module")
def sharded(data):
    with ShardedIndex(data, shards=3) as index:
        yield index


def assert_same(got, want) -> None:
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32
    assert got[0].shape == want[0].shape
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_exact_shards_answer_bit_for_bit_like_one_index(sharded, data, queries):
    one = NNdex(data, enable_cache=False)
    assert sharded.shards == 3 and sharded.rows == ROWS and sharded.dims == DIMS and len(sharded) == ROWS
    np.testing.assert_array_equal(sharded.offsets, [0, 1000, 2000])
    for k in (1, 10, 1500, ROWS + 5):  # 1500: more than a shard holds; ROWS + 5: more than all
        for q in (queries[0], queries[:1], queries[:5], queries):
            assert_same(sharded.search(q, k), one.search(q, k))
    assert_same(sharded.search(queries.astype(np.float64), 4), one.search(queries.astype(np.float64), 4))
    assert_same(sharded.search(queries[3].tolist(), 4), one.search(queries[3].tolist(), 4))
    assert_same(sharded.search(np.asfortranarray(queries), 4), one.search(np.asfortranarray(queries), 4))
    empty = sharded.search(np.zeros((0, DIMS), np.float32), 5)
    assert empty[0].shape == (0, 5)
    ids, _ = sharded.search(data[2500], 1)
    assert ids[0] == 2500  # global ids are row positions in data


@pytest.mark.parametrize("options", [{"normalized": True}, {"storage": "int8"}, {"storage": "bf16"}])
def test_options_reach_every_shard(data, queries, options):
    one = NNdex(data, enable_cache=False, **options)
    with ShardedIndex(data, shards=3, **options) as index:
        assert all(st["storage"] == one.storage for st in index.shard_states())
        assert_same(index.search(queries, 10), one.search(queries, 10))


def test_approximate_shards_recall_at_least_one_index():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((60, 32)).astype(np.float32)
    rows = (centres[rng.integers(0, 60, 24_000)] + 0.6 * rng.standard_normal((24_000, 32))).astype(np.float32)
    q = (centres[rng.integers(0, 60, 300)] + 0.6 * rng.standard_normal((300, 32))).astype(np.float32)
    truth = NNdex(rows, enable_cache=False).search(q, 10)[0]

    def recall(found):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])

    # One thread per build: graphs linked in a fixed order, so the comparison does not vary run to run.
    # approx="graph" (not True) builds graphs on shards of 8,000 rows, which True would search exactly.
    one = NNdex(rows, approx="graph", threads=1, enable_cache=False)
    with ShardedIndex(rows, shards=3, approx="graph", threads=1) as index:
        assert all(st["method"] == "graph" for st in index.shard_states())
        calibrated = recall(index.search(q, 10)[0])
        same_ef = recall(index.search(q, 10, ef=10)[0])
    assert calibrated >= recall(one.search(q, 10)[0]) >= 0.95
    # With an equal beam a shard's graph is smaller, and the global top 10 are each shard's first few.
    assert same_ef >= recall(one.search(q, 10, ef=10)[0])


def test_from_files_mixes_formats_and_orders_ids_by_path(tmp_path, data, queries):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    np.save(tmp_path / "a.npy", data[:1200])
    np.savez(tmp_path / "b.npz", rows=data[1200:2000])
    pq.write_table(pa.table({"embedding": list(data[2000:2600])}), tmp_path / "c.parquet")
    NNdex(data[2600:]).save(tmp_path / "d.nndex")
    paths = [tmp_path / "a.npy", tmp_path / "b.npz", tmp_path / "c.parquet", tmp_path / "d.nndex"]
    with ShardedIndex.from_files(paths) as index:
        np.testing.assert_array_equal(index.offsets, [0, 1200, 2000, 2600])
        assert_same(index.search(queries, 25), NNdex(data).search(queries, 25))
    with pytest.raises(FileNotFoundError):
        ShardedIndex.from_files([tmp_path / "a.npy", tmp_path / "missing.npy"])
    np.save(tmp_path / "narrow.npy", data[:10, :5])
    with pytest.raises(ValueError, match="shard 1 .*narrow.npy.* has 5 dims"):
        ShardedIndex.from_files([tmp_path / "a.npy", tmp_path / "narrow.npy"])
    del pd


def test_changes_and_filters_match_one_index(data, queries, tmp_path):
    one = NNdex(data, enable_cache=False)
    with ShardedIndex(data, shards=3) as index:
        extra = np.random.default_rng(1).standard_normal((50, DIMS)).astype(np.float32)
        np.testing.assert_array_equal(index.add(extra[:30]), one.add(extra[:30]))
        before = [int(st["rows"]) for st in index.shard_states()]
        assert index.add(extra[30:], ids=[10_000 + i for i in range(20)]).tolist() == list(range(10_000, 10_020))
        one.add(extra[30:], ids=np.arange(10_000, 10_020))
        assert sorted(int(st["rows"]) for st in index.shard_states()) != sorted(before)
        assert index.remove([5, 1500, 2999, 3005, 10_003]) == one.remove([5, 1500, 2999, 3005, 10_003])
        index.add(extra[:1], ids=[1500])  # a removed id comes back, on whichever shard
        one.add(extra[:1], ids=[1500])
        assert index.rows == one.rows and index.next_id == one.next_id
        assert_same(index.search(queries, 15), one.search(queries, 15))
        allowed = np.arange(0, 10_020, 7)
        assert_same(index.search(queries, 15, filter=allowed), one.search(queries, 15, filter=allowed))
        mask = np.zeros(10_020, bool)
        mask[1490:1510] = mask[10_000:] = True
        assert_same(index.search(queries, 15, filter=mask), one.search(queries, 15, filter=mask))
        assert_same(index.search(queries[0], 40, filter=[1500, 3001, 7]), one.search(queries[0], 40, filter=[1500, 3001, 7]))
        index.compact()
        one.compact()
        assert_same(index.search(queries, 15), one.search(queries, 15))

        index.save(tmp_path / "saved")
        assert sorted(os.listdir(tmp_path / "saved")) == ["manifest.json", "routing.npz", "shard-00000.nndex",
                                                         "shard-00001.nndex", "shard-00002.nndex"]
    with ShardedIndex.load(tmp_path / "saved") as loaded:
        assert loaded.rows == one.rows and loaded.next_id == one.next_id
        assert_same(loaded.search(queries, 15), one.search(queries, 15))
        loaded.remove([1500, 10_019])  # the loaded index knows which shard holds each id
        one.remove([1500, 10_019])
        assert_same(loaded.search(queries, 15), one.search(queries, 15))


def test_refused_input_raises_nndex_errors_and_changes_nothing(sharded, data, queries):
    one = NNdex(data, enable_cache=False)
    before = sharded.search(queries, 5)
    nan_query = queries[0].copy()
    nan_query[3] = np.nan
    bad_searches = [
        dict(query=queries[:, :5]), dict(query=queries[0], k=0), dict(query=nan_query),
        dict(query=np.zeros(DIMS, np.float32)), dict(query=queries, oversampling=0.5),
        dict(query=queries, filter=np.zeros(10, bool)), dict(query=queries, filter=[-3]),
        dict(query=queries.astype(np.int32)), dict(query=np.zeros((2, 2, DIMS), np.float32)),
    ]
    for call in bad_searches:
        with pytest.raises(ValueError) as ours:
            sharded.search(**call)
        with pytest.raises(ValueError) as theirs:
            one.search(**call)
        assert str(ours.value) == str(theirs.value), call
    with pytest.raises(TypeError):
        sharded.search(queries, k=2.0)
    for vectors, ids, message in [
        (queries[:2, :5], None, "vectors has 5 dims"), (nan_query, None, "non-finite"),
        (queries[:2], [1, 2], "id 1 is already in the index"), (queries[:2], [7000, 7000], "appears more than once"),
        (queries[:2], [-1, 7000], "non-negative"), (queries[:2], [7000], "one id per row"),
    ]:
        with pytest.raises(ValueError, match=message):
            sharded.add(vectors, ids)
    for ids, message in [([4, 999_999], "id 999999 is not in the index"), ([4, 4], "appears more than once")]:
        with pytest.raises(ValueError, match=message):
            sharded.remove(ids)
    assert sharded.rows == ROWS and sharded.next_id == ROWS
    assert_same(sharded.search(queries, 5), before)


def test_refused_construction(data):
    bad = data.copy()
    bad[2500, 4] = np.inf
    with pytest.raises(ValueError) as ours:
        ShardedIndex(bad, shards=3)
    with pytest.raises(ValueError) as theirs:
        NNdex(bad)
    assert str(ours.value) == str(theirs.value)  # the row number is data's, not the shard's
    with pytest.raises(ValueError, match="shards .* must not exceed"):
        ShardedIndex(data[:2], shards=3)
    with pytest.raises(ValueError, match="data is empty"):
        ShardedIndex(np.zeros((0, 4), np.float32))
    with pytest.raises(TypeError, match="unexpected option.*'bogus'"):
        ShardedIndex(data, shards=2, bogus=1)
    with pytest.raises(ValueError, match="storage"):
        ShardedIndex(data, shards=2, storage="int4")


def test_dataframe_results_and_threads(sharded, data, queries):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"title": [f"row {i}" for i in range(ROWS)]})
    rows = sharded.search(queries[0], 3, dataframe=frame)
    assert list(rows.columns) == ["title", "similarity"] and len(rows) == 3
    with pytest.raises(ValueError, match="does not combine with dataframe"):
        sharded.search(queries[0], 3, dataframe=frame, partial=True)
    want = NNdex(data, enable_cache=False).search(queries, 10)

    def worker(seed: int) -> None:
        for i in range(10):
            j = (seed * 7 + i) % len(queries)
            got = sharded.search(queries[j], 10)
            np.testing.assert_array_equal(got[0], want[0][j])

    run_in_threads(worker, 4)


def test_killed_shard_restarts_and_answers_exactly(data, queries):
    one = NNdex(data, enable_cache=False)
    extra = np.random.default_rng(2).standard_normal((5, DIMS)).astype(np.float32)
    one.add(extra)
    one.remove([10, 1001])
    want = one.search(queries, 10)
    with ShardedIndex(data, shards=3, timeout=60) as index:
        index.add(extra)
        index.remove([10, 1001])
        failures: list[BaseException] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                try:
                    assert_same(index.search(queries, 10), want)
                except BaseException as exc:  # noqa: BLE001
                    failures.append(exc)
                    return

        runner = threading.Thread(target=hammer)
        runner.start()
        time.sleep(0.3)
        pid = index.shard_states()[1]["pid"]
        ray.kill(index.shard_actors[1], no_restart=False)  # a search is in flight on it
        time.sleep(1.0)
        stop.set()
        runner.join()
        assert not failures, failures[0]
        # The restarted shard reopened its rows from the object store and replayed the add and remove.
        assert_same(index.search(queries, 10), want)
        assert ray.get(index.shard_actors[1].state.remote())["pid"] != pid


def test_unreachable_shard_raises_or_answers_partially(data, queries):
    with ShardedIndex(data, shards=3, timeout=30) as index:
        pid = index.shard_states()[2]["pid"]
        os.kill(pid, signal.SIGSTOP)  # the process hangs: alive to Ray, answering nothing
        try:
            with pytest.raises(ShardUnavailableError, match="shard 2 did not answer within 1 s") as error:
                index.search(queries, 10, timeout=1)
            assert error.value.shards == (2,)
            result = index.search(queries, 10, partial=True, timeout=1)
            assert isinstance(result, PartialResult) and isinstance(result.coverage, Coverage)
            ids, sims = result
            assert result.coverage.answered == (0, 1) and result.coverage.missing == (2,)
            assert result.coverage.rows == 2000 and result.coverage.fraction == pytest.approx(2 / 3)
            assert_same((ids, sims), NNdex(data[:2000]).search(queries, 10))
        finally:
            os.kill(pid, signal.SIGCONT)
        assert_same(index.search(queries, 10), NNdex(data).search(queries, 10))
        full = index.search(queries, 10, partial=True)
        assert full.coverage.complete and full.coverage.fraction == 1.0
    with pytest.raises(ValueError, match="closed"):
        index.search(queries, 10)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        ShardedIndex(data, shards=2, timeout=0)


def test_dead_shard_names_itself(data, queries):
    with ShardedIndex(data, shards=3, timeout=20, retries=1) as index:
        ray.kill(index.shard_actors[0], no_restart=True)
        with pytest.raises(ShardUnavailableError, match="shard 0 failed"):
            index.search(queries, 10)
        partial = index.search(queries, 10, partial=True)
        assert partial.coverage.missing == (0,)
        assert_same(tuple(partial), NNdex(data[1000:], ids=np.arange(1000, ROWS)).search(queries, 10))


@pytest.mark.parametrize("id_range", [10**6, 2**40])  # below 2**32: one sort key; above: lexsort
def test_merge_orders_like_a_search_with_ties_and_signed_zeros(id_range):
    from nndex.distributed._merge import merge_top_k

    rng = np.random.default_rng(5)
    for shards, k in ((2, 1), (3, 10), (8, 7), (40, 10)):
        parts = []
        for s in range(shards):
            sims = np.round(rng.standard_normal((16, k)), 1).astype(np.float32)  # many equal scores
            sims[:, ::3] = -0.0 if s % 2 else 0.0
            ids = rng.choice(id_range, 16 * k, replace=False).reshape(16, k)
            order = np.lexsort((ids, -sims), axis=1)
            parts.append((np.take_along_axis(ids, order, 1), np.take_along_axis(sims, order, 1)))
        all_ids = np.concatenate([p[0] for p in parts], 1)
        all_sims = np.concatenate([p[1] for p in parts], 1)
        for width in (1, k, shards * k + 5):
            ids, sims = merge_top_k(parts, width, True)
            assert ids.shape == (16, min(width, shards * k))
            for row in range(16):  # the reference: sort by (-similarity, id), -0.0 equal to 0.0
                want = sorted(zip(-all_sims[row].astype(np.float64), all_ids[row]))[: ids.shape[1]]
                assert ids[row].tolist() == [int(i) for _, i in want]
                np.testing.assert_array_equal(sims[row], [-s for s, _ in want])
            ids1, sims1 = merge_top_k([(p[0][3], p[1][3]) for p in parts], width, False)  # one query, 1-D
            np.testing.assert_array_equal(ids1, ids[3])
            np.testing.assert_array_equal(sims1, sims[3])
    ids, sims = merge_top_k([(np.array([3]), np.array([0.5], np.float32))], 10, False)
    assert ids.tolist() == [3] and sims.dtype == np.float32


def test_given_ids_route_like_one_index(data, queries):
    ids = np.random.default_rng(9).choice(10**9, ROWS, replace=False)
    one = NNdex(data, ids=ids, enable_cache=False)
    with ShardedIndex(data, shards=3, ids=ids) as index:
        assert_same(index.search(queries, 12), one.search(queries, 12))
        allowed = ids[::5]
        assert_same(index.search(queries, 12, filter=allowed), one.search(queries, 12, filter=allowed))
        assert index.remove(ids[[0, 1500, 2999]]) == one.remove(ids[[0, 1500, 2999]])
        index.add(queries[:2], ids=[ids[1500], 7])  # a removed id back, and a small new one
        one.add(queries[:2], ids=[ids[1500], 7])
        assert_same(index.search(queries, 12), one.search(queries, 12))
        assert index.next_id == one.next_id
        with pytest.raises(ValueError, match="is already in the index"):
            index.add(queries[:1], ids=[ids[5]])
        with pytest.raises(TypeError, match="cannot be pickled"):
            import pickle

            pickle.dumps(index)
    for bad, message in (([1, 1] + list(range(2, ROWS)), "appears more than once"), (ids[:5], "one id per row"),
                         (np.r_[-1, ids[1:]], "non-negative")):
        with pytest.raises(ValueError, match=message):
            ShardedIndex(data, shards=3, ids=bad)


def test_nothing_else_imports_ray():
    import subprocess
    import sys

    code = ("import sys, numpy as np, nndex, nndex.cli; from nndex import NNdex; "
            "NNdex(np.ones((4, 3), np.float32)).search(np.ones(3, np.float32), 2); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_damaged_saved_directories_and_bad_arguments_are_refused(tmp_path, data):
    import json

    with ShardedIndex(data, shards=2) as index:
        index.save(tmp_path / "good")
    manifest = json.loads((tmp_path / "good" / "manifest.json").read_text())
    with pytest.raises(FileNotFoundError):
        ShardedIndex.load(tmp_path / "nothing-here")
    cases = {
        "not json": "{", "format": json.dumps({**manifest, "format": "other"}),
        "version": json.dumps({**manifest, "version": 9}), "no shards": json.dumps({**manifest, "shards": []}),
        "path": json.dumps({**manifest, "shards": [{**manifest["shards"][0], "file": "../x.nndex"}]}),
        "offset": json.dumps({**manifest, "shards": [manifest["shards"][1], manifest["shards"][0]]}),
        "next_id": json.dumps({**manifest, "next_id": -1}),
    }
    messages = {"not json": "not valid JSON", "format": "not a ShardedIndex manifest", "version": "version 9",
                "no shards": "non-empty list", "path": "plain file name", "offset": "increasing",
                "next_id": "next_id must be a non-negative integer"}
    for name, text in cases.items():
        (tmp_path / "good" / "manifest.json").write_text(text)
        with pytest.raises(ValueError, match=messages[name]):
            ShardedIndex.load(tmp_path / "good")
    for bad in ([], "one.npy"):
        with pytest.raises(ValueError, match="non-empty sequence of file paths"):
            ShardedIndex.from_files(bad)
    for kwargs, message in (({"shards": 0}, "shards must be a positive int"), ({"retries": -1}, "retries must be"),
                            ({"restarts": 1.5}, "restarts must be")):
        with pytest.raises(ValueError, match=message):
            ShardedIndex(data, **kwargs)
