"""The driver's own checks (NNdex's messages where NNdex has the same check) and joining Ray."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import numpy as np

from nndex import NNdex

_NNDEX_OPTIONS = frozenset(inspect.signature(NNdex.__init__).parameters) - {"self", "data", "ids"}


def connect(address: Optional[str]) -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("nndex.distributed needs Ray: pip install 'nndex[distributed]'") from None
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False)
    return ray


def check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _NNDEX_OPTIONS)
    if unknown:
        raise TypeError(f"unexpected option(s) {', '.join(map(repr, unknown))}; ShardedIndex takes NNdex's options "
                        f"({', '.join(sorted(_NNDEX_OPTIONS))})")


def check_new_ids(values: np.ndarray, rows: int) -> np.ndarray:
    """NNdex's checks of new ids, with its messages: one per row, non-negative, distinct."""
    if values.size != rows:
        raise ValueError(f"ids has {values.size} entries for {rows} rows (one id per row)")
    ordered = np.sort(values)
    if ordered.size and ordered[0] < 0:
        raise ValueError(f"ids must be non-negative, got {int(ordered[0])}")
    dup = ordered[1:][ordered[1:] == ordered[:-1]]
    if dup.size:
        raise ValueError(f"id {int(dup[0])} appears more than once in ids")
    return values


def positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_settings(timeout: Any, retries: Any, restarts: Any) -> None:
    """The constructors' fault-handling settings, checked before any row is sent."""
    positive_float(timeout, "timeout")
    for name, value in (("retries", retries), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
