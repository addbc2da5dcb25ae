"""How much of its solo rate a pure-Python thread keeps while another thread searches in a loop.

The helpers of the thread pool poll for ~0.1 ms after each call, so a loop of searches hands work
over without a futex wake-up. This measures what that costs a Python thread that needs the GIL:
short windows alternate between the Python loop alone and the same loop beside a thread searching
a 1000 x 768 index (split over the threads where the L2s allow) one query at a time. The ratio of
the busy rate to the solo rate is reported per round (median of its windows) with the spread over
rounds; a shared VM moves single windows by tens of percent, which is why tests/python counts CPU
time instead (test_helpers_sleep_while_the_searching_thread_waits_for_the_gil).

    python bench/gil_share.py [--rounds 9] [--windows 7] [--window 0.15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import numpy as np

from nndex import NNdex
from common import cpu_model


def _count_for(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def _rate(index: NNdex, queries: np.ndarray, window: float, search_loop: bool) -> float:
    stop = threading.Event()
    box: dict[str, int] = {}

    def searcher() -> None:
        i = 0
        while not stop.is_set():
            index.search(queries[i % len(queries)], k=10)
            i += 1

    helper = threading.Thread(target=searcher) if search_loop else None
    counter = threading.Thread(target=lambda: box.setdefault("n", _count_for(window)))
    if helper:
        helper.start()
    counter.start()
    counter.join()
    stop.set()
    if helper:
        helper.join()
    return box["n"] / window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--windows", type=int, default=7, help="solo/busy pairs per round")
    parser.add_argument("--window", type=float, default=0.15, help="seconds per window")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    index = NNdex(rng.standard_normal((1000, 768), dtype=np.float32), enable_cache=False)
    queries = rng.standard_normal((64, 768), dtype=np.float32)
    ratios = []
    for _ in range(args.rounds):
        solo, busy = [], []
        for _ in range(args.windows):
            solo.append(_rate(index, queries, args.window, False))
            busy.append(_rate(index, queries, args.window, True))
        ratios.append(statistics.median(busy) / statistics.median(solo))
    ratios.sort()
    result = {
        "cpu": cpu_model(),
        "median": statistics.median(ratios),
        "min": ratios[0],
        "max": ratios[-1],
        "rounds": ratios,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
