"""A saved ShardedIndex: one ``.nndex`` file per shard (written by the shard itself), ``routing.npz``
(ids assigned to shards after construction) and ``manifest.json``, written last.

manifest.json::

    {"format": "nndex-sharded", "version": 1, "dims": 384, "normalized": false, "next_id": 1000000,
     "shards": [{"file": "shard-00000.nndex", "offset": 0, "span": 500000}, ...],
     "routing": "routing.npz" | null}

A shard's file holds its local ids; global id = offset + local id. ``span`` is the run of global ids
the shard was given first (see _router.py)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from nndex.distributed._router import IdRouter

if TYPE_CHECKING:
    from nndex.distributed._sharded import ShardedIndex

FORMAT = "nndex-sharded"
VERSION = 1
MANIFEST = "manifest.json"
ROUTING = "routing.npz"


def _replace_atomically(path: str, write: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_manifest(index: ShardedIndex, directory: str) -> None:
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    sset, router = index._set, index._router
    names = [f"shard-{s:05d}.nndex" for s in range(len(sset))]
    paths = [os.path.join(directory, name) for name in names]
    sset.call_all(range(len(sset)), lambda s: sset.actors[s].save.remote(len(sset.logs[s]), paths[s]), None,
                  "saving shards")
    routing = None
    if router.extra_ids.size:
        routing = ROUTING

        def write_routing(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, ids=router.extra_ids, shards=router.extra_shards)

        _replace_atomically(os.path.join(directory, ROUTING), write_routing)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "dims": index.dims,
        "normalized": index.normalized,
        "next_id": index.next_id,
        "shards": [{"file": name, "offset": int(o), "span": int(n)}
                   for name, o, n in zip(names, router.offsets, router.spans)],
        "routing": routing,
    }

    def write_json(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)

    _replace_atomically(os.path.join(directory, MANIFEST), write_json)


def _int(value: Any, what: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'{path}': {what} must be a non-negative integer, got {value!r}")
    return value


def read_manifest(directory: str) -> tuple[list[str], IdRouter, int]:
    """(shard files, the router, next_id) of a saved ShardedIndex; ValueError naming the problem."""
    directory = os.path.abspath(directory)
    path = os.path.join(directory, MANIFEST)
    with open(path, encoding="utf-8") as f:  # FileNotFoundError when this is not a saved ShardedIndex
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"'{path}' is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"'{path}' is not a ShardedIndex manifest (format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise ValueError(f"'{path}' has version {manifest.get('version')!r}; this nndex reads version {VERSION}")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        raise ValueError(f"'{path}': shards must be a non-empty list")
    files, offsets, spans = [], [], []
    for s, entry in enumerate(shards):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError(f"'{path}': shard {s} must be an object with a file name")
        name = entry["file"]
        if os.path.basename(name) != name:
            raise ValueError(f"'{path}': shard {s} file {name!r} must be a plain file name in the directory")
        files.append(os.path.join(directory, name))
        offsets.append(_int(entry.get("offset"), f"shard {s} offset", path))
        spans.append(_int(entry.get("span"), f"shard {s} span", path))
    if any(b < a + n for a, n, b in zip(offsets, spans, offsets[1:])):
        raise ValueError(f"'{path}': shard offsets must be increasing, each past the previous shard's span")
    next_id = _int(manifest.get("next_id"), "next_id", path)
    router = IdRouter(np.asarray(offsets), np.asarray(spans))
    if manifest.get("routing") is not None:
        if manifest["routing"] != ROUTING:
            raise ValueError(f"'{path}': routing must be {ROUTING!r} or null")
        with np.load(os.path.join(directory, ROUTING), allow_pickle=False) as z:
            ids, owners = np.asarray(z["ids"], np.int64), np.asarray(z["shards"], np.int64)
        if ids.shape != owners.shape or ids.ndim != 1 or (owners.size and not (0 <= owners.min() <= owners.max() < len(files))):
            raise ValueError(f"'{os.path.join(directory, ROUTING)}': ids and shards must be equal-length, shards in range")
        if np.any(np.diff(ids) <= 0):
            raise ValueError(f"'{os.path.join(directory, ROUTING)}': ids must be sorted and distinct")
        router = IdRouter(router.offsets, router.spans, ids, owners)
    return files, router, next_id
