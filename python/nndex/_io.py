"""Reading embedding matrices from .npy, .npz and .parquet files.

Every reader validates what the file claims (magic, version, dtype, shape, sizes, checksums) against
what the file holds *before* it allocates or reads the data, so a corrupt or hostile file ends in a
``ValueError`` naming the file and the problem, never in a crash, a hang or a huge allocation. A file
that cannot be opened is an ``OSError`` (``FileNotFoundError`` for a missing one).

* ``.npy``: float16/32/64 in either byte order, C or Fortran order. Native float32/float64 arrays are
  memory-mapped and handed to the index as they are (read once, by the build); float16 and
  byte-swapped arrays are converted chunk by chunk into one float32/float64 array.
* ``.npz``: stored members are memory-mapped in place (CRC checked); deflate-compressed members are
  decompressed straight into the result array (CRC checked by :mod:`zipfile`). ``key`` picks the
  member; without it the archive must hold exactly one array.
* ``.parquet`` (needs pyarrow): one list, large-list or fixed-size-list column of float16/32/64, read
  alone (no other column is decoded) row group by row group and converted through the Arrow buffers.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["SUPPORTED_EXTENSIONS", "load_matrix"]

SUPPORTED_EXTENSIONS = (".npy", ".npz", ".parquet")

# Rows converted per step when a file's dtype or byte order has to be changed (bounds temporaries).
_CHUNK_BYTES = 16 << 20
# Largest .npy header accepted (numpy's own limit for untrusted files).
_MAX_NPY_HEADER = 10_000
# Deflate cannot expand data by more than about 1032:1; a member claiming more is lying.
_DEFLATE_MAX_RATIO = 1032
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length (30 bytes)

ProgressFactory = Callable[[int, str], Any]  # (total rows, description) -> object with update(n), close()


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _no_progress(total: int, desc: str) -> _NoProgress:
    return _NoProgress()


class _FileProblem(Exception):
    """Raised inside the readers; load_matrix turns it into ValueError('<file>: <problem>')."""


def load_matrix(
    path: str | os.PathLike[str], key: Optional[str] = None, *, progress: Optional[ProgressFactory] = None
) -> np.ndarray:
    """Reads a 1-D or 2-D float array from a .npy, .npz or .parquet file (chosen by extension).

    Returns float32 or float64 (float16 files come back as float32); .npy files and stored .npz
    members come back memory-mapped read-only. ``key`` names the .npz member or the Parquet column; it
    may be omitted when the file holds only one candidate. ``progress`` (internal: the command line
    passes a tqdm factory) is called as ``progress(total_rows, description)`` for chunked reads.

    Raises ``ValueError`` naming the file for anything wrong with it, ``OSError`` (for example
    ``FileNotFoundError``) when it cannot be opened.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        path_str = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, got {type(key).__name__}")
    ext = os.path.splitext(path_str)[1].lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"unsupported file extension {ext or '(none)'!r} for '{path_str}', expected one of: "
            + ", ".join(SUPPORTED_EXTENSIONS)
        )
    if key is not None and ext == ".npy":
        raise ValueError(f"'{path_str}': key={key!r} applies only to .npz and .parquet files")
    make_progress = progress or _no_progress
    try:
        if ext == ".npy":
            return _read_npy(path_str, make_progress)
        if ext == ".npz":
            return _read_npz(path_str, key, make_progress)
        return _read_parquet(path_str, key, make_progress)
    except _FileProblem as exc:
        raise ValueError(f"'{path_str}': {exc}") from None


# ------------------------------------------------------------------------------------------------
# .npy headers (shared with .npz members)
# ------------------------------------------------------------------------------------------------


