"""Compressed storage (issue 11): NNdex(..., storage="bf16" | "int8") and search(oversampling=).

A bf16/int8 index scans its codes for a shortlist of ceil(k * oversampling) rows and re-scores that
shortlist in float32, so every similarity it returns is bit for bit the one a float32 index gives
for the same row; only a row the shortlist missed can differ. These tests hold that promise, the
recall targets, the validation rules (ValueError naming the parameter, nothing changed by a refused
call), persistence, from_file over a memory-mapped .npy (no float32 copy), the query cache, threads
and the command line.
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import threading

import numpy as np
import pytest

from nndex import NNdex, cli
from oracle_helpers import make_data, make_queries

COMPRESSED = ("bf16", "int8")
STORAGES = ("f32",) + COMPRESSED
RECALL_TARGET = {"bf16": 0.999, "int8": 0.995}
K = 10

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
MINILM_PATH = os.path.join(FIXTURES, "minilm_embeddings.npy")
MINILM_QUERIES = 500  # tests/fixtures/README.md: the first 500 rows are the held-out queries

ROWS, DIMS = 3000, 48
DATA = make_data(ROWS, DIMS)
QUERIES = make_queries(40, DIMS, salt=11)


def _recall(ids: np.ndarray, exact_ids: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(ids, exact_ids))
    return hits / exact_ids.size


def _f32_similarities(f32: NNdex, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """What the float32 index reports for rows `ids` (per query), read from its full ranking."""
    all_ids, all_sims = f32.search(queries, k=f32.rows)
    out = np.empty(ids.shape, dtype=np.float32)
    for q in range(ids.shape[0]):
        by_id = np.empty(f32.rows, dtype=np.float32)
        by_id[all_ids[q]] = all_sims[q]
        out[q] = by_id[ids[q]]
    return out


@pytest.fixture(scope="module")
def indexes():
    return {s: NNdex(DATA, storage=s, enable_cache=False) for s in STORAGES}


@pytest.fixture(scope="module")
def gaussian():
    data = make_data(20_000, 128)
    queries = make_queries(200, 128, salt=12)
    exact = NNdex(data, enable_cache=False).search(queries, k=K)
    return data, queries, exact


@pytest.fixture(scope="module")
def minilm():
    emb = np.load(MINILM_PATH)
    data = np.ascontiguousarray(emb[MINILM_QUERIES:])
    queries = np.ascontiguousarray(emb[:MINILM_QUERIES])
    exact = NNdex(data, enable_cache=False).search(queries, k=K)
    return data, queries, exact


# --------------------------------------------------------------------------------------------
# Values, properties, errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_storage_property_and_repr(indexes, storage):
    index = indexes[storage]
    assert index.storage == storage
    assert (f"storage={storage!r}" in repr(index)) == (storage != "f32")
    if storage != "f32":
        assert index.isa.split("+")[0] in ("avx512", "avx2", "neon", "scalar"), index.isa


def test_default_storage_is_f32():
    index = NNdex(DATA[:100])
    assert index.storage == "f32"
    assert "storage" not in repr(index)


def test_compressed_codes_are_smaller():
    f32 = NNdex(DATA, enable_cache=False)
    for storage, ratio in (("bf16", 0.5), ("int8", 0.25)):
        index = NNdex(DATA, storage=storage, enable_cache=False)
        # In memory: the codes plus the float32 rows for re-scoring.
        codes = index.memory_bytes - ROWS * DIMS * 4
        limit = ratio * ROWS * DIMS * 4 + ROWS * 4 + 4096  # codes, a scale a row, padding
        assert 0 < codes <= limit, (storage, index.memory_bytes, f32.memory_bytes)


@pytest.mark.parametrize("bad", ["fp8", 8, None, "", "F16", b"int8", 8.0, ["int8"]])
def test_bad_storage_is_a_value_error(bad):
    with pytest.raises(ValueError, match="storage"):
        NNdex(DATA[:50], storage=bad)


def test_bad_storage_in_from_file_is_a_value_error(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, DATA[:50])
    for bad in ("fp8", 8, None):
        with pytest.raises(ValueError, match="storage"):
            NNdex.from_file(path, storage=bad)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("bad", [0.5, float("nan"), "x", True, False, 0, 0.0, -1.0, -math.inf, "2", [2]])
def test_bad_oversampling_is_a_value_error_and_changes_nothing(storage, bad):
    index = NNdex(DATA, storage=storage)  # with the query cache
    before = index.search(QUERIES[:3], k=5)
    info = index.cache_info()
    for query in (QUERIES[0], QUERIES[:3], QUERIES[:3].astype(np.float64), QUERIES[:3].tolist()):
        with pytest.raises(ValueError, match="oversampling"):
            index.search(query, k=5, oversampling=bad)
    assert index.cache_info() == info  # the refused calls were never counted
    after = index.search(QUERIES[:3], k=5)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


@pytest.mark.parametrize("good", [1, 1.0, 2.5, np.float32(3), np.int64(7), 1e9, math.inf])
def test_oversampling_accepts_numbers_at_least_one(indexes, good):
    ids, sims = indexes["int8"].search(QUERIES[:4], k=5, oversampling=good)
    assert ids.shape == sims.shape == (4, 5)


def test_oversampling_is_ignored_by_f32(indexes):
    f32 = indexes["f32"]
    plain = f32.search(QUERIES, k=K)
    for o in (1, 3.5, 100):
        ids, sims = f32.search(QUERIES, k=K, oversampling=o)
        assert np.array_equal(ids, plain[0]) and np.array_equal(sims, plain[1])


# --------------------------------------------------------------------------------------------
# Exact similarities, recall, oversampling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("storage", COMPRESSED)
def test_similarities_are_the_float32_ones(storage, normalized):
    data = DATA * (np.arange(ROWS, dtype=np.float32)[:, None] % 7 + 0.5) if normalized else DATA
    f32 = NNdex(data, normalized=normalized, enable_cache=False)
    index = NNdex(data, normalized=normalized, storage=storage, enable_cache=False)
    for oversampling in (None, 1, 3):
        ids, sims = index.search(QUERIES, k=K, oversampling=oversampling)
        assert np.array_equal(sims, _f32_similarities(f32, QUERIES, ids))  # bit for bit
        assert np.all(np.diff(sims, axis=1) <= 0)


@pytest.mark.parametrize("storage", COMPRESSED)
def test_recall_gaussian(gaussian, storage):
    data, queries, (exact_ids, exact_sims) = gaussian
    index = NNdex(data, storage=storage, enable_cache=False)
    ids, sims = index.search(queries, k=K)
    r = _recall(ids, exact_ids)
    print(f"gaussian {storage}: recall@10 = {r:.4f}")
    assert r >= RECALL_TARGET[storage], r
    # A shortlist that found the exact top-k returns exactly the float32 result.
    same = np.all(ids == exact_ids, axis=1)
    assert np.array_equal(sims[same], exact_sims[same])


@pytest.mark.parametrize("storage", COMPRESSED)
def test_recall_minilm(minilm, storage):
    data, queries, (exact_ids, _) = minilm
    index = NNdex(data, storage=storage, enable_cache=False)
    ids, sims = index.search(queries, k=K)
    r = _recall(ids, exact_ids)
    print(f"minilm {storage}: recall@10 = {r:.4f}")
    assert r >= RECALL_TARGET[storage], r


@pytest.mark.parametrize("storage", COMPRESSED)
def test_huge_oversampling_is_exact_float32_search(indexes, storage):
    exact = indexes["f32"].search(QUERIES, k=K)
    for oversampling in (ROWS, 1e9, math.inf):
        ids, sims = indexes[storage].search(QUERIES, k=K, oversampling=oversampling)
        assert np.array_equal(ids, exact[0]) and np.array_equal(sims, exact[1])
        one_ids, one_sims = indexes[storage].search(QUERIES[5], k=K, oversampling=oversampling)
        assert np.array_equal(one_ids, exact[0][5]) and np.array_equal(one_sims, exact[1][5])


def test_more_oversampling_does_not_lower_recall(gaussian):
    data, queries, (exact_ids, _) = gaussian
    index = NNdex(data, storage="int8", enable_cache=False)
    recalls = [_recall(index.search(queries, k=K, oversampling=o)[0], exact_ids) for o in (1, 2, 4, 16)]
    assert recalls == sorted(recalls), recalls
    assert recalls[-1] >= recalls[0]


@pytest.mark.parametrize("storage", COMPRESSED)
def test_batch_and_single_queries_agree(indexes, storage):
    index = indexes[storage]
    for oversampling in (None, 1.5):
        ids, sims = index.search(QUERIES, k=K, oversampling=oversampling)
        for q in range(QUERIES.shape[0]):
            one_ids, one_sims = index.search(QUERIES[q], k=K, oversampling=oversampling)
            assert np.array_equal(one_ids, ids[q]) and np.array_equal(one_sims, sims[q])


@pytest.mark.parametrize("storage", COMPRESSED)
def test_k_beyond_rows(storage):
    index = NNdex(DATA[:30], storage=storage)
    exact = NNdex(DATA[:30]).search(QUERIES[:2], k=50)
    ids, sims = index.search(QUERIES[:2], k=50)
    assert ids.shape == (2, 30)
    assert np.array_equal(ids, exact[0]) and np.array_equal(sims, exact[1])


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_save_load_and_pickle_keep_storage(tmp_path, indexes, storage):
    index = indexes[storage]
    expected = index.search(QUERIES, k=K)
    path = tmp_path / f"{storage}.nndex"
    index.save(path)
    loaded = [NNdex.load(path, mmap=True), NNdex.load(path, mmap=False), pickle.loads(pickle.dumps(index))]
    for other in loaded:
        assert other.storage == storage
        assert (f"storage={storage!r}" in repr(other)) == (storage != "f32")
        ids, sims = other.search(QUERIES, k=K)
        assert np.array_equal(ids, expected[0]) and np.array_equal(sims, expected[1])
        ids, sims = other.search(QUERIES[:3], k=K, oversampling=2.5)
        ref = index.search(QUERIES[:3], k=K, oversampling=2.5)
        assert np.array_equal(ids, ref[0]) and np.array_equal(sims, ref[1])
    if storage != "f32":
        assert loaded[0].memory_bytes == 0  # mapped: codes and float32 rows belong to the file
        # Read into memory: codes and float32 rows again (alignment may differ by a few pages).
        assert abs(loaded[1].memory_bytes - index.memory_bytes) <= 0.02 * index.memory_bytes


# --------------------------------------------------------------------------------------------
# from_file over a mapped .npy: no float32 copy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, order", [(np.float32, "C"), (np.float64, "C"), (np.float32, "F"), (np.float64, "F")]
)
@pytest.mark.parametrize("storage", COMPRESSED)
def test_from_file_npy_borrows_the_mapped_rows(tmp_path, storage, dtype, order):
    data = np.asarray(DATA, dtype=dtype, order=order)
    path = tmp_path / "rows.npy"
    np.save(path, data)
    index = NNdex.from_file(path, storage=storage)
    assert index.storage == storage
    f32_bytes = ROWS * DIMS * 4
    # The codes only (bf16: half, int8: a quarter of the float32 rows, plus scales and padding).
    assert index.memory_bytes < (0.6 if storage == "bf16" else 0.3) * f32_bytes, index.memory_bytes
    reference = NNdex(np.load(path), storage=storage)
    assert reference.memory_bytes > f32_bytes  # an array build keeps a float32 copy
    for oversampling in (None, 1, 3):
        ids, sims = index.search(QUERIES, k=K, oversampling=oversampling)
        ref_ids, ref_sims = reference.search(QUERIES, k=K, oversampling=oversampling)
        assert np.array_equal(ids, ref_ids) and np.array_equal(sims, ref_sims)
    # The index holds the map itself: nothing else references it now.
    del reference
    gc.collect()
    ids, sims = index.search(QUERIES, k=K)
    assert np.array_equal(ids, NNdex(data, storage=storage).search(QUERIES, k=K)[0])


def test_from_file_npy_int8_memory_much_smaller(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, DATA)
    index = NNdex.from_file(path, storage="int8")
    assert index.memory_bytes < 0.3 * ROWS * DIMS * 4
    f32 = NNdex.from_file(path)  # f32 storage: copied into the index, as before
    assert f32.storage == "f32" and f32.memory_bytes >= ROWS * DIMS * 4


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise AssertionError("no RssFile line")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc only")
def test_from_file_does_not_keep_the_file_resident(tmp_path):
    rows, dims = 20_000, 384  # 30 MB of float32
    path = tmp_path / "big.npy"
    np.save(path, make_data(rows, dims))
    gc.collect()
    before = _rss_file_kib()
    index = NNdex.from_file(path, storage="int8", enable_cache=False)
    grown = (_rss_file_kib() - before) * 1024
    # The build reads every row through the map; its pages are unmapped afterwards (they stay in
    # the page cache), so the process holds the codes, not the file.
    assert grown < 0.1 * rows * dims * 4, grown
    assert index.memory_bytes < 0.3 * rows * dims * 4
    assert index.search(make_queries(3, dims, salt=5), k=K)[0].shape == (3, K)
    # Searches re-read their shortlisted rows from the file with pread, not through the map (a page
    # fault there maps 64 KiB of neighbours too): 100 of them leave the file's pages unmapped.
    for q in make_queries(100, dims, salt=6):
        index.search(q, k=K)
    grown = (_rss_file_kib() - before) * 1024
    assert grown < 0.1 * rows * dims * 4, grown


def test_from_file_borrowed_index_outlives_its_file(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, DATA)
    index = NNdex.from_file(path, storage="int8", enable_cache=False)
    expected = index.search(QUERIES, k=K)
    with_more = index.search(QUERIES, k=K, oversampling=8)
    os.unlink(path)  # the mapping stays valid
    gc.collect()
    ids, sims = index.search(QUERIES, k=K, oversampling=8)
    assert np.array_equal(ids, with_more[0]) and np.array_equal(sims, with_more[1])
    assert np.array_equal(sims, _f32_similarities(NNdex(DATA), QUERIES, ids))
    saved = tmp_path / "again.nndex"
    index.save(saved)
    again = NNdex.load(saved)
    assert again.storage == "int8"
    assert np.array_equal(again.search(QUERIES, k=K)[0], expected[0])


def test_from_file_npz_and_float16_copy(tmp_path):
    np.savez(tmp_path / "rows.npz", emb=DATA)
    np.save(tmp_path / "half.npy", DATA.astype(np.float16))
    npz = NNdex.from_file(tmp_path / "rows.npz", storage="int8")
    half = NNdex.from_file(tmp_path / "half.npy", storage="bf16")
    assert npz.storage == "int8" and half.storage == "bf16"
    assert npz.memory_bytes > ROWS * DIMS * 4 and half.memory_bytes > ROWS * DIMS * 4
    ref = NNdex(DATA, storage="int8").search(QUERIES, k=K)
    assert np.array_equal(npz.search(QUERIES, k=K)[0], ref[0])
    assert np.array_equal(
        half.search(QUERIES, k=K)[0], NNdex(DATA.astype(np.float16).astype(np.float32), storage="bf16").search(QUERIES, k=K)[0]
    )


# --------------------------------------------------------------------------------------------
# Caches, threads, DataFrames
# --------------------------------------------------------------------------------------------


def test_query_cache_key_includes_oversampling():
    data = make_data(5000, 64)
    queries = make_queries(64, 64, salt=13)
    cached = NNdex(data, storage="int8")
    plain = NNdex(data, storage="int8", enable_cache=False)
    low = plain.search(queries, k=K, oversampling=1)
    high = plain.search(queries, k=K, oversampling=64)
    assert not np.array_equal(low[0], high[0])  # the two settings really give different results
    sequence = [(1, low), (64, high), (1, low), (64, high), (None, plain.search(queries, k=K))]
    for oversampling, expected in sequence:
        ids, sims = cached.search(queries, k=K, oversampling=oversampling)
        assert np.array_equal(ids, expected[0]) and np.array_equal(sims, expected[1]), oversampling
    info = cached.cache_info()
    assert (info.hits, info.misses) == (2, 3)
    for q in range(4):  # single queries too
        for oversampling in (1, 64, 1, 64):
            ids, sims = cached.search(queries[q], k=K, oversampling=oversampling)
            ref = low if oversampling == 1 else high
            assert np.array_equal(ids, ref[0][q]) and np.array_equal(sims, ref[1][q])


def test_approx_index_cache_key_includes_storage():
    data = make_data(5000, 128)
    first = NNdex(data, approx=True, nlist=16, nprobe=4)
    second = NNdex(data, approx=True, nlist=16, nprobe=4, storage="int8")
    third = NNdex(data, approx=True, nlist=16, nprobe=4, storage="int8")
    assert first.storage == "f32" and second.storage == "int8" and third.storage == "int8"
    assert not second.cache_info().reused_index
    assert third.cache_info().reused_index and third._index is second._index


def test_threads_search_one_int8_index_at_once(gaussian):
    data, queries, _ = gaussian
    index = NNdex(data, storage="int8", enable_cache=False)
    serial = [index.search(queries[t * 25 : (t + 1) * 25], k=K) for t in range(8)]
    serial_single = [index.search(queries[t], k=K, oversampling=3) for t in range(8)]
    barrier = threading.Barrier(8)
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                batch = index.search(queries[t * 25 : (t + 1) * 25], k=K)
                single = index.search(queries[t], k=K, oversampling=3)
            results[t] = (batch, single)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(8):
        batch, single = results[t]
        assert np.array_equal(batch[0], serial[t][0]) and np.array_equal(batch[1], serial[t][1])
        assert np.array_equal(single[0], serial_single[t][0]) and np.array_equal(single[1], serial_single[t][1])


def test_dataframe_data_and_queries():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(DATA[:500])
    index = NNdex(frame, storage="int8")
    reference = NNdex(DATA[:500], storage="int8")
    ids, sims = index.search(frame.iloc[[0, 1, 2]], k=5, oversampling=2)
    ref_ids, ref_sims = reference.search(DATA[:3], k=5, oversampling=2)
    assert np.array_equal(ids, ref_ids) and np.array_equal(sims, ref_sims)
    rows = index.search(DATA[7], k=3, dataframe=frame)
    assert list(rows.index) == list(reference.search(DATA[7], k=3)[0])
    assert "similarity" in rows.columns


# --------------------------------------------------------------------------------------------
# Approximate indexes with compressed storage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", COMPRESSED)
def test_approx_with_storage(gaussian, storage):
    data, queries, (exact_ids, _) = gaussian
    index = NNdex(data, approx="ivf", storage=storage, enable_cache=False)
    assert index.storage == storage and index.uses_ivf
    assert f"storage={storage!r}" in repr(index)
    ids, sims = index.search(queries, k=K)
    assert np.array_equal(sims, _f32_similarities(NNdex(data, enable_cache=False), queries, ids))
    assert _recall(ids, exact_ids) >= 0.9
    f32_ivf = NNdex(data, approx="ivf", enable_cache=False)
    assert index.memory_bytes < f32_ivf.memory_bytes + data.size * 4  # codes, not a second float32 copy


def test_approx_int8_save_load_and_from_file(tmp_path, gaussian):
    data, queries, _ = gaussian
    path = tmp_path / "rows.npy"
    np.save(path, data)
    index = NNdex.from_file(path, approx="ivf", storage="int8", enable_cache=False)
    assert index.storage == "int8" and index.uses_ivf
    expected = index.search(queries, k=K, nprobe=8, oversampling=2)
    index.save(tmp_path / "ivf.nndex")
    for mmap in (True, False):
        loaded = NNdex.load(tmp_path / "ivf.nndex", mmap=mmap)
        assert loaded.storage == "int8" and loaded.uses_ivf
        got = loaded.search(queries, k=K, nprobe=8, oversampling=2)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("storage", COMPRESSED)
def test_cli_build_storage_then_search_and_info(tmp_path, capsys, storage):
    np.save(tmp_path / "data.npy", DATA)
    np.save(tmp_path / "queries.npy", QUERIES)
    index_path = tmp_path / "i.nndex"
    status, out, err = _run(["build", tmp_path / "data.npy", "-o", index_path, "--storage", storage], capsys)
    assert status == 0 and out == ""
    assert f"({storage} storage)" in err

    status, out, err = _run(["info", index_path, "--json"], capsys)
    assert status == 0
    import json

    assert json.loads(out)["storage"] == storage
    status, out, _ = _run(["info", index_path], capsys)
    assert any(line.split() == ["storage", storage] for line in out.splitlines()), out

    reference = NNdex(DATA, storage=storage)
    for extra, oversampling in (([], None), (["--oversampling", "3"], 3.0)):
        status, out, err = _run(
            ["search", index_path, tmp_path / "queries.npy", "-k", 5, "-o", tmp_path / "r.npz", "-q", *extra], capsys
        )
        assert (status, out, err) == (0, "", "")
        with np.load(tmp_path / "r.npz") as z:
            ids, sims = reference.search(QUERIES, k=5, oversampling=oversampling)
            assert np.array_equal(z["indices"], ids) and np.array_equal(z["similarities"], sims)


def test_cli_storage_errors(tmp_path, capsys):
    np.save(tmp_path / "data.npy", DATA)
    np.save(tmp_path / "queries.npy", QUERIES)
    with pytest.raises(SystemExit) as exc:
        cli.main(["build", str(tmp_path / "data.npy"), "-o", str(tmp_path / "i.nndex"), "--storage", "fp8"])
    assert exc.value.code == 2
    assert "--storage" in capsys.readouterr().err
    assert _run(["build", tmp_path / "data.npy", "-o", tmp_path / "i.nndex", "-q", "--storage", "int8"], capsys)[0] == 0
    status, out, err = _run(
        ["search", tmp_path / "i.nndex", tmp_path / "queries.npy", "-q", "--oversampling", "0.5"], capsys
    )
    assert status == 1 and "oversampling must be at least 1" in err


def test_f32_build_prints_no_storage(tmp_path, capsys):
    np.save(tmp_path / "data.npy", DATA[:200])
    status, _, err = _run(["build", tmp_path / "data.npy", "-o", tmp_path / "i.nndex"], capsys)
    assert status == 0 and "storage" not in err
