"""Which shard holds a global id: a range per shard for its first rows, and a table for ids assigned
later (rows added, or re-added after removal). A shard stores ``id - offset`` (see _shard.py)."""

from __future__ import annotations

import numpy as np


class IdRouter:
    """Shard ``s`` owns ids ``offsets[s] <= id < offsets[s] + spans[s]`` unless the table of later
    assignments (sorted ``extra_ids`` with their ``extra_shards``) says otherwise. Whether an owned
    id is still live only its shard knows."""

    def __init__(self, offsets: np.ndarray, spans: np.ndarray, extra_ids: np.ndarray | None = None,
                 extra_shards: np.ndarray | None = None) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.spans = np.asarray(spans, dtype=np.int64)
        self.extra_ids = np.zeros(0, np.int64) if extra_ids is None else np.asarray(extra_ids, np.int64)
        self.extra_shards = np.zeros(0, np.int64) if extra_shards is None else np.asarray(extra_shards, np.int64)

    def owners(self, ids: np.ndarray) -> np.ndarray:
        """The owning shard of each id, -1 for an id no shard was ever given."""
        ids = np.asarray(ids, dtype=np.int64)
        shard = np.searchsorted(self.offsets, ids, side="right") - 1
        inside = shard >= 0
        safe = np.where(inside, shard, 0)
        inside &= ids < self.offsets[safe] + self.spans[safe]
        owner = np.where(inside, shard, -1)
        if self.extra_ids.size:
            pos = np.searchsorted(self.extra_ids, ids)
            pos_safe = np.minimum(pos, self.extra_ids.size - 1)
            found = self.extra_ids[pos_safe] == ids
            owner = np.where(found, self.extra_shards[pos_safe], owner)
        return owner

    def assign(self, ids: np.ndarray, shard: int | np.ndarray) -> None:
        """Records that ``ids`` (distinct) now belong to ``shard`` (one shard, or one per id)."""
        ids = np.asarray(ids, dtype=np.int64)
        keep = ~np.isin(self.extra_ids, ids)
        merged_ids = np.concatenate([self.extra_ids[keep], ids])
        owners = np.broadcast_to(np.asarray(shard, np.int64), ids.shape)
        merged_shards = np.concatenate([self.extra_shards[keep], owners])
        order = np.argsort(merged_ids, kind="stable")
        self.extra_ids = merged_ids[order]
        self.extra_shards = merged_shards[order]

    def copy(self) -> IdRouter:
        return IdRouter(self.offsets.copy(), self.spans.copy(), self.extra_ids.copy(), self.extra_shards.copy())
