"""The NNdex class: its construction, search, mutation and persistence over nndex._nndex. Argument
types and array conversion are checked in nndex._arguments; values once, by the native side."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from nndex import _nndex
from nndex._arguments import (
    DEFAULT_SEED,
    as_approx,
    as_k,
    as_matrix,
    as_oversampling,
    as_storage,
    non_negative_int,
    positive_int,
)
from nndex._cache import (
    INDEX_CACHE,
    QUERY_CACHE_BYTES,
    QUERY_CACHE_ENTRIES,
    QUERY_CACHE_MAX_ROWS,
    CacheInfo,
    SharedIndex,
    content_digest,
)
from nndex._convert import check_frame, result_frames
from nndex._gpu import check_backend, gpu_info, warn_about_placement
from nndex._ids import as_filter, as_ids
from nndex._mapped import drop_mapped_pages, file_position, is_mapped


def _query_cache(native: Any, enable_cache: bool) -> Any:
    if not enable_cache:
        return None
    return _nndex.QueryCache(native, QUERY_CACHE_ENTRIES, QUERY_CACHE_BYTES, QUERY_CACHE_MAX_ROWS)


SearchResult = tuple[np.ndarray, np.ndarray]


class NNdex:
    """An index over the rows of a matrix, searched by cosine similarity (or raw dot product).

    Args:
        data: 2-D array-like of shape (rows, dims), float32 or float64 (a 1-D array is one row): a numpy
            array in any layout (read in place), a (nested) list, a pandas or polars DataFrame of numeric
            columns, a Series of lists or arrays, or a pyarrow Table (one list column, or numeric columns),
            Array or ChunkedArray of lists. :meth:`from_file` reads .npy, .npz and .parquet files.
        normalized: False (default) L2-normalises rows and queries, so scores are cosine similarities;
            True trusts the data as given and scores are raw dot products.
        approx: approximate search, re-ranked exactly. True (or "graph") builds a graph (HNSW) walked
            on int8 navigation codes, the fastest choice for single queries and batches; "ivf" builds an
            inverted-file index probed per query (True picks IVF when ``nlist``/``nprobe`` or
            ``storage="bf16"`` are given). Matrices too small to gain from either are searched exactly.
        backend: where exact float32 searches run: "cpu" (default); "gpu", a Vulkan GPU (see
            :func:`nndex.gpu_devices`) holding a copy of the rows, with the CPU's result contract;
            "auto", the best hardware GPU for calls large enough to gain and the CPU otherwise
            (software Vulkan devices are never chosen). Approximate and bf16/int8 indexes search on
            the CPU whatever it says (``backend="gpu"`` warns once). :attr:`backend` says which runs.
        enable_cache: True (default) keeps recent search results (see :meth:`cache_info`) and, for
            approximate indexes, reuses an index already built from identical data with identical
            options instead of running k-means again. False turns both off.
        gpu_device_index: the device for "gpu"/"auto" (an ``index`` of :func:`nndex.gpu_devices`);
            None takes the best one (discrete, then integrated, then virtual). Ignored on the CPU.
        threads: most threads one call may use; None uses every core.
        nlist: (IVF) number of clusters; None chooses about 2*sqrt(rows).
        nprobe: (IVF) clusters probed per query; None calibrates it at build time so that
            recall@10 reaches ``recall``.
        ef: (graph) candidates the walk keeps per query (hnswlib's ``ef``); None calibrates it at
            build time so that recall@10 reaches ``recall``. :meth:`search` can override it per call.
        graph_degree: (graph) neighbours per node on the bottom level (hnswlib's ``2 * M``); None: 32.
        ef_construction: (graph) candidates kept while linking a new node; None: 100.
        recall: (approx) target recall@10 for the calibration of nprobe or ef; the default aims for
            at least 0.95 on new queries (it calibrates for 0.96, a margin for sampling noise).
        seed: (approx) seed of the k-means sampling and of the graph's levels; equal seeds give
            identical IVF indexes (a graph built on several threads links in a timing-dependent order).
        storage: how rows are stored and scanned: "f32" (default: float32, scored exactly), "bf16"
            (bfloat16, half the bytes) or "int8" (a byte per value and a float scale per row, a
            quarter). Compressed rows choose a shortlist of ``ceil(k * oversampling)`` candidates
            (see :meth:`search`) that is re-scored in float32, so the similarities returned are the
            exact float32 ones; only a row the shortlist missed can differ from ``"f32"``'s results.
            Built from an array, the index holds the codes plus a float32 copy of the rows for that
            re-scoring; :meth:`from_file` on a ``.npy`` and :meth:`load` with ``mmap=True`` read those
            rows from the file instead.

    One index may be searched from many Python threads at once; the GIL is released while it works.
    """

    # _searcher is the query cache (which searches _index) or, with enable_cache=False, _index itself.
    __slots__ = ("_index", "_enable_cache", "_cache", "_searcher", "_shared", "_reused", "_placement", "__weakref__")

    def __init__(
        self,
        data: Any,
        normalized: bool = False,
        approx: bool = False,
        backend: str = "cpu",
        enable_cache: bool = True,
        gpu_device_index: int | None = None,
        *,
        threads: int | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        recall: float | None = None,
        seed: int | None = None,
        storage: str = "f32",
        ef: int | None = None,
        graph_degree: int | None = None,
        ef_construction: int | None = None,
        ids: Any = None,
    ) -> None:
        self._build(data, normalized, approx, backend, enable_cache, gpu_device_index, threads=threads, nlist=nlist,
                    nprobe=nprobe, recall=recall, seed=seed, storage=storage, ef=ef, graph_degree=graph_degree,
                    ef_construction=ef_construction, ids=ids)

    def _build(
        self,
        data: Any,
        normalized: bool = False,
        approx: bool | str = False,
        backend: str = "cpu",
        enable_cache: bool = True,
        gpu_device_index: int | None = None,
        *,
        threads: int | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        recall: float | None = None,
        seed: int | None = None,
        storage: str = "f32",
        ef: int | None = None,
        graph_degree: int | None = None,
        ef_construction: int | None = None,
        borrow: bool = False,
        rows_file: tuple[str, int] | None = None,
        ids: Any = None,
    ) -> None:
        """The constructor; ``borrow`` (from_file on a .npy) makes a compressed index re-score from
        ``data`` itself, kept alive by the index, instead of from a copy."""
        backend, device = check_backend(backend, gpu_device_index)
        approx, method = as_approx(approx)
        # Types are checked here; values by the native constructor (ranges, nlist <= rows, which
        # options need approx=True, nprobe with recall), except what its 0 = "choose" cannot carry.
        nlist_value = 0 if nlist is None else positive_int(nlist, "nlist")
        nprobe_value = 0 if nprobe is None else positive_int(nprobe, "nprobe")
        ef_value = 0 if ef is None else positive_int(ef, "ef")
        degree_value = 0 if graph_degree is None else positive_int(graph_degree, "graph_degree")
        efc_value = 0 if ef_construction is None else positive_int(ef_construction, "ef_construction")
        if recall is None:
            recall_value = 0.0
        else:
            if isinstance(recall, bool) or not isinstance(recall, (int, float, np.floating, np.integer)):
                raise TypeError(f"recall must be a float, got {type(recall).__name__}")
            recall_value = float(recall)
            if recall_value == 0.0:  # 0.0 means "the default" to the native side
                raise ValueError(f"recall must be in (0, 1], got {recall}")
        seed_value = DEFAULT_SEED if seed is None else non_negative_int(seed, "seed")
        threads_value = 0 if threads is None else positive_int(threads, "threads")
        storage_value = as_storage(storage)
        borrow = borrow and storage_value != "f32"
        enable_cache = bool(enable_cache)
        normalized = bool(normalized)

        arr = as_matrix(data, "data")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        id_values = None if ids is None else as_ids(ids)

        # Reuse an identical approximate index (exact builds are cheaper than hashing the data). An index
        # built with ids is not shared (the key would have to hold them too).
        key = None
        shared = None
        if enable_cache and approx and id_values is None:
            digest = content_digest(arr)
            if digest is not None:
                layout = "C" if arr.flags.c_contiguous else "F"
                key = (digest, arr.dtype.str, arr.shape, layout, normalized, threads_value,
                       nlist_value, nprobe_value, recall_value, seed_value, storage_value, method, ef_value,
                       degree_value, efc_value, backend, device)
                shared = INDEX_CACHE.get(key)
        self._reused = shared is not None
        if shared is None:
            native = _nndex.Index(
                arr, normalized, threads_value, approx, nlist_value, nprobe_value, recall_value, seed_value,
                storage_value, borrow, *(rows_file or ("", 0)), method, ef_value, degree_value, efc_value, id_values,
                backend, device,
            )
            if key is not None:
                shared = SharedIndex(native)
                INDEX_CACHE.put(key, shared)
        else:
            native = shared.native
        warn_about_placement(native, backend)
        self._index = native
        self._placement = (backend, device)
        self._shared = shared
        self._enable_cache = enable_cache
        self._cache = _query_cache(native, enable_cache)
        self._searcher = native if self._cache is None else self._cache

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, key: Optional[str] = None, progress: bool = False, **options: Any
    ) -> NNdex:
        """Builds an index from a matrix stored in a .npy, .npz or .parquet file (chosen by extension).

        * ``.npy``: float16, float32 or float64, C or Fortran order. float32/float64 files are
          memory-mapped and read once by the build; float16 is converted to float32 in chunks.
        * ``.npz``: ``key`` names the array (default: the only one); stored and deflate members.
        * ``.parquet`` (needs pyarrow): ``key`` names a list, large-list or fixed-size-list column of
          floats (default: the only such column); only that column is read.

        ``options`` are the constructor's (``normalized``, ``approx``, ``threads``, ``storage``, ...).
        With ``storage="bf16"`` or ``"int8"`` a float32/float64 ``.npy`` (either order) is not copied:
        the index keeps the file mapped and re-scores its shortlists from it, so its own memory
        (:attr:`memory_bytes`) is the codes and only the pages of re-scored rows are ever read
        after the build. Other files (and float16 ``.npy``) are read into memory first. ``progress``
        shows tqdm progress bars on stderr. A file that is not valid raises ``ValueError`` naming the
        file and the problem; a file that cannot be opened raises ``OSError`` (``FileNotFoundError``).
        """
        from nndex._io import load_matrix
        from nndex._progress import bar_factory, spinner

        data = load_matrix(path, key, progress=bar_factory() if progress else None)
        name = os.fspath(path)
        try:
            with spinner("building index", enabled=progress):
                return cls._from_loaded(data, name, **options)
        except ValueError as exc:
            raise ValueError(f"'{name}': {exc}") from None

    @classmethod
    def _from_loaded(cls, data: np.ndarray, name: str, **options: Any) -> NNdex:
        """Builds from what load_matrix read from file ``name``: compressed storage over a mapped .npy
        re-scores from the map itself (no float32 copy); everything else as the constructor."""
        borrow = (
            options.get("storage", "f32") != "f32"
            and os.path.splitext(name)[1].lower() == ".npy"
            and is_mapped(data)
        )
        if not borrow:
            return cls(data, **options)
        self = cls.__new__(cls)
        self._build(data, **options, borrow=True, rows_file=file_position(data))
        drop_mapped_pages(data)
        return self

    def search(
        self,
        query: Any,
        k: int = 10,
        dataframe: Any = None,
        *,
        nprobe: int | None = None,
        oversampling: float | None = None,
        ef: int | None = None,
        filter: Any = None,
    ) -> Union[SearchResult, Any, list[Any]]:
        """Returns (ids, similarities) of the min(k, rows) most similar rows, most similar first.

        A 1-D query gives 1-D int64 and float32 arrays; a 2-D (n, dims) query gives (n, min(k, rows))
        arrays. The "indices" are the rows' ids: their row numbers unless the index was built with
        ``ids=`` or has changed since (:meth:`add`, :meth:`remove`). Equal similarities are ordered by id.

        ``filter`` restricts the search to some rows: an array (or list, or set) of allowed ids, ids the
        index does not hold being ignored, or a boolean numpy array indexed by id (``mask[id]``; it needs
        more entries than the largest id). The result is then the best min(k, allowed rows) among the
        allowed rows, on exact and approximate indexes alike: exact indexes scan only the blocks that
        hold allowed rows; approximate ones search until they have k allowed results and score the
        allowed rows exactly when they are few enough for that to cost less. ``nprobe`` overrides the index's number of
        probed clusters for this call (IVF indexes only), ``ef`` the graph walk's candidates (graph indexes
        only; at least k are used). Queries may be anything the
        constructor accepts as data (numpy, lists, pandas, polars, pyarrow).

        ``oversampling`` (``storage="bf16"``/``"int8"`` and graph indexes; ignored by other float32
        indexes): the compressed scan (or, for a graph, the beam ranked by its int8 navigation codes)
        keeps ``ceil(k * oversampling)`` candidates per query, re-scored exactly in float32. None takes the storage's default (1.5 for bf16, 2 for int8, with at least k + 8
        candidates: recall@10 against exact float32 search of at least 0.999 and 0.995); larger values raise recall at the cost of more
        re-scoring; it must be at least 1. The name follows Qdrant's search parameter; faiss's
        ``IndexRefine`` calls the same factor ``k_factor``.

        With ``dataframe`` (a pandas or polars DataFrame with one row per index row), the matching rows
        of that frame come back instead, most similar first, with a float32 ``similarity`` column: one
        DataFrame for a single query (a 1-D query or a query of one row, such as ``frame.iloc[[0]]``),
        a list of DataFrames (one per query) for two or more queries, as the original library does.
        pandas keeps the index labels of the selected rows.
        """
        # Fast path for the commonest call (one float32 query, plain arguments), cached or not: the
        # native side checks k, dtype, contiguity and length itself and refuses a query it would have
        # to convert with TypeError.
        if (
            type(k) is int
            and nprobe is None
            and oversampling is None
            and ef is None
            and dataframe is None
            and filter is None
            and type(query) is np.ndarray
            and query.ndim == 1
        ):
            try:
                return self._searcher.search(query, k, 0)
            except TypeError:
                pass  # not float32 C-contiguous: converted below
        k = as_k(k)
        nprobe_value = 0 if nprobe is None else positive_int(nprobe, "nprobe")
        oversampling_value = as_oversampling(oversampling)
        ef_value = 0 if ef is None else positive_int(ef, "ef")
        filter_ids, filter_mask = as_filter(filter)
        frame_kind = None if dataframe is None else check_frame(dataframe, self._index.rows, self._index.next_id)
        if (
            type(query) is np.ndarray
            and query.dtype == np.float32
            and query.ndim == 1
            and query.flags.c_contiguous
        ):
            q = query
        else:
            q = as_matrix(query, "query")
            if q.ndim == 1:
                q = np.ascontiguousarray(q, dtype=np.float32)
        if q.ndim == 1:
            result = self._searcher.search(q, k, nprobe_value, oversampling_value, ef_value, filter_ids, filter_mask)
        else:
            result = self._searcher.search_batch(q, k, nprobe_value, oversampling_value, ef_value, filter_ids,
                                                 filter_mask)
        if frame_kind is None:
            return result
        return result_frames(dataframe, frame_kind, *result)

    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """Adds rows; returns their int64 ids.

        ``vectors`` takes every form the constructor accepts (a 1-D array is one row), validated and
        normalised the same way. ``ids``: one unique non-negative integer per row, none already in the
        index; None gives consecutive ids after the largest id ever used (so default ids stay row
        numbers while rows are only added). A duplicate, negative or present id, a NaN or a wrong
        number of dims raises ``ValueError`` and adds nothing. Searches running meanwhile see the
        index before or after the whole call, never part of it. Approximate indexes keep small additions
        in exact segments and build graph (or IVF) segments once they are large enough, calibrated
        like the first (see :attr:`segments`)."""
        arr = as_matrix(vectors, "vectors")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        id_values = None if ids is None else as_ids(ids)
        self._own_native()
        return self._index.add(arr, id_values)

    def remove(self, ids: Any) -> int:
        """Removes the rows with these ids (an int, or integers); returns how many.

        An id not in the index, or given twice, raises ``ValueError`` naming it and removes nothing.
        Removed rows are never returned again. Their space is reclaimed by :meth:`compact`, or
        automatically for a segment once a quarter of its rows are removed (it is rebuilt from the rest)."""
        id_values = as_ids(ids)
        self._own_native()
        return self._index.remove(id_values)

    def compact(self) -> None:
        """Rebuilds the index into one segment of its live rows: reclaims removed rows' space and, for
        approximate indexes, re-calibrates. Ids are unchanged."""
        self._own_native()
        self._index.compact()

    def _own_native(self) -> None:
        """Before a change: an approximate index reused from the index cache is shared with the other
        NNdex objects built from the same data, so this one takes a private copy first."""
        if self._shared is None:
            return
        native = _nndex.Index.from_bytes(self._index.to_bytes(), self._index.threads, *self._placement)
        self._init_wrapper(native, self._enable_cache, self._placement)

    @property
    def ids(self) -> np.ndarray:
        """The live rows' ids (int64), in stored order: 0..rows-1 for an index built without ``ids``."""
        return self._index.live_ids()

    @property
    def next_id(self) -> int:
        """The id :meth:`add` gives the next row by default: one past the largest id ever used."""
        return self._index.next_id

    @property
    def segments(self) -> int:
        """Segments searched: 1 after a build, :meth:`compact` or a load of such an index; :meth:`add`
        keeps O(log rows) of them by merging each new one with the newest ones no larger than it."""
        return self._index.segments

    @property
    def removed_rows(self) -> int:
        """Rows removed whose space is not yet reclaimed (see :meth:`remove`)."""
        return self._index.removed_rows

    def __len__(self) -> int:
        return self._index.rows

    def __contains__(self, id: Any) -> bool:
        if isinstance(id, (bool, np.bool_)) or not isinstance(id, (int, np.integer)):
            return False
        return 0 <= id < 2**63 and self._index.contains(int(id))

    def cache_info(self) -> CacheInfo:
        """Hits, misses and sizes of this index's query-result cache (see :class:`nndex.CacheInfo`)."""
        cache = self._cache
        if cache is None:
            return CacheInfo(False, 0, 0, 0, 0, 0, 0, False)
        hits, misses, entries, size = cache.stats()
        return CacheInfo(True, hits, misses, entries, size, cache.max_entries, cache.max_bytes, self._reused)

    def clear_cache(self) -> None:
        """Forgets this index's cached search results and resets the hit and miss counts."""
        if self._cache is not None:
            self._cache.clear()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index to one file (format: docs/index-format.md), atomically.

        The file holds the stored (normalised) matrix, the options, the storage (with its codes), any
        IVF or graph structure, and the ids and removed rows of an index that has them, so :meth:`load`
        rebuilds nothing. A loaded index (mapped or not) accepts :meth:`add` and :meth:`remove`: new rows
        go to new segments in memory, removals are recorded beside the mapped pages, which are never
        written; :meth:`save` writes all of it to a file again.
        """
        self._index.save(os.fspath(path))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        mmap: bool = True,
        *,
        threads: int | None = None,
        enable_cache: bool = True,
        verify: bool = True,
        backend: str = "cpu",
        gpu_device_index: int | None = None,
    ) -> NNdex:
        """Reads an index written by :meth:`save`.

        With ``mmap=True`` the file is mapped read-only and searched in place: processes that load the
        same file share its pages; a bf16/int8 index then holds next to no anonymous memory, its
        codes and float32 rows being paged in from the file as searches touch them. The index keeps
        the file's ``storage``. ``verify=True`` (the default) checks every section's checksum,
        which reads the whole file once (several GB/s from the page cache); ``verify=False`` skips
        that pass for trusted files, making a mapped load nearly instant, while the file's structure
        (sizes, bounds, layout) is still validated. A missing file raises ``FileNotFoundError``; a
        file that is not a valid index raises ``ValueError``. ``backend`` and ``gpu_device_index`` are
        the constructor's: an exact float32 index is copied onto the GPU they choose.
        """
        threads_value = 0 if threads is None else positive_int(threads, "threads")
        placement = check_backend(backend, gpu_device_index)
        native = _nndex.Index.load(os.fspath(path), bool(mmap), threads_value, bool(verify), *placement)
        warn_about_placement(native, placement[0])
        return cls._wrap(native, enable_cache, placement)

    @classmethod
    def _wrap(cls, native: Any, enable_cache: bool, placement: tuple[str, int] = ("cpu", -1)) -> NNdex:
        self = cls.__new__(cls)
        self._init_wrapper(native, enable_cache, placement)
        return self

    def _init_wrapper(self, native: Any, enable_cache: bool, placement: tuple[str, int] = ("cpu", -1)) -> None:
        self._index = native
        self._placement = placement
        self._enable_cache = bool(enable_cache)
        self._cache = _query_cache(native, self._enable_cache)
        self._searcher = native if self._cache is None else self._cache
        self._shared = None
        self._reused = False

    def __getstate__(self) -> dict[str, Any]:
        return {"index": self._index.to_bytes(), "enable_cache": self._enable_cache, "backend": self._placement[0]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The backend asked for, not the device: the unpickling machine picks its own ("gpu" there
        # without a GPU is the constructor's ValueError).
        placement = (state.get("backend", "cpu"), -1)
        self._init_wrapper(_nndex.Index.from_bytes(state["index"], 0, *placement), state["enable_cache"], placement)

    @property
    def rows(self) -> int:
        """Number of live rows (added, not removed)."""
        return self._index.rows

    @property
    def dims(self) -> int:
        """Length of every row and query."""
        return self._index.dims

    @property
    def normalized(self) -> bool:
        """True: raw dot products; False: cosine similarities (rows and queries L2-normalised)."""
        return self._index.normalized

    @property
    def approx(self) -> bool:
        """Whether approximate search was requested (see :attr:`method` for what was built)."""
        return self._index.approx

    @property
    def method(self) -> str:
        """The structure searched: "graph", "ivf", or "exact" (also when approx fell back to exact
        search on a small matrix)."""
        return self._index.method

    @property
    def ef(self) -> int:
        """Graph indexes: candidates the walk keeps per query by default (0 for other methods)."""
        return self._index.ef

    @property
    def uses_ivf(self) -> bool:
        """Whether the index searches with IVF; False when approx=True fell back to exact search on a
        small matrix (and always False for exact indexes)."""
        return self._index.uses_ivf

    @property
    def nlist(self) -> int:
        """Clusters of the IVF index (1 when the index searches exactly)."""
        return self._index.nlist

    @property
    def nprobe(self) -> int:
        """Clusters probed per query by default (1 when the index searches exactly)."""
        return self._index.nprobe

    @property
    def backend(self) -> str:
        """Where exact searches run: "gpu" when the index's rows are on a GPU (``backend="auto"``:
        for calls large enough to gain; smaller ones run on the CPU), else "cpu"."""
        return self._index.backend

    @property
    def gpu_info(self) -> dict[str, Any] | None:
        """The GPU the index searches on (see :func:`nndex.gpu_devices`; with the original library's
        keys too: ``driver_info``, ``backend``, ``device_type``), or None on the CPU."""
        return gpu_info(self._index)

    @property
    def threads(self) -> int:
        """Most threads one call uses (every core when the index was built with threads=None)."""
        return self._index.threads

    @property
    def isa(self) -> str:
        """The kernel level in use: "avx512", "avx2", "neon" or "scalar" (NNDEX_ISA can lower it)."""
        return self._index.isa

    @property
    def storage(self) -> str:
        """How rows are stored: "f32", "bf16" or "int8" (see the constructor)."""
        return self._index.storage

    @property
    def memory_bytes(self) -> int:
        """Bytes the index holds in anonymous memory: its rows (or codes), and for bf16/int8 the float32
        rows for re-scoring unless they are read from a file (``from_file`` on a .npy, a mapped
        ``load``). A mapped load holds next to nothing: its pages belong to the file."""
        return self._index.memory_bytes

    def __repr__(self) -> str:
        ivf = f", method='ivf', nlist={self.nlist}, nprobe={self.nprobe}" if self.uses_ivf else ""
        if self.method == "graph":
            ivf = f", method='graph', ef={self.ef}"
        storage = self.storage
        stored = "" if storage == "f32" else f", storage={storage!r}"
        return (
            f"NNdex(rows={self.rows}, dims={self.dims}, normalized={self.normalized}, approx={self.approx}{ivf}"
            f"{stored}, backend={self.backend!r}, threads={self.threads}, isa={self.isa!r})"
        )
