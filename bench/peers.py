"""One small adapter per library: what a user of that library would write, on normalised float32
data with inner-product similarity.

Exact adapters (`EXACT_PEERS`): prepare(M, threads) once per (shape, thread count), then
search(q, k) with a 1-D query or an (n, dims) batch, returning (ids, similarities) with the best
first. Approximate adapters (`ANN_PEERS`): build(X, threads), set(param) for one point of the
recall/speed sweep, search(...) as above, set_threads(t) to change the thread count of later searches
(ann_vs_hnswlib.py builds on all threads and searches on 1 and 2). A build that the installed library
cannot do raises `Unsupported` (reported as "n/a"). Sweep values are ints, or (outer, inner) tuples for
two-parameter sweeps (inner cheapest first).

Nothing here is timed; exact_suite.py and ann_suite.py do that.
"""

from __future__ import annotations

import inspect
import math
import tempfile
from pathlib import Path

import numpy as np

from common import package_version, usable_cpus

# Bytes per (query, row) pair that a peer materialising the full score matrix needs: the float32
# scores, the int64 argpartition result and a float32 temporary.
DENSE_BYTES_PER_PAIR = 16


def _topk_rows(S: np.ndarray, k: int):
    """Top-k of each row of a score matrix, best first (stable among equal scores)."""
    kk = min(k, S.shape[1])
    part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _topk_vector(s: np.ndarray, k: int):
    kk = min(k, s.shape[0])
    part = np.argpartition(-s, kk - 1)[:kk]
    order = part[np.argsort(-s[part], kind="stable")]
    return order, s[order]


# ---------------------------------------------------------------------------
# Exact search
# ---------------------------------------------------------------------------

class ExactPeer:
    key = ""
    label = ""
    dist = None  # pip distribution name, for the version
    # Whether this library keeps BLAS / OpenMP threads spinning after a call (see common.settle).
    spins = False
    materialises_scores = False  # builds the full (queries x rows) score matrix

    @classmethod
    def version(cls) -> str | None:
        return package_version(cls.dist) if cls.dist else None

    @classmethod
    def available(cls) -> str | None:
        """None when usable, else why not."""
        return None

    def prepare(self, M: np.ndarray, threads: int) -> None:
        raise NotImplementedError

    def search(self, q: np.ndarray, k: int):
        raise NotImplementedError

    def close(self) -> None:
        pass


class NndexExact(ExactPeer):
    key, label, dist = "nndex", "nndex", "nndex"

    @classmethod
    def available(cls):
        try:
            import nndex  # noqa: F401
        except ImportError as exc:
            return f"import failed: {exc}"
        return None

    def prepare(self, M, threads):
        from nndex import NNdex
        # No result cache: the suite repeats the same query, which would time cache hits.
        self.index = NNdex(M, normalized=True, threads=threads, enable_cache=False)

    def search(self, q, k):
        return self.index.search(q, k=k)

    def close(self):
        self.index = None


class NumpyExact(ExactPeer):
    """M @ q + argpartition; Q @ M.T for batches (OpenBLAS sgemv / sgemm)."""
    key, label, dist = "numpy", "numpy", "numpy"
    spins = True
    materialises_scores = True

    def prepare(self, M, threads):
        self.M = M

    def search(self, q, k):
        if q.ndim == 1:
            return _topk_vector(self.M @ q, k)
        return _topk_rows(q @ self.M.T, k)

    def close(self):
        self.M = None


class SimsimdExact(ExactPeer):
    """simsimd.cdist with the "dot" metric (the inner product, = cosine on unit rows) into float32,
    then argpartition."""
    key, label, dist = "simsimd", "simsimd", "simsimd"
    materialises_scores = True

    @classmethod
    def available(cls):
        try:
            import simsimd  # noqa: F401
        except ImportError as exc:
            return f"not installed ({exc})"
        return None

    def prepare(self, M, threads):
        import simsimd
        self.cdist = simsimd.cdist
        self.M = M
        self.threads = threads

    def search(self, q, k):
        Q = q[None, :] if q.ndim == 1 else q
        S = np.asarray(self.cdist(Q, self.M, metric="dot", out_dtype="float32", threads=self.threads))
        if q.ndim == 1:
            return _topk_vector(S[0], k)
        return _topk_rows(S, k)

    def close(self):
        self.M = None


