"""Argument conversion for ids and filters (NNdex(ids=), add, remove, search(filter=)): integer ids become
C-contiguous int64 arrays, a boolean mask a uint8 view of the same bytes; the native side checks
the values (non-negative, distinct, present, the mask's length) and names the offending one."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def as_ids(obj: Any, what: str = "ids") -> np.ndarray:
    """int64 1-D array of ids from an int, a sequence of ints or an integer array (no floats, no bools)."""
    if isinstance(obj, (bool, np.bool_)):
        raise ValueError(f"{what} must be integers, got a bool")
    if isinstance(obj, (int, np.integer)):
        obj = [obj]
    elif isinstance(obj, (set, frozenset)):
        obj = sorted(obj)
    elif not isinstance(obj, np.ndarray) and hasattr(obj, "to_numpy"):
        obj = obj.to_numpy()
    arr = np.asarray(obj)
    if arr.size == 0 and arr.dtype.kind not in "iub":
        arr = arr.astype(np.int64)  # [] is float64 to numpy
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be integers (int64), got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= 2**63:
        raise ValueError(f"{what} must be below 2**63, got {int(arr.max())}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_filter(obj: Any) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(allowed ids, mask) for search(filter=): None, integer ids, or a boolean mask indexed by id."""
    if obj is None:
        return None, None
    if not isinstance(obj, np.ndarray) and hasattr(obj, "to_numpy"):
        obj = obj.to_numpy()
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(v, (bool, np.bool_)) for v in obj):
        obj = np.asarray(obj, dtype=bool)  # a list of bools is a mask too
    if isinstance(obj, np.ndarray) and obj.dtype == np.bool_:
        if obj.ndim != 1:
            raise ValueError(f"filter mask must be 1-D (indexed by id), got shape {obj.shape}")
        return None, np.ascontiguousarray(obj).view(np.uint8)
    try:
        return as_ids(obj, "filter"), None
    except ValueError as exc:
        raise ValueError(f"{exc} (filter is an array of allowed ids or a boolean mask indexed by id)") from None
