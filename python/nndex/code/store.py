"""The on-disk index of a source tree, in ``<root>/.nndex/``.

- ``index.nndex``: the nndex index of the chunk vectors (``NNdex.save``; searched memory-mapped);
- ``vectors.npy``: the same vectors, float32 (n, dims), unit length, so that an incremental
  ``embed`` reuses the vectors of unchanged files;
- ``lexical.npz``: the BM25 weights of the chunks' words (``lexical.py``);
- ``chunks.npz``: what each row is (file, 1-based inclusive start and end line, kind, name, preview),
  by column (``ChunkTable``): parsing the same as JSON took 0.3 s at 100,000 chunks, most of a search;
- ``chunks.json``: each file's SHA-256 and chunk range, the embedding provider and model, the
  dimensions, the chunker settings and when and how fast the index was built (format version 1 also
  held the chunks, and is still read);
- ``.gitignore``: ``*``, so the index is never committed by accident.

Files are written under temporary names and renamed into place, ``chunks.json`` last: a reader sees
the old index or the new one. Row counts are cross-checked on load.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nndex.code.archive import open_arrays
from nndex.code.discovery import INDEX_DIR_NAME
from nndex.code.errors import CodeSearchError

INDEX_FILE = "index.nndex"
VECTORS_FILE = "vectors.npy"
META_FILE = "chunks.json"
CHUNKS_FILE = "chunks.npz"
LEXICAL_FILE = "lexical.npz"
FORMAT = "nndex-code"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_TEXT_COLUMNS = ("file", "kind", "name", "preview")


class ChunkTable(Sequence):
    """The chunks' rows by column; ``table[i]`` is the row's dict (file, start_line, end_line, kind, name,
    preview), built when asked for, and a slice a list of them."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self._start, self._end = columns["start_line"], columns["end_line"]
        self._text = {name: (columns[f"{name}_bytes"], columns[f"{name}_offsets"]) for name in _TEXT_COLUMNS}
        n = self._start.size
        for name, (blob, offsets) in self._text.items():
            if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != blob.size or np.any(np.diff(offsets) < 0):
                raise ValueError(f"column {name} does not fit its {n} rows")
        if self._end.shape != (n,):
            raise ValueError("the line columns differ in length")

    @staticmethod
    def columns(chunks: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
        out = {"start_line": np.asarray([c["start_line"] for c in chunks], np.int32).reshape(-1),
               "end_line": np.asarray([c["end_line"] for c in chunks], np.int32).reshape(-1)}
        for name in _TEXT_COLUMNS:
            encoded = [str(c.get(name, "")).encode("utf-8") for c in chunks]
            offsets = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
            out[f"{name}_bytes"] = np.frombuffer(b"".join(encoded), np.uint8)
            out[f"{name}_offsets"] = offsets
        return out

    def __len__(self) -> int:
        return int(self._start.size)

    def _string(self, name: str, i: int) -> str:
        blob, offsets = self._text[name]
        return blob[offsets[i] : offsets[i + 1]].tobytes().decode("utf-8")

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        row = {"file": self._string("file", i), "start_line": int(self._start[i]), "end_line": int(self._end[i])}
        row.update((name, self._string(name, i)) for name in ("kind", "name", "preview"))
        return row


def index_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / INDEX_DIR_NAME


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class StoredIndex:
    """An index read back from disk: its metadata, and (on demand) its vectors and nndex index."""

    root: Path
    meta: dict[str, Any]
    _table: Any = field(default=None, repr=False)

    @property
    def directory(self) -> Path:
        return index_dir(self.root)

    @property
    def chunks(self) -> Sequence[dict[str, Any]]:
        if "chunks" in self.meta:  # format version 1
            return self.meta["chunks"]
        if self._table is None:
            path = self.directory / CHUNKS_FILE
            try:
                self._table = ChunkTable(open_arrays(path))  # mapped: a search reads the rows it shows
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                raise CodeSearchError(f"the index at {self.directory} is damaged ({CHUNKS_FILE}: {exc}); "
                                      "re-run 'nndex code embed'") from None
            if len(self._table) != self.meta.get("num_chunks"):
                raise CodeSearchError(f"the index at {self.directory} is inconsistent ({CHUNKS_FILE} has "
                                      f"{len(self._table)} rows, chunks.json {self.meta.get('num_chunks')}); "
                                      "re-run 'nndex code embed'")
        return self._table

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.meta["files"]

    @property
    def dims(self) -> int:
        return int(self.meta["dims"])

    def load_vectors(self, mmap: bool = False) -> np.ndarray:
        path = self.directory / VECTORS_FILE
        try:
            vectors = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise CodeSearchError(f"the index at {self.directory} is damaged ({VECTORS_FILE}: {exc})") from None
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape != (len(self.chunks), self.dims):
            raise CodeSearchError(
                f"the index at {self.directory} is damaged: {VECTORS_FILE} has shape {vectors.shape}, "
                f"expected ({len(self.chunks)}, {self.dims})"
            )
        return vectors

    def load_lexical(self) -> Any:
        """The BM25 index (lexical.LexicalIndex), or None for an index built before nndex had one."""
        from nndex.code.lexical import LexicalIndex

        if self.meta.get("lexical") != LEXICAL_FILE:
            return None
        try:
            lexical = LexicalIndex.load(self.directory / LEXICAL_FILE)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise CodeSearchError(f"the index at {self.directory} is damaged ({LEXICAL_FILE}: {exc}); "
                                  "re-run 'nndex code embed'") from None
        if lexical.rows != len(self.chunks):
            raise CodeSearchError(f"the index at {self.directory} is inconsistent ({LEXICAL_FILE} has {lexical.rows} "
                                  f"rows for {len(self.chunks)} chunks); re-run 'nndex code embed'")
        return lexical

    def load_nndex(self, verify: bool = False) -> Any:
        """The nndex index, memory-mapped. Its structure (sizes, bounds) is always validated; the
        checksums only with ``verify``: they read the whole file, the largest cost of a search at
        100,000 chunks (70 of ~170 ms to open the index), and this file is a cache that ``embed``
        writes atomically and rebuilds; ``nndex code info`` verifies them."""
        from nndex import NNdex

        path = self.directory / INDEX_FILE
        try:
            index = NNdex.load(path, mmap=True, verify=verify)
        except FileNotFoundError:
            raise CodeSearchError(f"the index at {self.directory} is incomplete ({INDEX_FILE} is missing); re-run 'nndex code embed'") from None
        except (OSError, ValueError) as exc:
            raise CodeSearchError(f"the index at {self.directory} is damaged ({INDEX_FILE}: {exc}); re-run 'nndex code embed'") from None
        if index.rows != len(self.chunks) or index.dims != self.dims:
            raise CodeSearchError(
                f"the index at {self.directory} is inconsistent ({index.rows}x{index.dims} vectors for "
                f"{len(self.chunks)} chunks of {self.dims} dims); re-run 'nndex code embed'"
            )
        return index


def load(root: str | os.PathLike[str]) -> StoredIndex | None:
    """The index of ``root``, or None when there is none; a damaged one raises CodeSearchError."""
    root = Path(root)
    path = index_dir(root) / META_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CodeSearchError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        meta = json.loads(text)
    except ValueError:
        raise CodeSearchError(f"the index metadata {path} is not valid JSON; re-run 'nndex code embed'") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CodeSearchError(f"{path} is not an nndex code index; re-run 'nndex code embed'")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CodeSearchError(
            f"the index at {index_dir(root)} has format version {meta.get('version')}, this nndex reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; re-run 'nndex code embed'"
        )
    for key in ("chunks" if meta["version"] == 1 else "num_chunks", "files", "dims", "provider"):
        if key not in meta:
            raise CodeSearchError(f"the index metadata {path} lacks '{key}'; re-run 'nndex code embed'")
    return StoredIndex(root, meta)


def save(root: str | os.PathLike[str], meta: dict[str, Any], vectors: np.ndarray, lexical: Any = None) -> Path:
    """Writes vectors, the nndex index, the lexical index and the metadata (last) into ``root/.nndex``."""
    from nndex import NNdex

    directory = index_dir(root)
    try:
        directory.mkdir(exist_ok=True)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by nndex code: the index is not source\n*\n", encoding="utf-8")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        _atomic_write(directory / VECTORS_FILE, lambda fh: np.save(fh, vectors, allow_pickle=False))
        index = NNdex(vectors, normalized=True)
        tmp = directory / (INDEX_FILE + ".tmp")
        index.save(tmp)  # NNdex.save writes atomically itself; the rename keeps the commit order
        os.replace(tmp, directory / INDEX_FILE)
        meta = dict(meta)
        columns = ChunkTable.columns(meta.pop("chunks"))
        _atomic_write(directory / CHUNKS_FILE, lambda fh: np.savez(fh, **columns))
        meta["version"] = FORMAT_VERSION
        if lexical is not None:
            _atomic_write(directory / LEXICAL_FILE, lexical.save)
            meta = {**meta, "lexical": LEXICAL_FILE}
        payload = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        _atomic_write(directory / META_FILE, lambda fh: fh.write(payload))
    except OSError as exc:
        raise CodeSearchError(f"cannot write the index into {directory}: {exc.strerror or exc}") from None
    return directory