def _parse_npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Reads magic and header from a file-like positioned at a .npy start.

    Returns (shape, fortran_order, dtype, header length in bytes)."""
    fmt = np.lib.format
    start = fp.tell()
    try:
        version = fmt.read_magic(fp)
    except _FileProblem:
        raise
    except Exception as exc:  # ValueError for a wrong magic, EOFError-like errors for short files
        raise _FileProblem(f"not a .npy array (bad magic bytes: {exc})") from None
    if version[0] > 3 or version[0] < 1 or version[1] != 0:
        raise _FileProblem(
            f".npy format version {version[0]}.{version[1]} is not supported (this build reads 1.0 to 3.0)"
        )
    try:
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp, max_header_size=_MAX_NPY_HEADER)
        else:  # 2.0 and 3.0 share the layout; 3.0 only allows UTF-8 in field names, which we refuse anyway
            shape, fortran, dtype = fmt.read_array_header_2_0(fp, max_header_size=_MAX_NPY_HEADER)
    except _FileProblem:
        raise
    except Exception as exc:  # ValueError, SyntaxError, TypeError, RecursionError... from a mangled header
        raise _FileProblem(f"malformed .npy header: {_one_line(exc)}") from None
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _FileProblem(f"malformed .npy header: invalid shape {shape!r}")
    return shape, bool(fortran), np.dtype(dtype), fp.tell() - start


def _check_array_meta(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Validates dtype and shape; returns the number of data bytes the array needs."""
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _FileProblem(f"unsupported dtype {dtype} (expected float16, float32 or float64)")
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise _FileProblem(f"unsupported dtype {dtype} (expected float16, float32 or float64)")
    if len(shape) not in (1, 2):
        raise _FileProblem(f"expected a 1-D or 2-D array, got shape {shape}")
    count = 1
    for s in shape:
        count *= s  # Python ints: no overflow
    if count == 0:
        raise _FileProblem(f"the array is empty (shape {shape})")
    return count * dtype.itemsize


def _target_dtype(dtype: np.dtype) -> np.dtype:
    """What a file dtype becomes in memory: native float32 or float64."""
    return np.dtype(np.float64) if dtype.itemsize == 8 else np.dtype(np.float32)


