"""The NNdex class: argument checking and array conversion in Python, the work in nndex._nndex."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from nndex import _nndex

_BACKENDS = ("cpu", "gpu")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_matrix(obj: Any, what: str) -> np.ndarray:
    """Returns a float32/float64 ndarray of ndim 1 or 2 without copying when the input already is one."""
    if hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):
        obj = obj.to_numpy()
    if isinstance(obj, np.ndarray):
        arr = obj
        if arr.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{what} must be float32 or float64, got dtype {arr.dtype}")
    else:
        try:
            arr = np.asarray(obj, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{what} must be a float32/float64 array or a (nested) list of numbers with equal row lengths: {exc}"
            ) from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"{what} must be 1-D or 2-D, got {arr.ndim}-D array of shape {arr.shape}")
    if any(s < 0 or s % arr.itemsize for s in arr.strides):
        arr = np.ascontiguousarray(arr)  # the native side reads any positive element stride in place
    return arr


def _as_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    k = operator.index(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return k


class NNdex:
    """An index over the rows of a matrix, searched by cosine similarity (or raw dot product).

    Args:
        data: 2-D array-like of shape (rows, dims), float32 or float64 (a 1-D array is one row).
        normalized: False (default) L2-normalises rows and queries, so scores are cosine similarities;
            True trusts the data as given and scores are raw dot products.
        approx: approximate (IVF) search; not available yet.
        backend: "cpu" (the only backend in this build).
        enable_cache: accepted for compatibility; query caches are not implemented yet.
        gpu_device_index: accepted for compatibility; ignored on the CPU backend.
        threads: most threads one call may use; None uses every core.

    One index may be searched from many Python threads at once; the GIL is released while it works.
    """

    __slots__ = ("_index", "_enable_cache")

    def __init__(
        self,
        data: Any,
        normalized: bool = False,
        approx: bool = False,
        backend: str = "cpu",
        enable_cache: bool = True,
        gpu_device_index: int | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        if not isinstance(backend, str) or backend.lower() not in _BACKENDS:
            raise ValueError(f"unsupported backend {backend!r}, expected one of: {', '.join(_BACKENDS)}")
        if backend.lower() == "gpu":
            raise ValueError("backend='gpu' is not available in this build of nndex; use backend='cpu'")
        if approx:
            raise ValueError("approx=True (approximate IVF search) is not available yet; use approx=False")
        if gpu_device_index is not None and (
            isinstance(gpu_device_index, bool) or not isinstance(gpu_device_index, int) or gpu_device_index < 0
        ):
            raise ValueError(f"gpu_device_index must be None or a non-negative int, got {gpu_device_index!r}")
        if threads is None:
            threads_value = 0
        elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
        elif threads < 1:
            raise ValueError(f"threads must be at least 1 (or None for every core), got {threads}")
        else:
            threads_value = int(threads)

        arr = _as_matrix(data, "data")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        self._index = _nndex.Index(arr, bool(normalized), threads_value)
        self._enable_cache = bool(enable_cache)

    def search(self, query: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Returns (indices, similarities) of the min(k, rows) most similar rows, most similar first.

        A 1-D query gives 1-D int64 and float32 arrays; a 2-D (n, dims) query gives (n, min(k, rows))
        arrays. Equal similarities are ordered by row index.
        """
        k = _as_k(k)
        if (
            type(query) is np.ndarray
            and query.dtype == np.float32
            and query.ndim == 1
            and query.flags.c_contiguous
        ):
            return self._index.search(query, k)
        q = _as_matrix(query, "query")
        if q.ndim == 1:
            return self._index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        return self._index.search_batch(q, k)

    @property
    def rows(self) -> int:
        return self._index.rows

    @property
    def dims(self) -> int:
        return self._index.dims

    @property
    def normalized(self) -> bool:
        return self._index.normalized

    @property
    def approx(self) -> bool:
        return False

    @property
    def backend(self) -> str:
        return "cpu"

    @property
    def threads(self) -> int:
        """Most threads one call uses (every core when the index was built with threads=None)."""
        return self._index.threads

    @property
    def isa(self) -> str:
        """The kernel level in use: "avx512", "avx2", "neon" or "scalar" (NNDEX_ISA can lower it)."""
        return self._index.isa

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index's own storage."""
        return self._index.memory_bytes

    def __repr__(self) -> str:
        return (
            f"NNdex(rows={self.rows}, dims={self.dims}, normalized={self.normalized}, approx={self.approx}, "
            f"backend={self.backend!r}, threads={self.threads}, isa={self.isa!r})"
        )
