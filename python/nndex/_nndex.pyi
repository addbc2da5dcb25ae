"""
nndex native extension: exact and approximate (graph, IVF) top-k similarity search, and the query-result cache (use the nndex package, not this module).
"""

from typing import Annotated

import numpy
from numpy.typing import NDArray


class Index:
    def __init__(self, data: Annotated[NDArray, dict(shape=(None, None), device='cpu', writable=False)], normalized: bool, threads: int, approx: bool, nlist: int, nprobe: int, recall: float, seed: int, storage: str = 'f32', borrow: bool = False, rows_path: str = '', rows_offset: int = 0, method: str = 'auto', ef: int = 0, graph_degree: int = 0, ef_construction: int = 0) -> None: ...

    def search(self, query: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], k: int, nprobe: int = 0, oversampling: float = 0.0, ef: int = 0) -> tuple: ...

    def search_batch(self, queries: Annotated[NDArray, dict(shape=(None, None), device='cpu', writable=False)], k: int, nprobe: int = 0, oversampling: float = 0.0, ef: int = 0) -> tuple: ...

    @property
    def rows(self) -> int: ...

    @property
    def dims(self) -> int: ...

    @property
    def normalized(self) -> bool: ...

    @property
    def threads(self) -> int: ...

    @property
    def isa(self) -> str: ...

    @property
    def storage(self) -> str: ...

    def save(self, path: str) -> None: ...

    @staticmethod
    def load(path: str, mmap: bool, threads: int, verify: bool = True) -> Index: ...

    def to_bytes(self) -> bytes: ...

    @staticmethod
    def from_bytes(data: bytes, threads: int) -> Index: ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def approx(self) -> bool: ...

    @property
    def uses_ivf(self) -> bool: ...

    @property
    def nlist(self) -> int: ...

    @property
    def nprobe(self) -> int: ...

    @property
    def method(self) -> str: ...

    @property
    def ef(self) -> int: ...

class QueryCache:
    def __init__(self, index: object, max_entries: int, max_bytes: int, max_rows: int, colliding_hash: bool = False) -> None:
        """
        A bounded LRU of search results over `index`; search() and search_batch() as Index's.
        """

    def search(self, query: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], k: int, nprobe: int = 0, oversampling: float = 0.0, ef: int = 0) -> tuple: ...

    def search_batch(self, queries: Annotated[NDArray, dict(shape=(None, None), device='cpu', writable=False)], k: int, nprobe: int = 0, oversampling: float = 0.0, ef: int = 0) -> tuple: ...

    def stats(self) -> tuple:
        """(hits, misses, entries, bytes)"""

    def clear(self) -> None: ...

    @property
    def index(self) -> object: ...

    @property
    def max_entries(self) -> int: ...

    @property
    def max_bytes(self) -> int: ...

    @property
    def max_rows(self) -> int: ...

def hardware_threads() -> int: ...
