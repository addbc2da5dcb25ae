"""Input handling: dtypes, layouts, Python lists, and every documented input error."""

from __future__ import annotations

import numpy as np
import pytest

from nndex import NNdex
from oracle_helpers import (
    assert_matches_oracle,
    assert_same_results,
    make_data,
    make_matrix,
    make_queries,
    stable_seed,
)

ROWS, DIMS = 300, 24

# ----------------------------------------------------------------------------------------------
# Layouts and dtypes that must be accepted
# ----------------------------------------------------------------------------------------------


def _embed(shape, dtype, where, logical):
    """Writes `logical` into a NaN-filled buffer at `where` and returns that strided view.

    The NaN padding makes an implementation that ignores strides fail loudly."""
    buf = np.full(shape, np.nan, dtype=dtype)
    buf[where] = logical
    view = buf[where]
    assert not view.flags.c_contiguous
    return view


def _layouts(rows: int, dims: int, dtype=np.float32, salt: int = 0):
    """Views with identical contents in different memory layouts: name -> view."""
    logical = make_matrix(rows, dims, False, stable_seed(3, rows, dims, salt)).astype(dtype)
    r, d = rows, dims
    return {
        "c": np.ascontiguousarray(logical),
        "fortran": np.asfortranarray(logical),
        "cols-step2": _embed((r, 2 * d), dtype, np.s_[:, ::2], logical),
        "rows-step3": _embed((3 * r, d), dtype, np.s_[::3], logical),
        "offset-slice": _embed((r + 9, d + 4), dtype, np.s_[5 : 5 + r, 3 : 3 + d], logical),
        "reversed-rows": np.ascontiguousarray(logical[::-1])[::-1],
        "both-strided": _embed((3 * r, 2 * d), dtype, np.s_[::3, ::2], logical),
        "reversed-cols-step2": _embed((r, 2 * d), dtype, np.s_[:, ::-2], logical),
    }


