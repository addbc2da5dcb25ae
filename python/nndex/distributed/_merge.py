"""The exact merge of the shards' top-k lists: what one index over all the rows would have returned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_ID_BITS = 32  # ids below 2**32 share a 64-bit sort key with the similarity


def _sort_keys(ids: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """uint64 keys whose ascending order is descending similarity, then ascending id: the similarity's
    float32 bits made order-preserving and inverted in the high half, the id in the low half. -0.0 is
    taken as 0.0 (+ 0.0 does that), so equal similarities tie on id as they do in a search."""
    bits = (sims + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    ascending = np.where(bits >> np.uint64(31) == 1, ~bits & np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))
    return ((np.uint64(0xFFFFFFFF) - ascending) << np.uint64(_ID_BITS)) | ids.astype(np.uint64)


def _best_order(ids: np.ndarray, sims: np.ndarray, width: int) -> np.ndarray:
    """Column order of the ``width`` best entries of each row, best first."""
    if ids.size and int(ids.max()) >> _ID_BITS == 0:
        keys = _sort_keys(ids, sims)  # distinct (ids are), so any selection is exact
        if width < keys.shape[1]:
            best = np.argpartition(keys, width - 1, axis=1)[:, :width]
            return np.take_along_axis(best, np.argsort(np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
        return np.argsort(keys, axis=1)
    # lexsort's last key is the primary one: descending similarity, then ascending id.
    return np.lexsort((ids, -sims), axis=1)[:, :width]


def merge_top_k(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int, two_d: bool) -> tuple[np.ndarray, np.ndarray]:
    """Merges per-shard results (ids, similarities), each (n, k_i) with global ids, into the
    min(k, sum k_i) best per query: higher similarity first, equal similarities by lower id, the order
    every shard (and one NNdex) uses, so exact shards merge into exactly one index's answer.

    One shard's answer is already the answer. Otherwise the lists are concatenated and each query's
    best ``k`` chosen with a partial sort of 64-bit keys (similarity and id in one number), then sorted:
    O(n * S * k) for S shards plus O(n * k log k)."""
    if not two_d:  # one query: a sort of a few dozen entries, cheaper than the batch path's set-up
        ids = np.concatenate([np.ravel(p[0]) for p in parts])
        sims = np.concatenate([np.ravel(p[1]) for p in parts])
        order = np.lexsort((ids, -sims))[:k]
        return np.ascontiguousarray(ids[order], dtype=np.int64), np.ascontiguousarray(sims[order], dtype=np.float32)
    parts = [(np.atleast_2d(ids), np.atleast_2d(sims)) for ids, sims in parts]
    if len(parts) == 1:
        ids, sims = parts[0]
    else:
        all_ids = np.concatenate([p[0] for p in parts], axis=1)
        all_sims = np.concatenate([p[1] for p in parts], axis=1)
        width = min(k, all_ids.shape[1])
        order = _best_order(all_ids, all_sims, width) if width else np.zeros((all_ids.shape[0], 0), np.intp)
        ids = np.take_along_axis(all_ids, order, axis=1)
        sims = np.take_along_axis(all_sims, order, axis=1)
    return np.ascontiguousarray(ids, dtype=np.int64), np.ascontiguousarray(sims, dtype=np.float32)