class FaissFlat(ExactPeer):
    """faiss.IndexFlatIP (a copy of the rows; BLAS sgemm for batches of 20+ queries)."""
    key, label, dist = "faiss_flat", "faiss IndexFlatIP", "faiss-cpu"
    spins = True

    @classmethod
    def available(cls):
        try:
            import faiss  # noqa: F401
        except ImportError as exc:
            return f"not installed ({exc})"
        return None

    def prepare(self, M, threads):
        import faiss
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexFlatIP(M.shape[1])
        self.index.add(M)

    def search(self, q, k):
        if q.ndim == 1:
            D, I = self.index.search(q[None, :], k)
            return I[0], D[0]
        D, I = self.index.search(q, k)
        return I, D

    def close(self):
        self.index = None


class UsearchExact(ExactPeer):
    """usearch.index.search(..., exact=True): usearch's brute-force path (SIMD kernels, no index)."""
    key, label, dist = "usearch_exact", "usearch exact", "usearch"

    @classmethod
    def available(cls):
        try:
            import usearch.index  # noqa: F401
        except ImportError as exc:
            return f"not installed ({exc})"
        return None

    def prepare(self, M, threads):
        from usearch.index import MetricKind, search
        self._search = search
        self.metric = MetricKind.IP
        self.M = M
        self.threads = threads

    def search(self, q, k):
        m = self._search(self.M, q, k, self.metric, exact=True, threads=self.threads)
        # The "ip" distance is 1 - <q, x>.
        return m.keys, 1.0 - m.distances

    def close(self):
        self.M = None


# Timed in this order within a cell; the BLAS users come last, and the suite lets their spinning
# threads settle before the next cell starts with nndex.
EXACT_PEERS = [NndexExact, SimsimdExact, UsearchExact, FaissFlat, NumpyExact]


# ---------------------------------------------------------------------------
# Approximate search
# ---------------------------------------------------------------------------

IVF_NPROBES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512,
               640, 768, 1024, 1280, 1536, 2048]
HNSW_EFS = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024,
            1536, 2048]
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
FAISS_NLIST_PER_SQRT = 4      # nlist = 4 sqrt(n)
FAISS_TRAIN_PER_LIST = 40     # k-means training sample: 40 points per list (faiss warns below 39)


class Unsupported(Exception):
    """The installed library cannot build this index (the peer is reported as "n/a")."""


class AnnPeer:
    key = ""
    label = ""
    dist = None
    param = ""          # name of the swept search parameter
    spins = False

    @classmethod
    def version(cls) -> str | None:
        return package_version(cls.dist) if cls.dist else None

    @classmethod
    def available(cls) -> str | None:
        return None

    def build(self, X: np.ndarray, threads: int) -> None:
        raise NotImplementedError

    def sweep_values(self) -> list[int]:
        raise NotImplementedError

    def set(self, value) -> None:
        raise NotImplementedError

    def set_threads(self, threads: int) -> None:
        """Threads of later searches (adapters that pass threads per call read self.threads)."""
        self.threads = threads

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        """ids, (k,) for a 1-D query or (n, k) for a batch."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Build settings worth reporting."""
        return {}

    def memory_reported(self) -> int | None:
        """The library's own idea of its index size in bytes, when it has one."""
        return None