def _convert_rows(src: np.ndarray, out: np.ndarray, progress: ProgressFactory, desc: str) -> None:
    """out[...] = src, in chunks of rows so that temporaries stay small."""
    rows = src.shape[0]
    row_elems = src.shape[1] if src.ndim == 2 else 1
    step = max(1, _CHUNK_BYTES // (8 * row_elems))
    bar = progress(rows, desc)
    try:
        for begin in range(0, rows, step):
            end = min(rows, begin + step)
            out[begin:end] = src[begin:end]
            bar.update(end - begin)
    finally:
        bar.close()


# ------------------------------------------------------------------------------------------------
# .npy
# ------------------------------------------------------------------------------------------------


def _read_npy(path: str, progress: ProgressFactory) -> np.ndarray:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        shape, fortran, dtype, header_len = _parse_npy_header(f)
    nbytes = _check_array_meta(shape, dtype)
    if header_len + nbytes > size:
        raise _FileProblem(
            f"truncated: the header promises a {dtype} array of shape {shape} ({nbytes} bytes) but only "
            f"{size - header_len} bytes follow the header"
        )
    mapped = np.memmap(path, dtype=dtype, mode="r", offset=header_len, shape=shape, order="F" if fortran else "C")
    return _finish(mapped.view(np.ndarray), progress, f"converting {dtype}")


def _finish(arr: np.ndarray, progress: ProgressFactory, desc: str) -> np.ndarray:
    """An aligned native float32/float64 array is returned as is; others are converted chunk-wise."""
    target = _target_dtype(arr.dtype)
    if arr.dtype == target and arr.flags.aligned:  # dtype equality includes the byte order
        return arr
    out = np.empty(arr.shape, dtype=target, order="F" if arr.flags.f_contiguous and arr.ndim == 2 else "C")
    _convert_rows(arr, out, progress, desc)
    return out


# ------------------------------------------------------------------------------------------------
# .npz
# ------------------------------------------------------------------------------------------------


def _member_key(name: str) -> str:
    return name[:-4] if name.endswith(".npy") else name


def _read_npz(path: str, key: Optional[str], progress: ProgressFactory) -> np.ndarray:
    with open(path, "rb") as f:
        try:
            return _read_npz_archive(path, f, key, progress)
        except (_FileProblem, MemoryError):
            raise
        except Exception as exc:  # zipfile raises BadZipFile, struct.error, IndexError, ... on mangled input
            raise _FileProblem(f"not a valid .npz (zip) archive: {_one_line(exc)}") from None


def _read_npz_archive(path: str, f: Any, key: Optional[str], progress: ProgressFactory) -> np.ndarray:
    size = os.fstat(f.fileno()).st_size
    zf = zipfile.ZipFile(f)
    with zf:
        members = [i for i in zf.infolist() if i.filename and not i.filename.endswith("/")]
        info = _pick_member(members, key)
        if info.flag_bits & 0x1:
            raise _FileProblem(f"member {info.filename!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            return _read_stored_member(path, f, size, info, progress)
        if info.compress_type == zipfile.ZIP_DEFLATED:
            return _read_deflated_member(zf, size, info, progress)
        raise _FileProblem(
            f"member {info.filename!r} uses zip compression method {info.compress_type}; "
            "only stored and deflate members are supported"
        )


def _pick_member(members: list[zipfile.ZipInfo], key: Optional[str]) -> zipfile.ZipInfo:
    keys = [_member_key(i.filename) for i in members]
    if key is None:
        if len(members) == 1:
            return members[0]
        if not members:
            raise _FileProblem("the archive holds no arrays")
        raise _FileProblem(f"the archive holds several arrays; choose one with key=: {', '.join(keys)}")
    for info in members:
        if info.filename == key + ".npy":
            return info
    for info in members:
        if info.filename == key:
            return info
    raise _FileProblem(f"key {key!r} not found; the archive holds: {', '.join(keys) or '(nothing)'}")


def _read_stored_member(path: str, f: Any, size: int, info: zipfile.ZipInfo, progress: ProgressFactory) -> np.ndarray:
    if info.compress_size != info.file_size:
        raise _FileProblem(f"member {info.filename!r}: stored sizes disagree (corrupt archive)")
    f.seek(info.header_offset)
    local = f.read(_ZIP_LOCAL_HEADER.size)
    if len(local) != _ZIP_LOCAL_HEADER.size:
        raise _FileProblem(f"member {info.filename!r}: truncated archive")
    signature, name_len, extra_len = _ZIP_LOCAL_HEADER.unpack(local)
    if signature != b"PK\x03\x04":
        raise _FileProblem(f"member {info.filename!r}: bad local header (corrupt archive)")
    data_start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_len + extra_len
    if data_start + info.file_size > size:
        raise _FileProblem(f"member {info.filename!r} lies outside the file (truncated archive)")
    # The .npy header, read from a bounded copy so that it cannot run past the member.
    f.seek(data_start)
    head = _BoundedReader(f, info.file_size)
    shape, fortran, dtype, header_len = _parse_npy_header(head)
    nbytes = _check_array_meta(shape, dtype)
    if header_len + nbytes > info.file_size:
        raise _FileProblem(
            f"member {info.filename!r} is truncated: its header promises shape {shape} {dtype} ({nbytes} bytes) "
            f"but the member holds {info.file_size - header_len}"
        )
    whole = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(info.file_size,))
    crc = 0
    for begin in range(0, info.file_size, _CHUNK_BYTES):
        crc = zlib.crc32(whole[begin : begin + _CHUNK_BYTES], crc)
    if crc != info.CRC:
        raise _FileProblem(f"member {info.filename!r}: CRC-32 mismatch (the archive is corrupt)")
    arr = np.ndarray(
        shape,
        dtype=dtype,
        buffer=whole,
        offset=header_len,
        order="F" if fortran else "C",
    )
    return _finish(arr, progress, f"converting {info.filename}")


class _BoundedReader:
    """A read-only file view that stops after `limit` bytes (for parsing a member's .npy header)."""

    def __init__(self, f: Any, limit: int) -> None:
        self._f = f
        self._left = limit
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos


def _read_deflated_member(zf: zipfile.ZipFile, size: int, info: zipfile.ZipInfo, progress: ProgressFactory) -> np.ndarray:
    if info.header_offset + info.compress_size > size:
        raise _FileProblem(f"member {info.filename!r} lies outside the file (truncated archive)")
    if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 4096:
        raise _FileProblem(
            f"member {info.filename!r} claims {info.file_size} bytes from {info.compress_size} compressed bytes, "
            "more than deflate can produce (corrupt archive)"
        )
    try:
        with zf.open(info) as member:
            shape, fortran, dtype, header_len = _parse_npy_header(_DecompressingReader(member, info.filename))
            nbytes = _check_array_meta(shape, dtype)
            if header_len + nbytes > info.file_size:
                raise _FileProblem(
                    f"member {info.filename!r} is truncated: its header promises shape {shape} {dtype} "
                    f"({nbytes} bytes) but the member holds {info.file_size - header_len}"
                )
            target = _target_dtype(dtype)
            order = "F" if fortran else "C"
            count = nbytes // dtype.itemsize
            out = np.empty(count, dtype=target)
            bar = progress(count, f"decompressing {info.filename}")
            try:
                if target == dtype:
                    _read_exact(member, memoryview(out).cast("B"), info.filename, bar, dtype.itemsize)
                else:
                    step = max(1, _CHUNK_BYTES // dtype.itemsize)
                    raw = np.empty(min(step, count), dtype=dtype)
                    for begin in range(0, count, step):
                        n = min(step, count - begin)
                        _read_exact(member, memoryview(raw[:n]).cast("B"), info.filename, None, 1)
                        out[begin : begin + n] = raw[:n]
                        bar.update(n)
            finally:
                bar.close()
            while member.read(1 << 20):  # drain: zipfile checks the CRC when the member ends
                pass
    except _FileProblem:
        raise
    except (*_DECOMPRESSION_ERRORS, ValueError) as exc:
        raise _FileProblem(f"member {info.filename!r} cannot be decompressed: {_one_line(exc)}") from None
    return out.reshape(shape, order=order)


_DECOMPRESSION_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error)


class _DecompressingReader:
    """Reads a deflate member's .npy header; decompression errors become a clear _FileProblem."""

    def __init__(self, member: Any, name: str) -> None:
        self._member = member
        self._name = name
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._member.read(n)
        except _DECOMPRESSION_ERRORS as exc:
            raise _FileProblem(f"member {self._name!r} cannot be decompressed: {_one_line(exc)}") from None
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos


def _read_exact(member: Any, view: memoryview, name: str, bar: Any, itemsize: int) -> None:
    done = 0
    total = len(view)
    while done < total:
        n = member.readinto(view[done : min(total, done + _CHUNK_BYTES)])
        if not n:
            raise _FileProblem(f"member {name!r} ends early (truncated or corrupt archive)")
        done += n
        if bar is not None:
            bar.update(n // itemsize)


# ------------------------------------------------------------------------------------------------
# .parquet
# ------------------------------------------------------------------------------------------------


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading .parquet files needs pyarrow (pip install pyarrow): {exc}") from None
    return pq


def _read_parquet(path: str, key: Optional[str], progress: ProgressFactory) -> np.ndarray:
    pq = _import_parquet()
    from nndex._convert import ArrowListReader, is_float_list_type

    os.stat(path)  # a missing or unreadable file is an OSError, as for the other formats
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        names = list(schema.names)
        if key is None:
            candidates = [f.name for f in schema if is_float_list_type(f.type)]
            if len(candidates) != 1:
                if not candidates:
                    raise _FileProblem(
                        "no column holds lists of floats (list, large_list or fixed_size_list of "
                        f"float16/32/64); columns: {', '.join(names) or '(none)'}"
                    )
                raise _FileProblem(f"several columns hold lists of floats; choose one with key=: {', '.join(candidates)}")
            key = candidates[0]
        if key not in names:
            raise _FileProblem(f"column {key!r} not found; columns: {', '.join(names) or '(none)'}")
        if names.count(key) > 1:
            raise _FileProblem(f"column name {key!r} is ambiguous (it appears {names.count(key)} times)")
        field = schema.field(key)
        if not is_float_list_type(field.type):
            raise _FileProblem(
                f"column {key!r} has type {field.type}; expected a list, large_list or fixed_size_list of floats"
            )
        total = pf.metadata.num_rows
        if total <= 0:
            raise _FileProblem(f"column {key!r} has no rows")
        reader = ArrowListReader(field.type, total, f"column {key!r}")
        bar = progress(total, f"reading {key}")
        try:
            for group in range(pf.num_row_groups):
                table = pf.read_row_group(group, columns=[key])
                for chunk in table.column(0).chunks:
                    reader.add(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        return reader.result()
    except _FileProblem:
        raise
    except ValueError as exc:  # ArrowInvalid and the like; our own conversion errors read well already
        raise _FileProblem(_one_line(exc)) from None
    except Exception as exc:  # OSError/ArrowIOError from corrupt content, ArrowNotImplementedError, ...
        raise _FileProblem(f"not a readable Parquet file: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return text or type(exc).__name__
