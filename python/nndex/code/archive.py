"""The arrays of an uncompressed ``.npz`` archive (``np.savez``), memory-mapped instead of read.

``np.load`` reads every member it is asked for through ``zipfile``, copying it and computing its
CRC: for a 100,000-chunk index that is ~60 ms of each search, though a search touches only the
postings of the question's words and the rows of the chunks it shows. Here each stored member is
mapped where it lies in the file, after checking that its header and size fit the file, so only the
pages a search reads are ever read (the CRC, which needs every byte, is not checked). A compressed
member, which cannot be mapped, is read as ``np.load`` would.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version .. sizes), name length, extra length


def open_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every ``name.npy`` member of the archive at ``path`` as a read-only array, by ``name``.

    A file that is not such an archive, or whose members do not fit it, raises ValueError (or
    OSError / zipfile.BadZipFile, which the callers report as a damaged index); object arrays,
    which would need pickle, are refused."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as archive:
        whole = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # (a zip file is never empty)
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[: -len(".npy")]
            header = _stored_array_header(fh, info)
            if header is None:  # compressed, or a header version with no public reader
                with archive.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            start, (shape, fortran, dtype) = header
            if dtype.hasobject:
                raise ValueError(f"member {info.filename} holds Python objects")
            offset = fh.tell()  # where the array's bytes begin
            count = int(np.prod(shape, dtype=np.int64))
            if offset - start + count * dtype.itemsize != info.file_size or start + info.file_size > len(whole):
                raise ValueError(f"member {info.filename} does not fit the archive")
            flat = np.frombuffer(whole, dtype=dtype, count=count, offset=offset)
            out[name] = flat.reshape(shape, order="F" if fortran else "C")
    return out


def _stored_array_header(fh: Any, info: zipfile.ZipInfo) -> tuple[int, tuple[Any, bool, np.dtype]] | None:
    """(where the member's .npy begins, its shape, order and dtype), leaving ``fh`` at its data; None
    for a member that has to be read through zipfile."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    fh.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"member {info.filename} has no local header")
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    fh.seek(start)
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return start, np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return start, np.lib.format.read_array_header_2_0(fh)
    return None