class NndexIvf(AnnPeer):
    key, label, dist, param = "nndex_ivf", "nndex approx (IVF)", "nndex", "nprobe"
    approx_modes = ("ivf", True)  # "ivf" is the newer spelling; older nndex take approx=True

    @classmethod
    def available(cls):
        return NndexExact.available()

    def build(self, X, threads):
        self.X, self.threads, self.notes = X, threads, []
        self.index = self._new(X, threads)
        self.nprobe = None  # None: the index's own (calibrated) default

    def _new(self, X, threads):
        from nndex import NNdex
        for i, mode in enumerate(self.approx_modes):
            try:
                # No result or index cache: every build runs, and every search is computed.
                index = NNdex(X, normalized=True, approx=mode, threads=threads, enable_cache=False)
                self.mode = mode
                return index
            except (TypeError, ValueError) as exc:
                if i == len(self.approx_modes) - 1:
                    raise Unsupported(f"NNdex(approx={mode!r}) failed: {exc}") from None

    def set_threads(self, threads):
        """nndex fixes its thread count when an index is made: save and load the index with the new
        count (nothing is rebuilt); where save/load fails, rebuild (untimed) and say so."""
        if threads == self.index.threads:
            return
        from nndex import NNdex
        try:
            with tempfile.TemporaryDirectory(prefix="nndex-peer-") as tmp:
                path = Path(tmp) / "index.nndex"
                self.index.save(path)
                self.index = NNdex.load(path, mmap=False, threads=threads, enable_cache=False, verify=False)
        except Exception as exc:  # noqa: BLE001 (any failure: fall back to a rebuild)
            self.notes.append(f"save/load failed ({type(exc).__name__}: {exc}); rebuilt with threads={threads}")
            self.index = None
            self.index = self._new(self.X, threads)

    def sweep_values(self):
        nlist = self.index.nlist
        return [p for p in IVF_NPROBES if p <= nlist] + ([nlist] if nlist not in IVF_NPROBES else [])

    def set(self, value):
        self.nprobe = value

    def search(self, q, k):
        if self.nprobe is None:
            return self.index.search(q, k=k)[0]
        return self.index.search(q, k=k, nprobe=self.nprobe)[0]

    def describe(self):
        ix = self.index
        return {"nlist": ix.nlist, "default_nprobe": ix.nprobe, "uses_ivf": bool(ix._index.uses_ivf),
                "settings": f"NNdex(X, normalized=True, approx={self.mode!r}, enable_cache=False): defaults (nlist ~ "
                            "2 sqrt(n), nprobe calibrated at build time for recall@10 0.95)"}

    def memory_reported(self):
        return int(self.index.memory_bytes)


