"""The exact merge of the shards' top-k lists: what one index over all the rows would have returned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def merge_top_k(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int, two_d: bool) -> tuple[np.ndarray, np.ndarray]:
    """Merges per-shard results (ids, similarities), each (n, k_i) and already global, into the
    min(k, sum k_i) best per query: higher similarity first, equal similarities by lower id, the order
    every shard (and one NNdex) uses, so exact shards merge into exactly one index's answer.

    One shard's answer is already the answer. Otherwise the lists are concatenated and each query's row
    is ordered with a stable sort on id, then on similarity (np.lexsort), which costs
    O(n * S * k * log(S * k)) for S shards: at 64 shards and k = 10 a few microseconds per query, small
    beside the round trip to the shards."""
    parts = [(np.atleast_2d(ids), np.atleast_2d(sims)) for ids, sims in parts]
    if len(parts) == 1:
        ids, sims = parts[0]
    else:
        all_ids = np.concatenate([p[0] for p in parts], axis=1)
        all_sims = np.concatenate([p[1] for p in parts], axis=1)
        width = min(k, all_ids.shape[1])
        # lexsort's last key is the primary one: descending similarity, then ascending id.
        order = np.lexsort((all_ids, -all_sims), axis=1)[:, :width]
        ids = np.take_along_axis(all_ids, order, axis=1)
        sims = np.take_along_axis(all_sims, order, axis=1)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    sims = np.ascontiguousarray(sims, dtype=np.float32)
    if not two_d:
        return ids[0], sims[0]
    return ids, sims
