"""Type stubs for nndex._nndex, the nanobind extension (use nndex.NNdex rather than this module)."""

import numpy as np
import numpy.typing as npt

__version__: str

class Index:
    """The native index: built once, then immutable and safe to search from many threads."""

    def __init__(
        self,
        data: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        normalized: bool,
        threads: int,
        approx: bool,
        nlist: int,
        nprobe: int,
        recall: float,
        seed: int,
    ) -> None:
        """Builds from a 2-D float32/float64 array in any positive-stride layout (read in place).

        threads, nlist and nprobe: 0 chooses automatically; recall: 0.0 uses the default target."""
    def search(
        self, query: npt.NDArray[np.float32], k: int, nprobe: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top min(k, rows) of one C-contiguous float32 query: 1-D (indices, similarities)."""
    def search_batch(
        self, queries: npt.NDArray[np.float32] | npt.NDArray[np.float64], k: int, nprobe: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top min(k, rows) of each row of a 2-D query matrix: (n, k') (indices, similarities)."""
    def save(self, path: str) -> None:
        """Writes the index file atomically (format: docs/index-format.md)."""
    @staticmethod
    def load(path: str, mmap: bool, threads: int) -> Index:
        """Reads an index file; ValueError for an invalid file, OSError when it cannot be read."""
    def to_bytes(self) -> bytes:
        """The index file's bytes (used for pickling)."""
    @staticmethod
    def from_bytes(data: bytes, threads: int) -> Index:
        """Rebuilds an index from to_bytes() output; ValueError for invalid bytes."""
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
    def memory_bytes(self) -> int: ...
    @property
    def approx(self) -> bool: ...
    @property
    def uses_ivf(self) -> bool: ...
    @property
    def nlist(self) -> int: ...
    @property
    def nprobe(self) -> int: ...

def hardware_threads() -> int:
    """Hardware threads reported by the C++ runtime."""
