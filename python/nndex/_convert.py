"""pandas, polars and pyarrow objects in and out, without per-row Python loops.

None of those libraries is imported unless an object of theirs is passed in: objects are recognised
by the top-level module of their type (``pandas``, ``polars``, ``pyarrow``), then converted with the
library's own vectorised calls (Arrow buffers are flattened and reshaped, not iterated).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _library(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def _float_dtype_for(dtypes: list[np.dtype]) -> np.dtype:
    """float32 when every column is float32 (or float16), float64 otherwise (ints, float64, mixes)."""
    return _F32 if dtypes and all(d.kind == "f" and d.itemsize <= 4 for d in dtypes) else _F64


# ------------------------------------------------------------------------------------------------
# Input: DataFrames, Series, Arrow tables and arrays -> ndarray
# ------------------------------------------------------------------------------------------------


def foreign_matrix(obj: Any, what: str) -> Optional[np.ndarray]:
    """Converts a pandas/polars/pyarrow object to a 1-D or 2-D float ndarray; None for other objects."""
    library = _library(obj)
    if library == "pandas":
        return _from_pandas(obj, what)
    if library == "polars":
        return _from_polars(obj, what)
    if library == "pyarrow":
        return _from_arrow(obj, what)
    return None


def _from_object_rows(values: np.ndarray, what: str) -> np.ndarray:
    """An object array whose elements are lists or arrays (one per row) -> (rows, dims) float32."""
    if values.shape[0] == 0:
        return np.empty((0, 0), dtype=_F32)
    try:
        # np.array converts the nested sequences in C; ragged rows raise ValueError.
        arr = np.array(values.tolist(), dtype=_F32)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{what}: every row must be a list or array of numbers, all of the same length ({exc})"
        ) from None
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected one list or array of numbers per row, got shape {arr.shape}")
    return arr


def _pandas_kind(dtype: Any) -> str:
    return getattr(dtype, "kind", "O")


def _from_pandas(obj: Any, what: str) -> Optional[np.ndarray]:
    name = type(obj).__name__
    if name == "DataFrame":
        dtypes = list(obj.dtypes)
        if len(dtypes) == 1 and _pandas_kind(dtypes[0]) not in "iuf":
            return _from_pandas_series(obj.iloc[:, 0], what)  # one column of embeddings
        bad = [str(c) for c, t in zip(obj.columns, dtypes) if _pandas_kind(t) not in "iuf"]
        if bad:
            raise ValueError(
                f"{what}: every DataFrame column must be numeric (int or float), or the frame must have a single "
                f"column of lists/arrays; not numeric: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}"
            )
        plain = all(isinstance(t, np.dtype) for t in dtypes)
        dtype = _float_dtype_for([t if isinstance(t, np.dtype) else np.dtype(_F64) for t in dtypes])
        if plain:
            return obj.to_numpy(dtype=dtype)
        return obj.to_numpy(dtype=dtype, na_value=np.nan)  # nullable columns: NA -> NaN (then refused by row)
    if name == "Series":
        return _from_pandas_series(obj, what)
    return None


def _from_pandas_series(s: Any, what: str) -> np.ndarray:
    dtype = s.dtype
    kind = _pandas_kind(dtype)
    if kind in "iuf":
        target = _float_dtype_for([dtype]) if isinstance(dtype, np.dtype) else _F64
        return s.to_numpy(dtype=target, na_value=np.nan)
    if type(dtype).__name__ == "ArrowDtype":  # pyarrow-backed column: straight to the Arrow path
        return arrow_to_matrix(s.array.__arrow_array__(), what)
    if kind == "O":
        return _from_object_rows(s.to_numpy(), what)
    raise ValueError(f"{what}: a Series of dtype {dtype} cannot be converted to floats")


def _from_polars(obj: Any, what: str) -> Optional[np.ndarray]:
    import polars as pl

    if isinstance(obj, pl.DataFrame):
        dtypes = obj.dtypes
        if len(dtypes) == 1 and isinstance(dtypes[0], (pl.List, pl.Array)):
            return _from_polars_series(obj.to_series(0), what, pl)
        bad = [c for c, t in zip(obj.columns, dtypes) if not (t.is_integer() or t.is_float())]
        if bad:
            raise ValueError(
                f"{what}: every DataFrame column must be numeric (int or float), or the frame must have a single "
                f"column of lists/arrays; not numeric: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}"
            )
        arr = obj.to_numpy()
        want = _F32 if dtypes and all(t == pl.Float32 for t in dtypes) else _F64
        return arr if arr.dtype == want else arr.astype(want)
    if isinstance(obj, pl.Series):
        return _from_polars_series(obj, what, pl)
    return None


def _from_polars_series(s: Any, what: str, pl: Any) -> np.ndarray:
    dtype = s.dtype
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        if not (inner.is_float() or inner.is_integer()):
            raise ValueError(f"{what}: the lists must hold numbers, got {dtype}")
        want = _F32 if inner == pl.Float32 else _F64
        if s.null_count():
            first = int(np.argmax(s.is_null().to_numpy()))
            raise ValueError(f"{what}: row {first} is null ({s.null_count()} null rows)")
        rows = len(s)
        if rows == 0:
            return np.empty((0, 0), dtype=want)
        if isinstance(dtype, pl.Array):
            if len(dtype.shape) != 1:
                raise ValueError(f"{what}: nested arrays of shape {dtype.shape} are not supported")
            dims = dtype.shape[0]
        else:
            lengths = s.list.len().to_numpy()
            dims = int(lengths[0])
            bad = np.nonzero(lengths != dims)[0]
            if bad.size:
                raise ValueError(
                    f"{what}: rows have different lengths (row 0 has {dims}, row {bad[0]} has {lengths[bad[0]]})"
                )
        if dims == 0:
            return np.empty((rows, 0), dtype=want)
        flat = s.explode().to_numpy() if isinstance(dtype, pl.List) else s.arr.explode().to_numpy()
        if flat.dtype != want:
            flat = flat.astype(want)  # ints, or nulls inside the lists (-> NaN, refused by row later)
        return flat.reshape(rows, dims)
    if dtype.is_float() or dtype.is_integer():
        arr = s.to_numpy()
        want = _F32 if dtype == pl.Float32 else _F64
        return arr if arr.dtype == want else arr.astype(want)
    raise ValueError(f"{what}: a Series of dtype {dtype} cannot be converted to floats")


def is_float_list_type(t: Any) -> bool:
    """Whether an Arrow type is list/large_list/fixed_size_list of float16/32/64."""
    import pyarrow as pa

    kinds = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    return any(k(t) for k in kinds) and pa.types.is_floating(t.value_type)


def _is_list_type(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _from_arrow(obj: Any, what: str) -> Optional[np.ndarray]:
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        if obj.num_columns == 1 and _is_list_type(obj.schema.types[0]):
            return arrow_to_matrix(obj.column(0), what)
        types = obj.schema.types
        bad = [n for n, t in zip(obj.schema.names, types) if not (pa.types.is_floating(t) or pa.types.is_integer(t))]
        if bad:
            raise ValueError(
                f"{what}: every column of the Arrow table must be numeric (int or float), or the table must have a "
                f"single list column; not numeric: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}"
            )
        dtype = _F32 if types and all(pa.types.is_float32(t) or pa.types.is_float16(t) for t in types) else _F64
        out = np.empty((obj.num_rows, obj.num_columns), dtype=dtype, order="F")
        for j in range(obj.num_columns):  # a loop over columns, not rows
            out[:, j] = _arrow_values(obj.column(j))
        return out
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        t = obj.type
        if _is_list_type(t):
            return arrow_to_matrix(obj, what)
        if pa.types.is_floating(t) or pa.types.is_integer(t):
            values = _arrow_values(obj)
            want = _F32 if pa.types.is_float32(t) or pa.types.is_float16(t) else _F64
            return values if values.dtype == want else values.astype(want)
        raise ValueError(f"{what}: an Arrow array of type {t} cannot be converted to floats")
    return None


def _arrow_values(col: Any) -> np.ndarray:
    """A numeric Arrow Array/ChunkedArray as a 1-D ndarray (nulls become NaN)."""
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        return np.asarray(col.to_numpy())
    return np.asarray(col.to_numpy(zero_copy_only=False))


def arrow_to_matrix(obj: Any, what: str) -> np.ndarray:
    """A list-typed Arrow Array or ChunkedArray -> (rows, dims) float32/float64 ndarray."""
    import pyarrow as pa

    chunks = obj.chunks if isinstance(obj, pa.ChunkedArray) else [obj]
    reader = ArrowListReader(obj.type, len(obj), what)
    for chunk in chunks:
        reader.add(chunk)
    return reader.result()


class ArrowListReader:
    """Assembles list-typed Arrow chunks of equal-length float rows into one (rows, dims) matrix.

    A single chunk that holds every row is returned as a zero-copy view of its values buffer; several
    chunks are copied into one preallocated array. Null rows, null values and rows of different lengths
    are refused with a ValueError that names the first offending row.
    """

    def __init__(self, list_type: Any, total_rows: int, what: str) -> None:
        import pyarrow as pa

        if not _is_list_type(list_type):
            raise ValueError(f"{what}: expected a list, large_list or fixed_size_list column, got {list_type}")
        value_type = list_type.value_type
        if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
            raise ValueError(f"{what}: the lists must hold numbers, got {list_type}")
        self._what = what
        self._total = int(total_rows)
        self._dims: Optional[int] = list_type.list_size if pa.types.is_fixed_size_list(list_type) else None
        self._dtype = _F32 if pa.types.is_float32(value_type) or pa.types.is_float16(value_type) else _F64
        self._out: Optional[np.ndarray] = None
        self._filled = 0

    def add(self, chunk: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(chunk)
        if n == 0:
            return
        what, begin = self._what, self._filled
        if begin + n > self._total:
            raise ValueError(f"{what}: holds more rows than its metadata declares ({self._total})")
        if chunk.null_count:
            first = begin + int(np.argmax(chunk.is_null().to_numpy(zero_copy_only=False)))
            raise ValueError(f"{what}: row {first} is null ({chunk.null_count} null rows in this chunk)")
        if not pa.types.is_fixed_size_list(chunk.type):
            lengths = pc.list_value_length(chunk).to_numpy(zero_copy_only=False)
            if self._dims is None:
                self._dims = int(lengths[0])
            bad = np.nonzero(lengths != self._dims)[0]
            if bad.size:
                raise ValueError(
                    f"{what}: rows have different lengths (ragged): row {begin + int(bad[0])} has "
                    f"{int(lengths[bad[0]])} values, expected {self._dims}"
                )
        dims = self._dims
        if not dims:
            raise ValueError(f"{what}: the rows are empty (0 values per row)")
        values = chunk.flatten()  # respects the chunk's own offset and length
        if values.null_count:
            raise ValueError(f"{what}: contains null values inside the lists (first in rows {begin}..{begin + n - 1})")
        if len(values) != n * dims:
            raise ValueError(f"{what}: holds {len(values)} values for {n} rows of {dims} (corrupt data)")
        flat = values.to_numpy(zero_copy_only=False)
        block = flat.reshape(n, dims)
        if self._out is None and n == self._total and block.dtype == self._dtype:
            self._out = block  # one chunk holds everything: keep the Arrow buffer, no copy
        else:
            if self._out is None:
                try:
                    self._out = np.empty((self._total, dims), dtype=self._dtype)
                except (MemoryError, ValueError) as exc:
                    raise ValueError(
                        f"{what}: {self._total} rows of {dims} values cannot be allocated ({exc})"
                    ) from None
            self._out[begin : begin + n] = block
        self._filled += n

    def result(self) -> np.ndarray:
        if self._filled != self._total:
            raise ValueError(f"{self._what}: holds {self._filled} rows, its metadata declares {self._total}")
        if self._out is None:
            return np.empty((0, self._dims or 0), dtype=self._dtype)
        return self._out


# ------------------------------------------------------------------------------------------------
# Output: the matching rows of a DataFrame
# ------------------------------------------------------------------------------------------------


def check_frame(df: Any, rows: int, next_id: int) -> str:
    """Validates search(dataframe=...): returns "pandas" or "polars", or raises ValueError.

    Frame rows are selected by id as position (row i for id i): an index with default ids that has
    not changed needs exactly one frame row per index row (as the original library); once ids are
    not the row numbers (custom ids, rows added or removed) the frame needs a row for every id up to
    the largest ever used (``next_id`` rows)."""
    kind = None
    for cls in type(df).__mro__:
        if cls.__name__ == "DataFrame" and _library_of_class(cls) in ("pandas", "polars"):
            kind = _library_of_class(cls)
            break
    if kind is None:
        raise ValueError(f"`dataframe` must be a pandas.DataFrame or polars.DataFrame, got {type(df).__name__}")
    n = int(df.shape[0])
    if next_id == rows:
        if n != rows:
            raise ValueError(
                f"provided dataframe row count must match index rows (index rows={rows}, dataframe rows={n})"
            )
    elif n < next_id:
        raise ValueError(
            f"dataframe has {n} rows but the index has ids up to {next_id - 1}: frame rows are selected by id "
            f"(row i for id i), so it needs at least {next_id} rows"
        )
    return kind


def _library_of_class(cls: type) -> str:
    return cls.__module__.partition(".")[0]


def frame_rows(df: Any, kind: str, ids: np.ndarray, sims: np.ndarray) -> Any:
    """The rows `ids` of `df`, in that order, with a float32 ``similarity`` column."""
    if kind == "pandas":
        return df.iloc[ids].assign(similarity=sims)  # keeps the index labels; replaces an existing column
    import polars as pl

    return df[ids].with_columns(pl.Series("similarity", sims, dtype=pl.Float32))


def result_frames(df: Any, kind: str, ids: np.ndarray, sims: np.ndarray) -> Any:
    """search(dataframe=...)'s answer: one DataFrame for a 1-D result or a single query (as the original
    library returns for a query of one row), else a list of DataFrames, one per query."""
    if ids.ndim == 1:
        return frame_rows(df, kind, ids, sims)
    if ids.shape[0] == 1:
        return frame_rows(df, kind, ids[0], sims[0])
    return [frame_rows(df, kind, ids[i], sims[i]) for i in range(ids.shape[0])]
