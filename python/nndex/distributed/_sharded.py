"""ShardedIndex: one NNdex per shard in Ray actors, searched as one index."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from nndex import NNdex
from nndex._arguments import as_k, as_matrix
from nndex._convert import check_frame, result_frames
from nndex._ids import as_filter, as_ids
from nndex.distributed._checks import (
    check_new_ids,
    check_options,
    check_settings,
    connect,
    positive_float,
)
from nndex.distributed._fanout import unavailable
from nndex.distributed._merge import merge_top_k
from nndex.distributed._results import Coverage, PartialResult
from nndex.distributed._router import IdRouter
from nndex.distributed._shard import ShardSource
from nndex.distributed._shard_set import ShardSet
from nndex.distributed._wire import pack, unpack

_PARTIAL_HINT = " (search(..., partial=True) returns the other shards' results)"


class ShardedIndex:
    """An index split into contiguous parts (shards), each an :class:`~nndex.NNdex` in a Ray actor, that
    answers searches exactly as one index over all the rows would: every shard returns its own top-k
    with global ids (a row's position in ``data``, or its ``ids=`` entry) and the driver merges them,
    higher similarity first and equal similarities by lower id. With exact shards the result is bit
    for bit that of one NNdex.

    Args:
        data: the matrix, in any form ``NNdex`` accepts.
        ids: one distinct non-negative integer id per row (as ``NNdex(ids=)``); None: row positions.
        shards: number of shards (contiguous parts of about equal size); None: one per live Ray node,
            at least 2.
        address: the Ray cluster to join when this process is not connected to one yet ("auto",
            "ray://host:10001", ...); None with no cluster starts a local one.
        timeout: seconds a search (or a change) waits for a shard, retries included, before it raises
            :class:`ShardUnavailableError` naming it (or, with ``partial=True``, answers without it).
        retries: times a call is sent again to a shard whose actor died meanwhile (Ray restarts it).
        restarts: times Ray restarts a dead shard actor (``max_restarts``); a restarted shard reopens
            its rows (from the object store or its file) and replays the changes made since.
        actor_options: extra Ray actor options for the shards (``num_cpus``, ``memory``, ``resources``,
            ``scheduling_strategy``, ...).
        **options: NNdex's (``normalized``, ``approx``, ``storage``, ``threads``, ``ef``, ...), the same
            for every shard. ``threads`` defaults to the node's CPUs divided among the shards on it.

    Each shard's rows are kept in Ray's object store (a copy, made once), so a restarted shard can
    rebuild; :meth:`from_files` and :meth:`load` shards reopen their files instead and need no copy.
    """

    def __init__(
        self,
        data: Any,
        shards: Optional[int] = None,
        *,
        ids: Any = None,
        address: Optional[str] = None,
        timeout: float = 60.0,
        retries: int = 3,
        restarts: int = 3,
        actor_options: Optional[dict[str, Any]] = None,
        **options: Any,
    ) -> None:
        check_options(options)
        check_settings(timeout, retries, restarts)
        arr = as_matrix(data, "data")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"data is empty (shape {arr.shape[0]} x {arr.shape[1]})")
        id_values = None if ids is None else check_new_ids(as_ids(ids), arr.shape[0])
        ray = connect(address)
        count = self._shard_count(shards, arr.shape[0], ray)
        bounds = np.linspace(0, arr.shape[0], count + 1).round().astype(np.int64)
        sources = [ShardSource(rows=[ray.put(np.ascontiguousarray(arr[a:b])),
                                     None if id_values is None else ray.put(id_values[a:b])])
                   for a, b in zip(bounds, bounds[1:])]
        self._start(sources, options, timeout, retries, restarts, actor_options, bounds[:-1])
        if id_values is None:
            self._finish(IdRouter(bounds[:-1], np.diff(bounds)))
        else:  # the shards hold the given ids themselves (offset 0); the router knows each one's shard
            router = IdRouter(np.zeros(count, np.int64), np.zeros(count, np.int64))
            router.assign(id_values, np.repeat(np.arange(count), np.diff(bounds)))
            self._finish(router)

    @staticmethod
    def _shard_count(shards: Optional[int], rows: int, ray: Any) -> int:
        if shards is None:
            shards = max(2, sum(1 for n in ray.nodes() if n.get("Alive")))
            return min(shards, rows)
        if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
            raise ValueError(f"shards must be a positive int (or None), got {shards!r}")
        if shards > rows:
            raise ValueError(f"shards ({shards}) must not exceed the number of rows ({rows})")
        return int(shards)

    def _start(self, sources: Sequence[ShardSource], options: dict[str, Any], timeout: float, retries: int,
               restarts: int, actor_options: Optional[dict[str, Any]], row_starts: Optional[Sequence[int]]) -> None:
        self._timeout = float(timeout)  # checked by check_settings before anything was sent
        self._lock = threading.Lock()  # changes, one at a time
        self._set = ShardSet(sources, options, restarts=restarts, retries=retries, actor_options=actor_options)
        self._set.wait_ready(row_starts)
        first = self._set.states[0]
        for s, state in enumerate(self._set.states):
            if state["dims"] != first["dims"] or state["normalized"] != first["normalized"]:
                self._set.close()
                raise ValueError(
                    f"shard {s} ({sources[s].describe()}) has {state['dims']} dims and normalized={state['normalized']}"
                    f" but shard 0 has {first['dims']} and normalized={first['normalized']}")

    def _finish(self, router: IdRouter, next_id: int = 0) -> None:
        self._router = router
        first = self._set.states[0]
        self._dims = int(first["dims"])
        self._normalized = bool(first["normalized"])
        self._next_id = max(next_id, *(int(o) + int(st["next_id"]) for o, st in zip(router.offsets, self._set.states)))
        # Checks every query as NNdex.search does (k, dims, values, options), with NNdex's own errors.
        self._probe = NNdex(np.ones((1, self._dims), np.float32), normalized=self._normalized, enable_cache=False)

    @classmethod
    def from_files(
        cls,
        paths: Sequence[Union[str, os.PathLike[str]]],
        *,
        key: Optional[str] = None,
        address: Optional[str] = None,
        timeout: float = 60.0,
        retries: int = 3,
        restarts: int = 3,
        actor_options: Optional[dict[str, Any]] = None,
        **options: Any,
    ) -> ShardedIndex:
        """One shard per file, opened by the worker that serves it (the driver never reads the data):
        ``.npy``, ``.npz`` and ``.parquet`` as :meth:`NNdex.from_file` reads them (``key``, ``options``),
        or a saved ``.nndex`` index, memory-mapped (its own options apply). Global ids follow the order of
        ``paths``: the rows of the first file, then the second's, ... (a ``.nndex`` file counts as many
        ids as its ``next_id``). The paths must be readable where the shards run (a shared file system
        on a multi-node cluster)."""
        check_options(options)
        check_settings(timeout, retries, restarts)
        if isinstance(paths, (str, os.PathLike)) or not paths:
            raise ValueError("paths must be a non-empty sequence of file paths")
        connect(address)
        sources = [ShardSource(path=os.path.abspath(os.fspath(p)), key=key) for p in paths]
        self = cls.__new__(cls)
        self._start(sources, options, timeout, retries, restarts, actor_options, None)
        spans = np.asarray([int(st["next_id"]) for st in self._set.states], np.int64)
        offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
        self._finish(IdRouter(offsets, spans))
        return self

    # -- search -----------------------------------------------------------------------------------

    def search(
        self,
        query: Any,
        k: int = 10,
        dataframe: Any = None,
        *,
        nprobe: Optional[int] = None,
        oversampling: Optional[float] = None,
        ef: Optional[int] = None,
        filter: Any = None,
        partial: bool = False,
        timeout: Optional[float] = None,
    ) -> Any:
        """:meth:`NNdex.search` over every shard: the same arguments, checks and result (ids are global).

        ``partial=True``: shards that do not answer within ``timeout`` (default: the index's) are left
        out instead of raising :class:`ShardUnavailableError`; the result then also carries
        ``.coverage`` (a :class:`Coverage`: the shards that answered and missed, and the live rows the
        answer covers), and holds min(k, rows of the shards that answered) results per query."""
        self._check_open()
        k = as_k(k)
        wait = self._timeout if timeout is None else positive_float(timeout, "timeout")
        q = as_matrix(query, "query")
        filter_ids, filter_mask = as_filter(filter)
        frame_kind = None if dataframe is None else check_frame(dataframe, self.rows, self._next_id)
        if frame_kind is not None and partial:
            raise ValueError("partial=True returns arrays with a coverage; it does not combine with dataframe")
        params = {name: value for name, value in (("nprobe", nprobe), ("oversampling", oversampling), ("ef", ef))
                  if value is not None}
        self._probe.search(q, k, filter=filter_ids, **params)
        if filter_mask is not None:
            self._check_mask(filter_mask)
        if q.ndim == 2:
            q = np.ascontiguousarray(q)
        request = (pack(q), k, params, pack(filter_ids), pack(filter_mask))  # one copy for all shards
        sset, offsets = self._set, self._router.offsets

        def submit(s: int) -> Any:
            return sset.actors[s].search.remote(len(sset.logs[s]), int(offsets[s]), request)

        answers, failures = sset.call(range(len(sset)), submit, wait, "search")
        if failures and not partial:
            raise unavailable(failures, wait, "search", _PARTIAL_HINT)
        if answers:
            result = merge_top_k([(unpack(answers[s][0]), unpack(answers[s][1])) for s in sorted(answers)], k,
                                 q.ndim == 2)
        else:  # nothing answered: no results
            shape = (q.shape[0], 0) if q.ndim == 2 else (0,)
            result = (np.zeros(shape, np.int64), np.zeros(shape, np.float32))
        if frame_kind is not None:
            return result_frames(dataframe, frame_kind, *result)
        if not partial:
            return result
        covered = sum(int(sset.states[s]["rows"]) for s in answers)
        return PartialResult(result, Coverage(tuple(sorted(answers)), tuple(sorted(failures)), covered, self.rows))

    def _check_mask(self, mask: np.ndarray) -> None:
        """NNdex's rule, over all shards: a mask needs an entry for the largest id a shard holds."""
        needed = max((int(o) + int(st["mask_entries"]) for o, st in zip(self._router.offsets, self._set.states)
                      if st["mask_entries"] > 0), default=0)
        if mask.size < needed:
            raise ValueError(f"filter mask has {mask.size} entries but the index holds id {needed - 1} (a mask is "
                             "indexed by id: it needs more entries than the largest id)")

    # -- changes ----------------------------------------------------------------------------------

    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """:meth:`NNdex.add` for the sharded index: the rows go to the shard with the fewest live rows
        (among those whose ids start at or below the smallest new id); same checks, same errors."""
        self._check_open()
        arr = as_matrix(vectors, "vectors")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        # NNdex's own checks of the vectors (dims, values, zero norms), on a scratch index.
        NNdex(np.ones((1, self._dims), np.float32), normalized=self._normalized, enable_cache=False).add(arr)
        with self._lock:
            new_ids = self._new_ids(ids, arr.shape[0])
            if new_ids.size == 0:
                return new_ids
            offsets = self._router.offsets
            eligible = [s for s in range(len(self._set)) if offsets[s] <= new_ids.min()]
            target = min(eligible, key=lambda s: (int(self._set.states[s]["rows"]), s))
            import ray

            entry = ("add", [ray.put(np.ascontiguousarray(arr))], new_ids - offsets[target])
            self._router.assign(new_ids, target)
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)
            self._set.apply({target: entry}, self._timeout)
            return new_ids

    def _new_ids(self, ids: Any, rows: int) -> np.ndarray:
        if ids is None:
            return np.arange(self._next_id, self._next_id + rows, dtype=np.int64)
        values = check_new_ids(as_ids(ids), rows)
        live = np.setdiff1d(values, self._missing(values))
        if live.size:
            raise ValueError(f"id {int(live[0])} is already in the index")
        return values

    def _missing(self, ids: np.ndarray) -> np.ndarray:
        """The ids among ``ids`` no shard holds live (asking the owning shards)."""
        owners = self._router.owners(ids)
        missing = [ids[owners < 0]]
        involved = np.unique(owners[owners >= 0]).tolist()
        offsets, sset = self._router.offsets, self._set
        answers = sset.call_all(
            involved, lambda s: sset.actors[s].missing.remote(len(sset.logs[s]), ids[owners == s] - offsets[s]),
            self._timeout, "checking ids")
        missing += [answers[s] + offsets[s] for s in involved]
        return np.concatenate(missing).astype(np.int64)

    def remove(self, ids: Any) -> int:
        """:meth:`NNdex.remove` for the sharded index; same checks, same errors, nothing removed on error."""
        self._check_open()
        values = as_ids(ids)
        with self._lock:
            missing = set(self._missing(values).tolist())
            for i in values.tolist():
                if i in missing:
                    raise ValueError(f"id {i} is not in the index")
            ordered = np.sort(values)
            dup = ordered[1:][ordered[1:] == ordered[:-1]]
            if dup.size:
                raise ValueError(f"id {int(dup[0])} appears more than once in ids")
            owners = self._router.owners(values)
            entries = {int(s): ("remove", values[owners == s] - self._router.offsets[s]) for s in np.unique(owners)}
            self._set.apply(entries, self._timeout)
            return int(values.size)

    def compact(self) -> None:
        """:meth:`NNdex.compact` on every shard."""
        self._check_open()
        with self._lock:
            self._set.apply({s: ("compact",) for s in range(len(self._set))}, self._timeout)

    # -- files ------------------------------------------------------------------------------------

    def save(self, directory: Union[str, os.PathLike[str]]) -> None:
        """Writes one index file per shard (``shard-00000.nndex``, ...) and ``manifest.json`` into
        ``directory`` (created if needed; on a multi-node cluster it must be shared, since each shard
        writes its own file). The manifest is written last, so an interrupted save is never loadable."""
        from nndex.distributed._manifest import write_manifest

        self._check_open()
        with self._lock:
            write_manifest(self, os.fspath(directory))

    @classmethod
    def load(
        cls,
        directory: Union[str, os.PathLike[str]],
        *,
        address: Optional[str] = None,
        threads: Optional[int] = None,
        timeout: float = 60.0,
        retries: int = 3,
        restarts: int = 3,
        actor_options: Optional[dict[str, Any]] = None,
    ) -> ShardedIndex:
        """Opens a directory written by :meth:`save`: each shard maps its file, with the saved ids."""
        from nndex.distributed._manifest import read_manifest

        check_settings(timeout, retries, restarts)
        files, router, next_id = read_manifest(os.fspath(directory))
        connect(address)
        self = cls.__new__(cls)
        options = {} if threads is None else {"threads": threads}
        self._start([ShardSource(path=f) for f in files], options, timeout, retries, restarts, actor_options,
                    router.offsets)
        self._finish(router, next_id)
        return self

    # -- description ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._set.actors:
            raise ValueError("this ShardedIndex is closed")

    @property
    def rows(self) -> int:
        """Live rows over all shards."""
        return sum(int(st["rows"]) for st in self._set.states)

    def __len__(self) -> int:
        return self.rows

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def normalized(self) -> bool:
        return self._normalized

    @property
    def next_id(self) -> int:
        """One past the largest id ever used: the first id :meth:`add` gives by default."""
        return self._next_id

    @property
    def shards(self) -> int:
        return len(self._set.states)

    @property
    def shard_actors(self) -> list[Any]:
        """The shards' Ray actor handles, in shard order (for monitoring: ``ray.get(a.state.remote())``)."""
        return list(self._set.actors)

    @property
    def offsets(self) -> np.ndarray:
        """Each shard's first global id: a shard's local id ``i`` is global id ``offsets[s] + i``."""
        return self._router.offsets.copy()

    def shard_states(self) -> list[dict[str, Any]]:
        """Each shard's state as last reported (rows, method, storage, memory_bytes, node, pid, ...)."""
        return [dict(st) for st in self._set.states]

    def close(self) -> None:
        """Stops the shard actors (the Ray cluster itself is left running). Idempotent."""
        self._set.close()

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError("a ShardedIndex cannot be pickled (its shards live in Ray actors); save() it and load() "
                        "the directory in the other process")

    def __repr__(self) -> str:
        state = "closed" if not self._set.actors else f"rows={self.rows}"
        return f"ShardedIndex(shards={self.shards}, {state}, dims={self._dims}, normalized={self._normalized})"

