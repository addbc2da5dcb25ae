"""The Python-side checks of NNdex's arguments: types, names and array conversion (values are checked
once, by the native side; these only catch what cannot reach it or must not be copied)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nndex._convert import foreign_matrix

STORAGES = ("f32", "bf16", "int8")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_matrix(obj: Any, what: str) -> np.ndarray:
    """Returns a float32/float64 ndarray of ndim 1 or 2 without copying when the input already is one.

    pandas/polars DataFrames and Series and pyarrow Tables/Arrays are converted by nndex._convert."""
    if not isinstance(obj, np.ndarray):
        converted = foreign_matrix(obj, what)
        if converted is not None:
            obj = converted
        elif hasattr(obj, "to_numpy"):
            obj = obj.to_numpy()
    if isinstance(obj, np.ndarray):
        arr = obj
        if arr.dtype not in FLOAT_DTYPES:
            swapped = arr.dtype.newbyteorder("=") if arr.dtype.kind == "f" else None
            if swapped is None or swapped not in FLOAT_DTYPES:
                raise ValueError(f"{what} must be float32 or float64, got dtype {arr.dtype}")
            arr = arr.astype(swapped)  # the same floats stored in the other byte order
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


DEFAULT_SEED = 0x6E6E646578  # matches the C++ default


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return int(value)


def as_approx(value: Any) -> tuple[bool, str]:
    """(approx, method) from ``approx``: a bool (True: the automatic choice) or a method name."""
    if isinstance(value, str):
        if value not in ("graph", "ivf"):
            raise ValueError(f"approx must be True, False, 'graph' or 'ivf', got {value!r}")
        return True, value
    return bool(value), "auto"


def as_storage(value: Any) -> str:
    """The one check of ``storage`` (the native side receives only these three names)."""
    if not isinstance(value, str) or value not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(map(repr, STORAGES))}, got {value!r}")
    return str(value)


def as_oversampling(value: Any) -> float:
    """None becomes 0.0 (the storage's default) for the native side, which checks the value itself
    (at least 1: 0.5, NaN and negatives are refused there); here only what 0.0 cannot carry and what
    is not a number. Every refusal is a ValueError, as issue 11 asks for this parameter."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"oversampling must be a number at least 1 (or None), got {value!r}")
    result = float(value)
    if result == 0.0:  # 0.0 means "the default" to the native side
        raise ValueError(f"oversampling must be at least 1, got {value!r}")
    return result


def as_k(k: Any) -> int:
    """The type check only: the native search rejects k < 1 itself."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    return int(k)
