"""Arrays that view a memory-mapped file: finding the map, the file position of row 0 (for positioned
re-reads), and dropping the pages a build has read."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def mmap_of(arr: Any) -> Any:
    """The mmap.mmap object under ``arr`` (through np.memmap and views), or None."""
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base if base is not None and type(base).__name__ == "mmap" else None


def drop_mapped_pages(arr: Any) -> None:
    """After a borrowing build, which read every row through the map: unmaps the pages from this
    process (MADV_DONTNEED; the file's pages stay in the page cache, re-read on demand), so resident
    memory is the codes again and grows only with the rows later searches re-score."""
    import mmap

    mapped = mmap_of(arr)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mapped is None or advice is None or not hasattr(mapped, "madvise"):
        return
    try:
        mapped.madvise(advice)
    except (OSError, ValueError):
        pass  # only an optimisation


def file_position(arr: Any) -> tuple[str, int] | None:
    """(file name, byte offset of row 0) of a C-order float32/float64 view of a np.memmap, so the
    index can re-read its rows with positioned reads rather than through the map (where each page
    fault maps 64 KiB of neighbours in too); None when the view is not one contiguous run."""
    import mmap

    if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.dtype.isnative):
        return None
    memmap = arr
    while isinstance(memmap, np.ndarray) and not isinstance(memmap, np.memmap):
        memmap = memmap.base
    raw = mmap_of(arr)
    if not isinstance(memmap, np.memmap) or raw is None or not getattr(memmap, "filename", None):
        return None
    # The mmap object starts at the offset rounded down to the allocation granularity.
    mapped_from = memmap.offset - memmap.offset % mmap.ALLOCATIONGRANULARITY
    start = np.frombuffer(raw, dtype=np.uint8).ctypes.data
    return os.fspath(memmap.filename), mapped_from + (arr.ctypes.data - start)


def is_mapped(arr: Any) -> bool:
    """Whether ``arr`` views a memory map (np.memmap somewhere along its bases) rather than a copy."""
    base = arr
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap):
            return True
        base = base.base
    return base is not None and type(base).__name__ == "mmap"
