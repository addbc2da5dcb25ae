"""Timing helpers shared by bench_exact.py and _original_worker.py.

Standard library only: the worker runs in a separate virtual environment.
"""

from __future__ import annotations

import gc
import time
from typing import Callable


def percentile(sorted_values: list[int], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


def summarize(samples_ns: list[int]) -> dict:
    """Median and spread of per-call wall times, all in nanoseconds."""
    s = sorted(samples_ns)
    return {
        "median_ns": percentile(s, 50),
        "p10_ns": percentile(s, 10),
        "p90_ns": percentile(s, 90),
        "q1_ns": percentile(s, 25),
        "q3_ns": percentile(s, 75),
        "min_ns": float(s[0]),
        "reps": len(s),
    }


def measure(
    fn: Callable[[], object],
    *,
    min_time_s: float,
    min_reps: int,
    slow_call_s: float,
    max_reps: int = 2_000_000,
    first_call_ns: int | None = None,
) -> dict:
    """Time fn() call by call with time.perf_counter_ns.

    Warm-up: one call, then (unless that call was already slower than
    slow_call_s) further calls for about 10% of min_time_s. Timed phase:
    repeat until both min_reps calls and min_time_s seconds are reached.
    Calls slower than slow_call_s get only 3 timed repeats, so that the very
    large cases keep the whole run bounded; the returned dict says how many
    repeats were taken ("reps") and whether that cap applied ("slow").
    first_call_ns: the caller already made (and timed) the first call, e.g. to
    check its result; it then stands in for the first warm-up call.
    """
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if first_call_ns is None:
            t0 = clock()
            fn()
            first_ns = clock() - t0
        else:
            first_ns = first_call_ns
        slow = first_ns > slow_call_s * 1e9
        if slow:
            min_reps = min(min_reps, 3)
        else:
            warm_until = clock() + int(0.1 * min_time_s * 1e9)
            while True:
                fn()
                if clock() >= warm_until:
                    break

        samples: list[int] = []
        deadline = clock() + int(min_time_s * 1e9)
        while True:
            t0 = clock()
            fn()
            t1 = clock()
            samples.append(t1 - t0)
            n = len(samples)
            if n >= max_reps:
                break
            if n >= min_reps and (slow or t1 >= deadline):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    out = summarize(samples)
    out["slow"] = slow
    return out
