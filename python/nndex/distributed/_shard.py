"""One shard: an NNdex inside a Ray actor, over a contiguous part of the rows.

The shard's index holds *local* ids (its own row numbers, and the ids of rows added to it); the
driver gives every call the shard's offset and the shard adds it to the ids it returns, so global ids
are ``offset + local id``. That lets a shard open any file (an ``.npy`` or a saved ``.nndex`` with ids
from 0) without knowing beforehand where its rows fall among the others.

When Ray restarts a dead actor it calls ``__init__`` again with the same arguments, so those only
say which file to open, if any; everything else is in the driver's log for the shard, in order: the
rows of a shard built from an array ("open", a reference into Ray's object store), then each change
(adds, removes). A shard counts the entries it has applied (its ``version``); a call that finds the
shard behind the driver's log gets ``STALE`` back and the driver replays the missing entries first,
so nothing is silently lost with a restart. (Object-store references in an actor's constructor
arguments would also survive restarts, but Ray warns about every such actor: ray-project/ray#53727.)"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from nndex import NNdex
from nndex.distributed._wire import pack, unpack

STALE = "stale"  # the reply of a shard behind the driver's log


@dataclass(frozen=True)
class ShardSource:
    """Where a shard's rows come from: an array put in Ray's object store by the driver (``rows``: its
    ObjectRef and that of its ids, or None for ids from 0), or a file opened on the worker: a matrix as ``NNdex.from_file`` reads it
    (``key`` as there), or a saved ``.nndex`` (mapped)."""

    rows: Optional[list] = None
    path: Optional[str] = None
    key: Optional[str] = None

    def describe(self) -> str:
        return "rows in the object store" if self.path is None else f"file '{self.path}'"


def open_file(path: str, key: Optional[str], options: dict[str, Any]) -> NNdex:
    if os.path.splitext(path)[1].lower() == ".nndex":
        return NNdex.load(path, mmap=True, threads=options.get("threads"))
    return NNdex.from_file(path, key=key, **options)


_OPEN_ERRORS = (ValueError, TypeError, OSError)


class Shard:
    """The actor's class (made a Ray actor by the driver, with its restart and concurrency options).

    Searches may run on several of the actor's threads at once (NNdex is thread-safe and releases the
    GIL); changes are applied one at a time under ``_lock``."""

    def __init__(self, path: Optional[str], key: Optional[str], options: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._options = options
        self._version = 0
        self._error: Optional[BaseException] = None
        self._index: Optional[NNdex] = None
        if path is not None:
            try:
                self._index = open_file(path, key, options)
            except _OPEN_ERRORS as exc:
                # Kept for state() to hand to the driver, which raises it: an actor whose __init__ raised
                # would be restarted by Ray, to fail again, and the cause would reach the user wrapped.
                self._error = exc

    def state(self) -> dict[str, Any]:
        if self._error is not None:
            return {"error": self._error}
        import ray

        index = self._index
        if index is None:  # rows not opened yet: its log starts with them
            return {"version": self._version, "rows": 0, "next_id": 0, "mask_entries": 0, "opened": False}
        return {
            "version": self._version,
            "rows": index.rows,
            "next_id": index.next_id,
            "mask_entries": index._index.mask_entries,
            "dims": index.dims,
            "normalized": index.normalized,
            "method": index.method,
            "storage": index.storage,
            "isa": index.isa,
            "threads": index.threads,
            "memory_bytes": index.memory_bytes,
            "segments": index.segments,
            "opened": True,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def search(self, version: int, offset: int, request: tuple[Any, ...]) -> Any:
        """The shard's top-k with global ids, packed (see _wire.py), or STALE when it has applied fewer
        than ``version`` of the driver's changes (after a restart). A shard that is ahead answers: its
        state is newer than the caller asked for, as a search running beside a change may see.
        ``request``: (packed queries, k, search options, packed filter ids, packed filter mask)."""
        if self._version < version:
            return STALE
        assert self._index is not None
        queries, k, params, filter_ids, filter_mask = request
        ids_allowed, mask = unpack(filter_ids), unpack(filter_mask)
        if ids_allowed is not None:
            params = {**params, "filter": ids_allowed[ids_allowed >= offset] - offset}
        elif mask is not None:
            params = {**params, "filter": mask[offset:].view(np.bool_)}  # as_filter's uint8 view
        ids, sims = self._index.search(unpack(queries), k, **params)
        ids += offset
        return pack(ids, share=False), pack(sims, share=False)

    def apply(self, version: int, entries: list[tuple[Any, ...]]) -> dict[str, Any]:
        """Applies the driver's log entries from position ``version`` on; returns the shard's state,
        whose version differs from ``version + len(entries)`` when the shard was elsewhere (the driver
        then replays from there). Entries: ("add", [vectors ref], local ids), ("remove", local ids),
        ("compact",)."""
        import ray

        with self._lock:
            if version != self._version or self._error is not None:
                return self.state()
            for entry in entries:
                if entry[0] == "open":
                    try:
                        rows_ref, ids_ref = entry[1]
                        ids = None if ids_ref is None else ray.get(ids_ref)
                        self._index = NNdex(ray.get(rows_ref), ids=ids, **self._options)
                    except _OPEN_ERRORS as exc:
                        self._error = exc
                        return self.state()
                elif self._index is None:
                    raise RuntimeError("a shard without rows was sent a change")
                elif entry[0] == "add":
                    self._index.add(ray.get(entry[1][0]), entry[2])
                elif entry[0] == "remove":
                    self._index.remove(entry[1])
                else:
                    self._index.compact()
                self._version += 1
            return self.state()

    def missing(self, version: int, local_ids: np.ndarray) -> Any:
        """The ids among ``local_ids`` this shard does not hold live (STALE when behind the log)."""
        if self._version < version:
            return STALE
        assert self._index is not None
        index = self._index
        return np.asarray([i for i in local_ids.tolist() if i not in index], dtype=np.int64)

    def save(self, version: int, path: str) -> Any:
        """Writes the shard's index to ``path`` (on the worker's file system); STALE when behind."""
        assert self._index is not None
        with self._lock:
            if self._version < version:
                return STALE
            self._index.save(path)
            return self._version