LAYOUT_NAMES = list(_layouts(4, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_layout_views_are_what_they_claim(dtype):
    views = _layouts(ROWS, DIMS, dtype)
    assert views["c"].flags.c_contiguous
    assert views["fortran"].flags.f_contiguous and not views["fortran"].flags.c_contiguous
    for name in LAYOUT_NAMES:
        assert views[name].shape == (ROWS, DIMS), name
        assert views[name].dtype == dtype, name
        np.testing.assert_array_equal(views[name], views["c"])
        if name != "c":
            assert not views[name].flags.c_contiguous, name


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_data_layouts_give_the_same_results(layout, dtype, normalized):
    view = _layouts(ROWS, DIMS, dtype)[layout]
    contiguous = np.ascontiguousarray(view, dtype=np.float32)
    queries = make_queries(5, DIMS, salt=1)
    expected = NNdex(contiguous, normalized=normalized).search(queries, k=15)
    index = NNdex(view, normalized=normalized)
    assert (index.rows, index.dims) == (ROWS, DIMS)
    got = index.search(queries, k=15)
    assert_same_results(got, expected)
    assert_matches_oracle(*got, contiguous, queries, 15, normalized)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", [n for n in LAYOUT_NAMES if n != "c"])
def test_query_layouts_give_the_same_results(layout, dtype):
    data = make_data(ROWS, DIMS)
    index = NNdex(data)
    queries = _layouts(6, DIMS, dtype, salt=1)[layout]
    contiguous = np.ascontiguousarray(queries, dtype=np.float32)
    expected = index.search(contiguous, k=12)
    assert_same_results(index.search(queries, k=12), expected)
    assert_matches_oracle(*expected, data, contiguous, 12, False)
    # Strided 1-D queries: every other element of a longer vector, and a reversed view.
    single = index.search(contiguous[0], k=12)
    row = _embed((2 * DIMS,), dtype, np.s_[::2], queries[0])
    assert_same_results(index.search(row, k=12), single)
    assert_same_results(index.search(np.ascontiguousarray(queries[0][::-1])[::-1], k=12), single)
    # A column of a Fortran-ordered batch is also a strided 1-D query.
    assert_same_results(index.search(np.asfortranarray(queries)[0], k=12), single)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_float64_data_equals_float32_cast(normalized):
    rng = np.random.default_rng(5)
    data64 = rng.standard_normal((ROWS, DIMS))
    if normalized:
        data64 /= np.sqrt(DIMS) * 3
    data32 = data64.astype(np.float32)
    queries = make_queries(6, DIMS, normalized, salt=2)
    r64 = NNdex(data64, normalized=normalized).search(queries, k=20)
    r32 = NNdex(data32, normalized=normalized).search(queries, k=20)
    assert_same_results(r64, r32)
    assert_matches_oracle(*r64, data32, queries, 20, normalized)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_float64_queries_equal_float32_cast(normalized):
    data = make_data(ROWS, DIMS, normalized)
    index = NNdex(data, normalized=normalized)
    rng = np.random.default_rng(6)
    q64 = rng.standard_normal((5, DIMS)) / (np.sqrt(DIMS) if normalized else 1.0)
    q32 = q64.astype(np.float32)
    assert_same_results(index.search(q64, k=9), index.search(q32, k=9))
    assert_same_results(index.search(q64[2], k=9), index.search(q32[2], k=9))


def test_python_lists_are_accepted():
    data = make_data(40, 5)
    queries = make_queries(3, 5)
    expected = NNdex(data).search(queries, k=7)
    index = NNdex(data.tolist())
    assert index.rows == 40 and index.dims == 5
    assert_same_results(index.search(queries.tolist(), k=7), expected)
    idx, sims = index.search(queries[1].tolist(), k=7)
    assert idx.shape == (7,)
    assert_same_results((idx, sims), (expected[0][1], expected[1][1]))
    idx, sims = index.search([queries[1].tolist()], k=7)
    assert idx.shape == (1, 7)


def test_python_lists_of_ints_are_numbers_too():
    data = [[1, 0, 0], [0, 2, 0], [3, 3, 0], [0, 0, 5]]
    index = NNdex(data)
    assert index.rows == 4 and index.dims == 3
    idx, sims = index.search([1, 1, 0], k=4)
    # cos: row 2 -> 1, rows 0 and 1 tie at 1/sqrt(2) (lower index first), row 3 -> 0.
    assert idx.tolist() == [2, 0, 1, 3]
    assert_matches_oracle(idx, sims, np.array(data, np.float32), np.array([1, 1, 0], np.float32), 4, False)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("kind", ["array-f32", "array-f64", "list"])
def test_one_dimensional_data_is_one_row(kind, normalized):
    row = make_data(1, 6, normalized)[0]
    data = {"array-f32": row, "array-f64": row.astype(np.float64), "list": row.tolist()}[kind]
    index = NNdex(data, normalized=normalized)
    assert index.rows == 1
    assert index.dims == 6
    q = make_queries(2, 6, normalized)
    idx, sims = index.search(q, k=3)
    assert idx.shape == (2, 1)
    assert_matches_oracle(idx, sims, row, q, 3, normalized)


def test_read_only_arrays_are_accepted():
    data = make_data(50, 8)
    queries = make_queries(4, 8)
    expected = NNdex(data).search(queries, k=5)
    data_ro = data.copy()
    data_ro.setflags(write=False)
    queries_ro = queries.copy()
    queries_ro.setflags(write=False)
    assert_same_results(NNdex(data_ro).search(queries_ro, k=5), expected)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_inputs_are_not_modified_and_index_owns_its_data(normalized):
    data = make_data(60, 8, normalized) * 3.0
    queries = make_queries(4, 8, normalized) * 5.0
    data_before, queries_before = data.copy(), queries.copy()
    index = NNdex(data, normalized=normalized)
    before = index.search(queries, k=10)
    single = index.search(queries[0], k=10)
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(queries, queries_before)
    # Changing (or dropping) the caller's array afterwards does not affect the index.
    data[:] = 1.0
    del data
    assert_same_results(index.search(queries, k=10), before)
    assert_same_results(index.search(queries[0], k=10), single)
    assert_matches_oracle(*before, data_before, queries, 10, normalized)


# ----------------------------------------------------------------------------------------------
# Unsupported dtypes and shapes
# ----------------------------------------------------------------------------------------------

BAD_DTYPES = [
    ("int32", lambda a: a.astype(np.int32), r"(?i)\bint32\b|integer|\bint\b"),
    ("int64", lambda a: a.astype(np.int64), r"(?i)\bint64\b|integer|\bint\b"),
    ("uint8", lambda a: a.astype(np.uint8), r"(?i)uint8|unsigned"),
    ("float16", lambda a: a.astype(np.float16), r"(?i)float16|half|\bf16\b"),
    ("bool", lambda a: a > 0, r"(?i)bool"),
    ("complex64", lambda a: a.astype(np.complex64), r"(?i)complex"),
    ("complex128", lambda a: a.astype(np.complex128), r"(?i)complex"),
    ("object", lambda a: a.astype(object), r"(?i)object"),
]


@pytest.mark.parametrize("name,convert,pattern", BAD_DTYPES, ids=[b[0] for b in BAD_DTYPES])
def test_unsupported_data_dtype_is_named(name, convert, pattern):
    data = convert(make_data(10, 4) * 4)
    with pytest.raises(ValueError, match=pattern):
        NNdex(data)
    with pytest.raises(ValueError, match=pattern):
        NNdex(data[0])  # 1-D as well


@pytest.mark.parametrize("name,convert,pattern", BAD_DTYPES, ids=[b[0] for b in BAD_DTYPES])
def test_unsupported_query_dtype_is_named(name, convert, pattern):
    index = NNdex(make_data(10, 4))
    queries = convert(make_queries(3, 4) * 4)
    with pytest.raises(ValueError, match=pattern):
        index.search(queries, k=2)
    with pytest.raises(ValueError, match=pattern):
        index.search(queries[0], k=2)


SHAPE_PATTERN = r"(?i)dim|shape|1-?d|2-?d|scalar|rank"


@pytest.mark.parametrize(
    "data",
    [
        np.array(1.0, dtype=np.float32),
        np.array(2.5, dtype=np.float64),
        np.zeros((2, 3, 4), dtype=np.float32),
        np.ones((2, 3, 4), dtype=np.float64),
        np.ones((1, 1, 1, 1), dtype=np.float32),
    ],
    ids=["0d-f32", "0d-f64", "3d-f32", "3d-f64", "4d"],
)
def test_data_with_wrong_number_of_dimensions(data):
    with pytest.raises(ValueError, match=SHAPE_PATTERN):
        NNdex(data)


@pytest.mark.parametrize(
    "query",
    [np.array(1.0, dtype=np.float32), np.ones((2, 3, 4), dtype=np.float32), [[[1.0, 2.0, 3.0, 4.0]]]],
    ids=["0d", "3d", "3d-list"],
)
def test_query_with_wrong_number_of_dimensions(query):
    index = NNdex(make_data(10, 4))
    with pytest.raises(ValueError):
        index.search(query, k=2)


@pytest.mark.parametrize(
    "data",
    [[[1.0, 2.0], [3.0]], [[1.0], [2.0, 3.0, 4.0]], [[1.0, 2.0], 3.0]],
    ids=["short-second-row", "long-second-row", "scalar-row"],
)
def test_ragged_lists_are_rejected(data):
    with pytest.raises(ValueError):
        NNdex(data)


def test_ragged_query_list_is_rejected():
    index = NNdex(make_data(10, 2))
    with pytest.raises(ValueError):
        index.search([[1.0, 2.0], [3.0]], k=2)


EMPTY_PATTERN = r"(?i)empty|zero|\b0\b|no rows|no dim|at least"


@pytest.mark.parametrize(
    "data",
    [
        np.empty((0, 4), dtype=np.float32),
        np.empty((4, 0), dtype=np.float32),
        np.empty((0, 0), dtype=np.float64),
        np.empty((0,), dtype=np.float32),
        [],
        [[]],
        [[], []],
    ],
    ids=["0x4", "4x0", "0x0-f64", "1d-empty", "[]", "[[]]", "[[],[]]"],
)
def test_empty_data_is_rejected(data):
    with pytest.raises(ValueError, match=EMPTY_PATTERN):
        NNdex(data)


# ----------------------------------------------------------------------------------------------
# Non-finite values and zero norms
# ----------------------------------------------------------------------------------------------

NONFINITE = [np.nan, np.inf, -np.inf]
NONFINITE_IDS = ["nan", "inf", "-inf"]


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("row,col", [(0, 0), (5, 3), (11, 5), (3, 0)], ids=["r0", "r5", "r11-last", "r3"])
@pytest.mark.parametrize("value", NONFINITE, ids=NONFINITE_IDS)
def test_nonfinite_data_names_the_row(value, row, col, dtype, normalized):
    data = make_data(12, 6, normalized).astype(dtype)
    data[row, col] = value
    with pytest.raises(ValueError, match=rf"(?i)\brow {row}\b") as excinfo:
        NNdex(data, normalized=normalized)
    excinfo.match(r"(?i)nan|inf|finite")


@pytest.mark.parametrize("value", NONFINITE, ids=NONFINITE_IDS)
def test_nonfinite_in_one_dimensional_data_and_lists(value):
    row = make_data(1, 5)[0]
    row[2] = value
    with pytest.raises(ValueError, match=r"(?i)\brow 0\b"):
        NNdex(row)
    data = make_data(8, 5)
    data[6, 4] = value
    with pytest.raises(ValueError, match=r"(?i)\brow 6\b"):
        NNdex(data.tolist())


@pytest.mark.parametrize("layout", ["fortran", "cols-step2"])
def test_nonfinite_in_strided_data_names_the_logical_row(layout):
    data = make_data(12, 6)
    data[7, 2] = np.nan
    if layout == "fortran":
        view = np.asfortranarray(data)
    else:
        big = np.ones((12, 12), dtype=np.float32)
        big[:, ::2] = data
        view = big[:, ::2]
    with pytest.raises(ValueError, match=r"(?i)\brow 7\b"):
        NNdex(view)


@pytest.mark.parametrize("row", [0, 3, 9], ids=["r0", "r3", "r9-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_zero_row_rejected_for_cosine_and_named(row, dtype):
    data = make_data(10, 4).astype(dtype)
    data[row] = 0.0
    with pytest.raises(ValueError, match=rf"(?i)\brow {row}\b") as excinfo:
        NNdex(data, normalized=False)
    excinfo.match(r"(?i)zero|norm")


def test_zero_row_allowed_with_raw_dot_product():
    data = make_data(10, 4, True)
    data[3] = 0.0
    index = NNdex(data, normalized=True)
    q = make_queries(2, 4, True)
    idx, sims = index.search(q, k=10)
    assert_matches_oracle(idx, sims, data, q, 10, True)
    for r in range(2):
        pos = int(np.nonzero(idx[r] == 3)[0][0])
        assert sims[r, pos] == 0.0


# ----------------------------------------------------------------------------------------------
# Query errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [(7,), (13,), (1,), (3, 7), (2, 13), (1, 11)],
    ids=["1d-short", "1d-long", "1d-one", "2d-short", "2d-long", "2d-one-row"],
)
@pytest.mark.parametrize("as_list", [False, True], ids=["array", "list"])
def test_query_dimension_mismatch_reports_both_sizes(shape, as_list):
    index = NNdex(make_data(20, 12))
    query = np.ones(shape, dtype=np.float32)
    actual = shape[-1]
    with pytest.raises(ValueError, match=r"(?i)dim") as excinfo:
        index.search(query.tolist() if as_list else query, k=3)
    excinfo.match(r"\b12\b")
    excinfo.match(rf"\b{actual}\b")


def test_empty_one_dimensional_query_is_rejected():
    index = NNdex(make_data(20, 12))
    with pytest.raises(ValueError):
        index.search(np.empty((0,), dtype=np.float32), k=3)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("value", NONFINITE, ids=NONFINITE_IDS)
def test_nonfinite_query_is_rejected(value, normalized):
    index = NNdex(make_data(20, 6, normalized), normalized=normalized)
    q = make_queries(4, 6, normalized)
    q1 = q[0].copy()
    q1[3] = value
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        index.search(q1, k=3)
    q[2, 1] = value
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        index.search(q, k=3)
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        index.search(q.astype(np.float64), k=3)
    # The index is still usable.
    idx, _ = index.search(q[0], k=3)
    assert idx.shape == (3,)


def test_zero_query_rejected_for_cosine():
    index = NNdex(make_data(20, 6))
    with pytest.raises(ValueError, match=r"(?i)zero|norm"):
        index.search(np.zeros(6, dtype=np.float32), k=3)
    q = make_queries(3, 6)
    q[1] = 0.0
    with pytest.raises(ValueError, match=r"(?i)zero|norm"):
        index.search(q, k=3)
    with pytest.raises(ValueError, match=r"(?i)zero|norm"):
        index.search([0.0] * 6, k=3)


def test_zero_query_allowed_with_raw_dot_product():
    index = NNdex(make_data(20, 6, True), normalized=True)
    idx, sims = index.search(np.zeros(6, dtype=np.float32), k=5)
    np.testing.assert_array_equal(idx, np.arange(5))  # all scores tie at 0: lowest indices win
    np.testing.assert_array_equal(sims, 0.0)


@pytest.mark.parametrize("k", [0, -1, -3], ids=["k0", "k-1", "k-3"])
def test_k_below_one_is_a_value_error(k):
    index = NNdex(make_data(20, 6))
    q = make_queries(2, 6)
    with pytest.raises(ValueError, match=r"(?i)\bk\b"):
        index.search(q[0], k=k)
    with pytest.raises(ValueError, match=r"(?i)\bk\b"):
        index.search(q, k=k)


@pytest.mark.parametrize("k", [2.5, 3.0, "3", None, [3]], ids=["2.5", "3.0", "str", "None", "list"])
def test_k_that_is_not_an_int_is_a_type_error(k):
    index = NNdex(make_data(20, 6))
    q = make_queries(2, 6)
    with pytest.raises(TypeError):
        index.search(q[0], k=k)
    with pytest.raises(TypeError):
        index.search(q, k=k)