class FaissIvf(AnnPeer):
    key, label, dist, param = "faiss_ivf", "faiss IndexIVFFlat", "faiss-cpu", "nprobe"
    spins = True

    @classmethod
    def available(cls):
        return FaissFlat.available()

    def build(self, X, threads):
        import faiss
        sample = self._setup(X, threads)
        self.quantizer = faiss.IndexFlatIP(X.shape[1])
        self.index = faiss.IndexIVFFlat(self.quantizer, X.shape[1], self.nlist, faiss.METRIC_INNER_PRODUCT)
        self.index.train(sample)
        self.index.add(X)

    def _setup(self, X, threads):
        """Threads, nlist = 4 sqrt(n) and the k-means training sample (40 rows per list)."""
        import faiss
        faiss.omp_set_num_threads(threads)
        n = X.shape[0]
        self.nlist = max(1, min(n // 4, int(round(FAISS_NLIST_PER_SQRT * math.sqrt(n)))))
        self.ntrain = min(n, FAISS_TRAIN_PER_LIST * self.nlist)
        rng = np.random.default_rng(12345)
        return X[np.sort(rng.choice(n, self.ntrain, replace=False))] if self.ntrain < n else X

    def set_threads(self, threads):
        import faiss
        faiss.omp_set_num_threads(threads)

    def sweep_values(self):
        return [p for p in IVF_NPROBES if p <= self.nlist]

    def set(self, value):
        self.index.nprobe = value

    def search(self, q, k):
        if q.ndim == 1:
            return self.index.search(q[None, :], k)[1][0]
        return self.index.search(q, k)[1]

    def describe(self):
        return {"nlist": self.nlist, "train_points": self.ntrain,
                "settings": f"IndexIVFFlat(IndexFlatIP, nlist={self.nlist} = {FAISS_NLIST_PER_SQRT} sqrt(n), "
                            f"METRIC_INNER_PRODUCT), trained on {self.ntrain} sampled rows "
                            f"({FAISS_TRAIN_PER_LIST} per list), faiss's default k-means iterations"}


class UsearchHnsw(AnnPeer):
    key, label, dist, param = "usearch_hnsw", "usearch HNSW", "usearch", "ef"

    @classmethod
    def available(cls):
        return UsearchExact.available()

    def build(self, X, threads):
        from usearch.index import Index
        self.threads = threads
        self.index = Index(ndim=X.shape[1], metric="ip", dtype="f32", connectivity=HNSW_M,
                           expansion_add=HNSW_EF_CONSTRUCTION)
        self.index.add(np.arange(X.shape[0], dtype=np.uint64), X, threads=threads)

    def sweep_values(self):
        return list(HNSW_EFS)

    def set(self, value):
        self.index.expansion_search = value

    def search(self, q, k):
        m = self.index.search(q, k, threads=self.threads)
        return m.keys.astype(np.int64)

    def describe(self):
        return {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                "settings": f"Index(metric='ip', dtype='f32', connectivity={HNSW_M}, "
                            f"expansion_add={HNSW_EF_CONSTRUCTION}); ef = expansion_search"}

    def memory_reported(self):
        try:
            return int(self.index.memory_usage)
        except Exception:
            return None


class Hnswlib(AnnPeer):
    key, label, dist, param = "hnswlib", "hnswlib HNSW", "hnswlib", "ef"

    @classmethod
    def available(cls):
        try:
            import hnswlib  # noqa: F401
        except ImportError as exc:
            return f"not installed ({exc})"
        return None

    def build(self, X, threads):
        import hnswlib
        self.threads = threads
        n, d = X.shape
        self.index = hnswlib.Index(space="ip", dim=d)
        self.index.init_index(max_elements=n, ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M, random_seed=100)
        self.index.add_items(X, np.arange(n), num_threads=threads)

    def sweep_values(self):
        return list(HNSW_EFS)

    def set(self, value):
        self.index.set_ef(value)

    def search(self, q, k):
        ids, _ = self.index.knn_query(q, k=k, num_threads=self.threads)
        return ids[0].astype(np.int64) if q.ndim == 1 else ids.astype(np.int64)

    def describe(self):
        return {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                "settings": f"Index(space='ip'), init_index(M={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}); "
                            "ef = set_ef"}


class NndexDefault(NndexIvf):
    """NNdex(X, approx=True) as a user would write it: one point, no tuning."""
    key, label, param = "nndex_default", "nndex defaults", "defaults"
    approx_modes = (True,)

    def sweep_values(self):
        return [None]

    def describe(self):
        return {"repr": repr(self.index),
                "settings": "NNdex(X, normalized=True, approx=True, enable_cache=False); search(q, k=10), no options"}


class NndexGraph(NndexIvf):
    """NNdex(X, approx="graph"), swept over search(q, k, ef=E)."""
    key, label, param = "nndex_graph", "nndex graph", "ef"
    approx_modes = ("graph",)

    @classmethod
    def available(cls):
        why = NndexExact.available()
        if why:
            return why
        from nndex import NNdex
        if "ef" not in inspect.signature(NNdex.search).parameters:
            return "n/a: this nndex has no graph index (NNdex.search takes no ef)"
        return None

    def build(self, X, threads):
        super().build(X, threads)
        if getattr(self.index, "uses_ivf", False):  # an nndex that reads approx="graph" as approx=True
            raise Unsupported("approx='graph' built an IVF index")
        self.ef = None

    def sweep_values(self):
        return list(HNSW_EFS)

    def set(self, value):
        self.ef = value

    def search(self, q, k):
        if self.ef is None:
            return self.index.search(q, k=k)[0]
        return self.index.search(q, k=k, ef=self.ef)[0]

    def describe(self):
        return {"repr": repr(self.index),
                "settings": "NNdex(X, normalized=True, approx='graph', enable_cache=False); ef = search(q, k, ef=E)"}


class _FaissIvfRefine(FaissIvf):
    """A compressed faiss IVF index with an exact re-ranking stage (IndexRefineFlat: k_factor * k
    candidates re-scored on a float32 copy of the rows), swept over (k_factor, nprobe)."""
    param = "k_factor, nprobe"
    K_FACTORS = (2, 4, 8, 16)

    def make(self, faiss, quantizer, d):
        raise NotImplementedError

    def build(self, X, threads):
        import faiss
        sample = self._setup(X, threads)
        self.quantizer = faiss.IndexFlatIP(X.shape[1])
        self.base = self.make(faiss, self.quantizer, X.shape[1])
        self.index = faiss.IndexRefineFlat(self.base)
        self.index.train(sample)
        self.index.add(X)

    def sweep_values(self):
        return [(f, p) for f in self.K_FACTORS for p in IVF_NPROBES if p <= self.nlist]

    def set(self, value):
        self.index.k_factor, self.base.nprobe = value


class FaissIvfPqRefine(_FaissIvfRefine):
    key, label, dist = "faiss_ivfpq_refine", "faiss IVFPQFastScan+refine", "faiss-cpu"

    def make(self, faiss, quantizer, d):
        self.pq_m = d // 2
        return faiss.IndexIVFPQFastScan(quantizer, d, self.nlist, self.pq_m, 4, faiss.METRIC_INNER_PRODUCT)

    def describe(self):
        return {"nlist": self.nlist, "pq_m": self.pq_m, "train_points": self.ntrain,
                "settings": f"IndexRefineFlat(IndexIVFPQFastScan(IndexFlatIP, nlist={self.nlist}, M={self.pq_m}, "
                            f"nbits=4, METRIC_INNER_PRODUCT)), trained on {self.ntrain} rows"}


class FaissIvfRabitq(_FaissIvfRefine):
    key, label, dist = "faiss_rabitq", "faiss IVFRaBitQ+refine", "faiss-cpu"

    @classmethod
    def available(cls):
        why = FaissFlat.available()
        if why:
            return why
        import faiss
        return None if hasattr(faiss, "IndexIVFRaBitQ") else f"n/a: faiss {faiss.__version__} has no IndexIVFRaBitQ"

    def make(self, faiss, quantizer, d):
        return faiss.IndexIVFRaBitQ(quantizer, d, self.nlist, faiss.METRIC_INNER_PRODUCT)

    def describe(self):
        return {"nlist": self.nlist, "qb": int(self.base.qb), "train_points": self.ntrain,
                "settings": f"IndexRefineFlat(IndexIVFRaBitQ(IndexFlatIP, nlist={self.nlist}, METRIC_INNER_PRODUCT), "
                            f"1-bit codes, qb={int(self.base.qb)} (faiss's default)), trained on {self.ntrain} rows"}


# Run in this order; usearch (the slowest build here) last, so a run short of time loses the least.
ANN_PEERS = [NndexIvf, FaissIvf, Hnswlib, UsearchHnsw]
# Only in ann_vs_hnswlib.py.
EXTRA_ANN_PEERS = [NndexDefault, NndexGraph, FaissIvfPqRefine, FaissIvfRabitq]


def ann_peer(key: str) -> type[AnnPeer]:
    for cls in ANN_PEERS + EXTRA_ANN_PEERS:
        if cls.key == key:
            return cls
    raise KeyError(key)


def library_versions() -> dict[str, str | None]:
    names = ["nndex", "numpy", "simsimd", "faiss-cpu", "usearch", "hnswlib", "threadpoolctl", "matplotlib"]
    return {n: package_version(n) for n in names}


def default_threads() -> int:
    return usable_cpus()
