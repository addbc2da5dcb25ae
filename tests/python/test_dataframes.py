"""pandas, polars and pyarrow objects as data and queries, and DataFrame results (search(dataframe=))."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nndex import NNdex
from oracle_helpers import assert_same_results, make_data, make_queries

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

ROWS, DIMS = 120, 8
DATA = make_data(ROWS, DIMS)
QUERIES = make_queries(3, DIMS, salt=2)
COLUMNS = [f"c{j}" for j in range(DIMS)]


def _reference(data=DATA, queries=QUERIES, k=7):
    return NNdex(np.asarray(data, dtype=np.float32), enable_cache=False).search(queries, k=k)


def _check(index, data=DATA):
    assert (index.rows, index.dims) == np.asarray(data).shape
    assert_same_results(index.search(QUERIES, k=7), _reference(data))


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "mixed", "int"])
def test_pandas_numeric_frames(dtype):
    frame = pd.DataFrame(DATA, columns=COLUMNS)
    data = DATA
    if dtype == "float64":
        frame = frame.astype(np.float64)
    elif dtype == "mixed":
        frame = frame.astype({"c0": np.float64, "c1": np.float32})
    elif dtype == "int":
        data = np.round(DATA * 10)
        frame = pd.DataFrame(data.astype(np.int64), columns=COLUMNS)
    _check(NNdex(frame), data)


def test_pandas_nullable_columns_name_the_bad_row():
    frame = pd.DataFrame(DATA, columns=COLUMNS).astype("Float64")
    _check(NNdex(frame))
    frame.iloc[17, 3] = pd.NA
    with pytest.raises(ValueError, match=r"\b17\b"):
        NNdex(frame)


def test_pandas_non_numeric_columns_are_named():
    frame = pd.DataFrame(DATA, columns=COLUMNS)
    frame["label"] = "x"
    frame["flag"] = True
    with pytest.raises(ValueError, match=r"not numeric: label, flag"):
        NNdex(frame)


@pytest.mark.parametrize("kind", ["lists", "arrays", "arrow-lists", "frame-column"])
def test_pandas_series_of_vectors(kind):
    if kind == "lists":
        data = pd.Series(DATA.tolist())
    elif kind == "arrays":
        data = pd.Series(list(DATA))
    elif kind == "arrow-lists":
        data = pd.Series(pa.array(DATA.tolist(), pa.list_(pa.float32())), dtype=pd.ArrowDtype(pa.list_(pa.float32())))
    else:
        data = pd.DataFrame({"embedding": list(DATA)})
    _check(NNdex(data))


def test_pandas_ragged_series_is_refused():
    with pytest.raises(ValueError, match=r"same length"):
        NNdex(pd.Series([[1.0, 2.0], [1.0]]))


@pytest.mark.parametrize("dtype", ["f32", "f64", "int"])
def test_polars_numeric_frames(dtype):
    data = np.round(DATA * 10) if dtype == "int" else DATA
    frame = pl.DataFrame(data, schema=COLUMNS)
    frame = frame.cast({"f32": pl.Float32, "f64": pl.Float64, "int": pl.Int64}[dtype])
    _check(NNdex(frame), data)


def test_polars_non_numeric_columns_are_named():
    frame = pl.DataFrame(DATA, schema=COLUMNS).with_columns(pl.lit("x").alias("label"))
    with pytest.raises(ValueError, match=r"not numeric: label"):
        NNdex(frame)


@pytest.mark.parametrize("kind", ["list", "array", "list-f64", "frame-column", "sliced"])
def test_polars_series_of_vectors(kind):
    data = DATA
    if kind == "list":
        series = pl.Series("e", DATA.tolist(), dtype=pl.List(pl.Float32))
    elif kind == "array":
        series = pl.Series("e", DATA, dtype=pl.Array(pl.Float32, DIMS))
    elif kind == "list-f64":
        series = pl.Series("e", DATA.astype(np.float64).tolist())
    elif kind == "frame-column":
        series = pl.DataFrame({"e": pl.Series("e", DATA.tolist())})
    else:
        series = pl.Series("e", np.vstack([DATA, DATA]).tolist()).slice(ROWS, ROWS)
    _check(NNdex(series), data)


def test_polars_bad_series():
    with pytest.raises(ValueError, match=r"different lengths.*row 1"):
        NNdex(pl.Series("e", [[1.0, 2.0], [1.0]]))
    with pytest.raises(ValueError, match=r"row 1 is null"):
        NNdex(pl.Series("e", [[1.0, 2.0], None]))
    with pytest.raises(ValueError, match=r"cannot be converted"):
        NNdex(pl.Series("e", ["a", "b"]))


def _list_array(matrix, kind="list"):
    values = pa.array(matrix.reshape(-1))
    n, d = matrix.shape
    if kind == "fixed":
        return pa.FixedSizeListArray.from_arrays(values, d)
    offsets = np.arange(0, (n + 1) * d, d)
    if kind == "large":
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


@pytest.mark.parametrize("kind", ["list", "large", "fixed"])
def test_arrow_arrays_and_chunked_arrays(kind):
    arr = _list_array(DATA, kind)
    _check(NNdex(arr))
    chunked = pa.chunked_array([arr.slice(0, 7), arr.slice(7, 50), arr.slice(57)])
    _check(NNdex(chunked))
    # A slice of a bigger array: the conversion must honour the array's offset.
    bigger = _list_array(np.vstack([DATA[::-1], DATA]), kind)
    _check(NNdex(bigger.slice(ROWS, ROWS)))


def test_arrow_tables_and_record_batches():
    table = pa.table({name: DATA[:, j] for j, name in enumerate(COLUMNS)})
    _check(NNdex(table))
    _check(NNdex(table.to_batches()[0]))
    _check(NNdex(pa.table({"emb": _list_array(DATA, "fixed")})))
    mixed = pa.table({"a": pa.array(np.arange(ROWS)), "b": pa.array(np.arange(ROWS, dtype=np.float64) + 1)})
    assert NNdex(mixed).dims == 2
    with pytest.raises(ValueError, match=r"not numeric: s"):
        NNdex(pa.table({"a": pa.array(np.arange(ROWS)), "s": pa.array(["x"] * ROWS)}))
    with pytest.raises(ValueError, match=r"cannot be converted"):
        NNdex(pa.array(["x", "y"]))


def test_arrow_bad_lists():
    with pytest.raises(ValueError, match=r"ragged.*row 1"):
        NNdex(pa.array([[1.0, 2.0], [1.0]]))
    with pytest.raises(ValueError, match=r"row 2 is null"):
        NNdex(pa.chunked_array([pa.array([[1.0, 2.0]]), pa.array([[1.0, 2.0], None])]))


# ------------------------------------------------------------------------------------------------
# Queries
# ------------------------------------------------------------------------------------------------


def test_foreign_queries():
    index = NNdex(DATA)
    expected = _reference()
    frame = pd.DataFrame(QUERIES, columns=COLUMNS)
    for query in (
        frame,
        pl.DataFrame(QUERIES, schema=COLUMNS),
        pa.table({name: QUERIES[:, j] for j, name in enumerate(COLUMNS)}),
        _list_array(QUERIES),
        pd.Series(list(QUERIES)),
        pl.Series("q", QUERIES.tolist()),
    ):
        assert_same_results(index.search(query, k=7), expected)
    single = index.search(frame.iloc[1], k=7)  # one pandas row is a 1-D query
    assert single[0].shape == (7,)
    assert_same_results(single, (expected[0][1], expected[1][1]))
    assert_same_results(index.search(pl.Series(QUERIES[1]), k=7), single)
    assert_same_results(index.search(pa.array(QUERIES[1]), k=7), single)


# ------------------------------------------------------------------------------------------------
# DataFrame results
# ------------------------------------------------------------------------------------------------


def _pandas_frame():
    frame = pd.DataFrame(DATA, columns=COLUMNS)
    frame["title"] = [f"doc {i}" for i in range(ROWS)]
    frame.index = [f"id{i}" for i in range(ROWS)]  # labels, not positions
    return frame


def test_pandas_dataframe_results():
    frame = _pandas_frame()
    index = NNdex(DATA)
    ids, sims = index.search(QUERIES[0], k=5)
    out = index.search(QUERIES[0], k=5, dataframe=frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [*frame.columns, "similarity"]
    assert list(out.index) == [f"id{i}" for i in ids]
    assert list(out["title"]) == [f"doc {i}" for i in ids]
    assert out["similarity"].dtype == np.float32
    np.testing.assert_array_equal(out["similarity"].to_numpy(), sims)
    assert "similarity" not in frame.columns  # the caller's frame is untouched

    batch = index.search(QUERIES, k=5, dataframe=frame)
    assert isinstance(batch, list) and len(batch) == len(QUERIES)
    all_ids, all_sims = index.search(QUERIES, k=5)
    for i, part in enumerate(batch):
        assert list(part.index) == [f"id{j}" for j in all_ids[i]]
        np.testing.assert_array_equal(part["similarity"].to_numpy(), all_sims[i])


def test_polars_dataframe_results():
    frame = pl.DataFrame(DATA, schema=COLUMNS).with_columns(pl.Series("title", [f"doc {i}" for i in range(ROWS)]))
    index = NNdex(DATA)
    ids, sims = index.search(QUERIES[0], k=5)
    out = index.search(QUERIES[0], k=5, dataframe=frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == [*frame.columns, "similarity"]
    assert out["title"].to_list() == [f"doc {i}" for i in ids]
    assert out["similarity"].dtype == pl.Float32
    np.testing.assert_array_equal(out["similarity"].to_numpy(), sims)
    batch = index.search(pl.DataFrame(QUERIES, schema=COLUMNS), k=5, dataframe=frame)
    assert isinstance(batch, list) and len(batch) == len(QUERIES)
    assert all(isinstance(part, pl.DataFrame) and part.height == 5 for part in batch)


def test_existing_similarity_column_is_replaced():
    frame = pd.DataFrame({"similarity": np.zeros(ROWS), "x": np.arange(ROWS)})
    out = NNdex(DATA).search(QUERIES[0], k=3, dataframe=frame)
    assert list(out.columns) == ["similarity", "x"]
    assert out["similarity"].iloc[0] > 0.5


def test_dataframe_is_validated_before_searching():
    index = NNdex(DATA)
    for bad in (DATA, {"a": [1]}, pd.Series(np.arange(ROWS)), pl.Series(np.arange(ROWS)), [1, 2]):
        with pytest.raises(ValueError, match=r"`dataframe` must be a pandas.DataFrame or polars.DataFrame"):
            index.search(QUERIES[0], k=3, dataframe=bad)
    for frame in (pd.DataFrame({"a": np.arange(ROWS - 1)}), pl.DataFrame({"a": np.arange(ROWS + 1)})):
        with pytest.raises(ValueError, match=rf"row count must match index rows \(index rows={ROWS}, dataframe rows="):
            index.search(QUERIES[0], k=3, dataframe=frame)


def test_dataframe_subclasses_are_accepted():
    class Sub(pd.DataFrame):
        @property
        def _constructor(self):
            return Sub

    out = NNdex(DATA).search(QUERIES[0], k=3, dataframe=Sub({"a": np.arange(ROWS)}))
    assert list(out.columns) == ["a", "similarity"]


def test_optional_libraries_are_not_imported(child_env):
    code = (
        "import sys, numpy as np; from nndex import NNdex; "
        "i = NNdex(np.random.rand(50, 4).astype(np.float32)); i.search(np.random.rand(4), k=2); "
        "i.search([[0.1, 0.2, 0.3, 0.4]], k=2); "
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
