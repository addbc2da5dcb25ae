"""Files in and out: NNdex.from_file / load_matrix for .npy, .npz and .parquet, every bad-file case,
and save/load/mmap/pickle round trips."""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import pytest

import nndex
from nndex import NNdex, load_matrix
from oracle_helpers import assert_matches_oracle, assert_same_results, make_data, make_queries

ROWS, DIMS = 257, 12
DATA = make_data(ROWS, DIMS)
QUERIES = make_queries(4, DIMS, salt=5)


def _expected(data=DATA, **options):
    return NNdex(np.ascontiguousarray(data, dtype=np.float32), enable_cache=False, **options).search(QUERIES, k=9)


def _equal(index, data=DATA, **options):
    assert (index.rows, index.dims) == (data.shape[0], data.shape[1])
    assert_same_results(index.search(QUERIES, k=9), _expected(data, **options))


# ------------------------------------------------------------------------------------------------
# .npy
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f4", ">f8"])
def test_npy_dtypes_and_orders(tmp_path, dtype, order):
    path = tmp_path / "m.npy"
    stored = np.array(DATA, dtype=dtype, order=order)
    np.save(path, stored)
    _equal(NNdex.from_file(path), stored.astype(np.float32))
    loaded = load_matrix(path)
    np.testing.assert_array_equal(loaded, stored)
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=")


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_native_floats_are_memory_mapped_read_only(tmp_path, order):
    path = tmp_path / "m.npy"
    np.save(path, np.array(DATA, order=order))
    loaded = load_matrix(path)
    assert not loaded.flags.writeable
    assert not loaded.flags.owndata
    base = loaded
    while getattr(base, "base", None) is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap) or type(base).__name__ == "mmap"
    assert loaded.flags.f_contiguous if order == "F" else loaded.flags.c_contiguous


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_float16_is_converted_in_chunks(tmp_path, monkeypatch, order):
    from nndex import _io

    half = np.array(DATA, dtype=np.float16, order=order)
    path = tmp_path / "h.npy"
    np.save(path, half)
    monkeypatch.setattr(_io, "_CHUNK_BYTES", 8 * DIMS * 10)  # 10 rows per step: many chunks
    calls = []
    real = _io._convert_rows

    def spy(src, out, progress, desc):
        calls.append(src.shape)
        return real(src, out, progress, desc)

    monkeypatch.setattr(_io, "_convert_rows", spy)
    loaded = load_matrix(path)
    assert calls, "float16 must go through the chunked conversion"
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, half.astype(np.float32))
    _equal(NNdex.from_file(path), half.astype(np.float32))


def test_npy_one_dimensional_is_one_row(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, DATA[3])
    index = NNdex.from_file(path)
    assert (index.rows, index.dims) == (1, DIMS)


def test_path_types_and_extension_case(tmp_path):
    np.save(tmp_path / "m.npy", DATA)
    os.rename(tmp_path / "m.npy", tmp_path / "M.NPY")
    for p in (tmp_path / "M.NPY", str(tmp_path / "M.NPY"), pathlib.PurePath(tmp_path / "M.NPY")):
        _equal(NNdex.from_file(p))


def test_options_are_passed_to_the_constructor(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, DATA)
    index = NNdex.from_file(path, normalized=True, threads=1, enable_cache=False)
    assert index.normalized and index.threads == 1
    _equal(index, normalized=True)
    approx = NNdex.from_file(path, approx=True, nlist=4, nprobe=4)
    assert approx.approx and approx.nlist == 4
    with pytest.raises(TypeError):
        NNdex.from_file(path, bogus=1)


def test_from_file_progress_bars_do_not_change_results(tmp_path):
    path = tmp_path / "h.npy"
    np.save(path, DATA.astype(np.float16))
    _equal(NNdex.from_file(path, progress=True), DATA.astype(np.float16).astype(np.float32))


# ------------------------------------------------------------------------------------------------
# .npz
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflate"])
@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<f2", ">f4"])
def test_npz_members(tmp_path, compressed, dtype):
    path = tmp_path / "m.npz"
    save = np.savez_compressed if compressed else np.savez
    stored = np.asfortranarray(DATA.astype(dtype)) if dtype == "<f8" else DATA.astype(dtype)
    save(path, emb=stored)
    expected_data = stored.astype(np.float32)
    _equal(NNdex.from_file(path), expected_data)  # the only member: no key needed
    _equal(NNdex.from_file(path, key="emb"), expected_data)
    _equal(NNdex.from_file(path, key="emb.npy"), expected_data)


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflate"])
def test_npz_key_selects_among_several_members(tmp_path, compressed):
    path = tmp_path / "m.npz"
    other = make_data(50, DIMS)
    (np.savez_compressed if compressed else np.savez)(path, ids=np.arange(ROWS), emb=DATA, other=other)
    _equal(NNdex.from_file(path, key="emb"))
    _equal(NNdex.from_file(path, key="other"), other)
    with pytest.raises(ValueError, match=r"m\.npz.*several.*ids, emb, other"):
        NNdex.from_file(path)
    with pytest.raises(ValueError, match=r"m\.npz.*'nope' not found.*ids, emb, other"):
        NNdex.from_file(path, key="nope")
    with pytest.raises(ValueError, match=r"m\.npz.*unsupported dtype int64"):
        NNdex.from_file(path, key="ids")


def test_npz_stored_member_is_mapped_when_aligned(tmp_path):
    """A stored member whose data happens to be aligned is used in place (read-only)."""
    path = tmp_path / "a.npz"
    # Pad the member name so that the data lands on a 64-byte boundary.
    for pad in range(64):
        buf = io.BytesIO()
        np.save(buf, DATA)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("x" * pad + ".npy", buf.getvalue())
        loaded = load_matrix(path)
        if not loaded.flags.writeable:
            break
    else:
        pytest.fail("no aligned layout found")
    np.testing.assert_array_equal(loaded, DATA)


def test_npz_stored_member_crc_is_checked(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, emb=DATA)
    raw = bytearray(path.read_bytes())
    pos = raw.find(b"\x93NUMPY") + 128 + 40  # inside the array data
    raw[pos] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"m\.npz.*CRC"):
        load_matrix(path)


def test_npz_deflate_member_crc_is_checked(tmp_path):
    path = tmp_path / "m.npz"
    buf = io.BytesIO()
    np.save(buf, DATA)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("emb.npy", buf.getvalue())
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    local = raw.find(b"PK\x03\x04")
    for at in (central + 16, local + 14):  # the CRC field, in both headers
        raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"m\.npz.*(CRC|decompress)"):
        load_matrix(path)


def test_npz_other_compression_methods_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    buf = io.BytesIO()
    np.save(buf, DATA)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("emb.npy", buf.getvalue())
    with pytest.raises(ValueError, match=r"compression method"):
        load_matrix(path)


# ------------------------------------------------------------------------------------------------
# .parquet
# ------------------------------------------------------------------------------------------------

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pyarrow is in the test extra; without it only the Parquet tests are skipped
    pa = pq = None

needs_arrow = pytest.mark.skipif(pa is None, reason="pyarrow is not installed")


def _list_array(matrix, kind, value_type):
    values = pa.array(matrix.reshape(-1), type=value_type)
    n, d = matrix.shape
    if kind == "fixed":
        return pa.FixedSizeListArray.from_arrays(values, d)
    offsets = np.arange(0, (n + 1) * d, d)
    if kind == "large":
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


@needs_arrow
@pytest.mark.parametrize("row_group_size", [1000, 50], ids=["one-group", "many-groups"])
@pytest.mark.parametrize("value_type", ["float32", "float64", "float16"])
@pytest.mark.parametrize("kind", ["list", "large", "fixed"])
def test_parquet_list_columns(tmp_path, kind, value_type, row_group_size):
    pa_type = {"float32": pa.float32(), "float64": pa.float64(), "float16": pa.float16()}[value_type]
    stored = DATA.astype(value_type)
    table = pa.table({"id": pa.array(np.arange(ROWS)), "emb": _list_array(stored, kind, pa_type)})
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    loaded = load_matrix(path)
    assert loaded.shape == (ROWS, DIMS)
    assert loaded.dtype == (np.float64 if value_type == "float64" else np.float32)
    np.testing.assert_array_equal(loaded, stored.astype(loaded.dtype))
    _equal(NNdex.from_file(path, key="emb"), stored.astype(np.float32))


@needs_arrow
def test_parquet_reads_only_the_chosen_column(tmp_path, monkeypatch):
    table = pa.table({"text": pa.array([f"row {i}" for i in range(ROWS)]), "emb": _list_array(DATA, "list", pa.float32()),
                      "other": _list_array(DATA, "fixed", pa.float64())})
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, row_group_size=100)
    seen = []
    real = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kwargs):
        seen.append(columns)
        return real(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("whole-file read"))
    _equal(NNdex.from_file(path, key="emb"))
    assert seen == [["emb"]] * 3
    with pytest.raises(ValueError, match=r"several columns.*emb, other"):
        load_matrix(path)
    with pytest.raises(ValueError, match=r"column 'text' has type string"):
        load_matrix(path, key="text")
    with pytest.raises(ValueError, match=r"column 'nope' not found; columns: text, emb, other"):
        load_matrix(path, key="nope")


@needs_arrow
def test_parquet_single_chunk_is_not_copied():
    from nndex._convert import arrow_to_matrix

    arr = _list_array(DATA, "list", pa.float32())
    out = arrow_to_matrix(arr, "x")
    assert np.shares_memory(out, arr.flatten().to_numpy())
    chunked = pa.chunked_array([arr.slice(0, 100), arr.slice(100)])
    np.testing.assert_array_equal(arrow_to_matrix(chunked, "x"), DATA)


BAD_COLUMNS = {
    "ragged": (([[1.0, 2.0], [3.0]], "f32"), r"ragged.*row 1 has 1 values, expected 2"),
    "null-row": (([[1.0, 2.0], None], "f32"), r"row 1 is null"),
    "null-value": (([[1.0, None], [1.0, 2.0]], "f64"), r"null values"),
    "empty-lists": (([[], []], "f32"), r"empty"),
    "scalar-column": (([1.0, 2.0], "scalar"), r"no column holds lists of floats"),
    "int-lists": (([[1, 2], [3, 4]], "int"), r"no column holds lists of floats"),
}


@needs_arrow
@pytest.mark.parametrize("name", list(BAD_COLUMNS))
def test_parquet_bad_columns(tmp_path, name):
    (values, kind), pattern = BAD_COLUMNS[name]
    types = {"f32": pa.list_(pa.float32()), "f64": pa.list_(pa.float64()), "scalar": pa.float32(),
             "int": pa.list_(pa.int32())}
    column = pa.array(values, types[kind])
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"emb": column}), path)
    with pytest.raises(ValueError, match=r"bad\.parquet.*" + pattern):
        load_matrix(path)


@needs_arrow
def test_parquet_ragged_across_row_groups(tmp_path):
    path = tmp_path / "bad.parquet"
    rows = [[1.0, 2.0]] * 10 + [[1.0, 2.0, 3.0]] * 10
    pq.write_table(pa.table({"emb": pa.array(rows, pa.list_(pa.float32()))}), path, row_group_size=10)
    with pytest.raises(ValueError, match=r"ragged.*row 10"):
        load_matrix(path)


@needs_arrow
def test_parquet_without_rows(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"emb": pa.array([], pa.list_(pa.float32()))}), path)
    with pytest.raises(ValueError, match=r"no rows"):
        load_matrix(path)


# ------------------------------------------------------------------------------------------------
# Bad files in general
# ------------------------------------------------------------------------------------------------


def _npy_bytes(array=DATA) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _header_npy(header: str, payload: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    text = header.ljust(117) + "\n"
    length = struct.pack("<H", len(text)) if version == b"\x01\x00" else struct.pack("<I", len(text))
    return b"\x93NUMPY" + version + length + text.encode("latin1") + payload


BAD_NPY = {
    "empty-file": (b"", r"bad magic"),
    "wrong-magic": (b"\x93NUMPX" + _npy_bytes()[6:], r"bad magic"),
    "text": (b"hello, world\n" * 20, r"bad magic"),
    "truncated-header": (_npy_bytes()[:40], r"malformed|header"),
    "truncated-data": (_npy_bytes()[:-7], r"truncated.*promises"),
    "newer-version": (b"\x93NUMPY\x09\x00" + _npy_bytes()[8:], r"version 9\.0 is not supported"),
    "absurd-shape": (_header_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (10**15, 10**9), }"), r"malformed"),
    "huge-shape": (_header_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000), }"),
                   r"truncated.*promises"),
    "int32": (_npy_bytes(DATA.astype(np.int32)), r"unsupported dtype int32"),
    "complex": (_npy_bytes(DATA.astype(np.complex64)), r"unsupported dtype complex64"),
    "bool": (_npy_bytes(DATA > 0), r"unsupported dtype bool"),
    "structured": (_npy_bytes(np.zeros(4, dtype=[("a", "<f4"), ("b", "<f4")])), r"unsupported dtype"),
    "object": (_header_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 64), r"unsupported dtype object"),
    "3-d": (_npy_bytes(np.zeros((2, 3, 4), np.float32)), r"1-D or 2-D.*\(2, 3, 4\)"),
    "0-d": (_npy_bytes(np.float32(1.0)), r"1-D or 2-D"),
    "no-rows": (_npy_bytes(np.zeros((0, 4), np.float32)), r"empty"),
    "no-columns": (_npy_bytes(np.zeros((4, 0), np.float32)), r"empty"),
    "nan": (_npy_bytes(np.where(np.arange(ROWS)[:, None] == 5, np.nan, DATA).astype(np.float32)), r"row 5"),
    "bad-header-literal": (_header_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': __import__('os')}"),
                           r"malformed"),
    "header-too-long": (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{", r"malformed|header"),
}


@pytest.mark.parametrize("name", list(BAD_NPY))
def test_bad_npy_files(tmp_path, name):
    blob, pattern = BAD_NPY[name]
    path = tmp_path / f"{name}.npy"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=rf"{name}\.npy'?: .*{pattern}|{pattern}.*{name}\.npy"):
        NNdex.from_file(path)


@pytest.mark.parametrize("name", ["wrong-magic", "truncated-data", "int32", "3-d", "newer-version"])
@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflate"])
def test_bad_npy_members_of_npz(tmp_path, name, compressed):
    blob, pattern = BAD_NPY[name]
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as zf:
        zf.writestr("emb.npy", blob)
    with pytest.raises(ValueError, match=r"bad\.npz.*" + pattern):
        NNdex.from_file(path)


@pytest.mark.parametrize(
    "blob,pattern",
    [
        (b"", r"not a valid .npz"),
        (b"PK\x03\x04" + b"\0" * 100, r"not a valid .npz"),
        (_npy_bytes(), r"not a valid .npz"),
    ],
    ids=["empty", "zip-garbage", "npy-renamed"],
)
def test_bad_npz_archives(tmp_path, blob, pattern):
    path = tmp_path / "bad.npz"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=r"bad\.npz.*" + pattern):
        load_matrix(path)


def test_truncated_npz(tmp_path):
    path = tmp_path / "t.npz"
    np.savez_compressed(path, emb=DATA)
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 5):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"t\.npz"):
            load_matrix(path)


def test_empty_npz(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path)
    with pytest.raises(ValueError, match=r"no arrays"):
        load_matrix(path)


@needs_arrow
@pytest.mark.parametrize("blob", [b"", b"PAR1", b"PAR1" + b"\0" * 100 + b"PAR1", b"not parquet at all" * 10])
def test_bad_parquet_files(tmp_path, blob):
    path = tmp_path / "bad.parquet"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=r"bad\.parquet"):
        load_matrix(path)


@pytest.mark.parametrize("ext", [".npy", ".npz", ".parquet", ".nndex"])
def test_missing_files_raise_file_not_found(tmp_path, ext):
    path = tmp_path / ("missing" + ext)
    with pytest.raises(FileNotFoundError):
        NNdex.load(path) if ext == ".nndex" else NNdex.from_file(path)


@pytest.mark.parametrize("name", ["data.csv", "data", "data.npy.gz", "data.txt"])
def test_unknown_extensions(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"1,2,3\n")
    with pytest.raises(ValueError, match=r"unsupported file extension.*\.npy, \.npz, \.parquet"):
        NNdex.from_file(path)


def test_key_on_npy_and_key_type(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, DATA)
    with pytest.raises(ValueError, match=r"key"):
        NNdex.from_file(path, key="emb")
    with pytest.raises(TypeError):
        load_matrix(path, key=3)
    with pytest.raises(TypeError):
        load_matrix(3.5)


def test_directory_is_an_os_error(tmp_path):
    folder = tmp_path / "dir.npy"
    folder.mkdir()
    with pytest.raises(OSError):
        load_matrix(folder)


# ------------------------------------------------------------------------------------------------
# Index files: save, load, mmap, pickling, bad files
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
@pytest.mark.parametrize("approx", [False, True], ids=["exact", "ivf"])
def test_save_load_mmap_and_pickle_round_trips(tmp_path, approx, normalized):
    data = make_data(1500, 16, normalized)
    queries = make_queries(7, 16, normalized, salt=9)
    options = {"approx": True, "nlist": 12, "nprobe": 3} if approx else {}
    index = NNdex(data, normalized=normalized, **options)
    expected = index.search(queries, k=11)
    single = index.search(queries[0], k=11)
    path = tmp_path / "i.nndex"
    index.save(path)
    copies = [
        NNdex.load(path),
        NNdex.load(str(path), mmap=False),
        NNdex.load(path, mmap=True, threads=1),
        pickle.loads(pickle.dumps(index)),
        pickle.loads(pickle.dumps(NNdex.load(path))),
    ]
    for copy in copies:
        assert (copy.rows, copy.dims, copy.normalized, copy.approx, copy.nlist, copy.nprobe) == (
            index.rows, index.dims, index.normalized, index.approx, index.nlist, index.nprobe)
        for got, want in zip(copy.search(queries, k=11), expected):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(copy.search(queries[0], k=11), single):
            np.testing.assert_array_equal(got, want)
    if not approx:
        assert_matches_oracle(*expected, data, queries, 11, normalized)


def test_pickle_keeps_enable_cache(tmp_path):
    index = NNdex(DATA, enable_cache=False)
    copy = pickle.loads(pickle.dumps(index))
    assert copy.cache_info().enabled is False
    copy = pickle.loads(pickle.dumps(NNdex(DATA)))
    assert copy.cache_info().enabled is True and copy.cache_info().entries == 0


def test_saved_index_reloads_after_source_is_gone(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, DATA)
    index = NNdex.from_file(path)
    out = tmp_path / "i.nndex"
    index.save(out)
    os.unlink(path)
    _equal(NNdex.load(out))


def _index_bytes() -> bytes:
    return NNdex(DATA)._index.to_bytes()


BAD_INDEX = {
    "empty": (lambda b: b"", r"too short"),
    "truncated-header": (lambda b: b[:50], r"too short|truncated"),
    "truncated-data": (lambda b: b[: len(b) // 2], r"outside the file|truncated"),
    "wrong-magic": (lambda b: b"NOTANIDX" + b[8:], r"wrong magic"),
    "npy-file": (lambda b: _npy_bytes(), r"wrong magic|too short"),
    "header-bit-flip": (lambda b: b[:30] + bytes([b[30] ^ 4]) + b[31:], r"checksum"),
    "data-bit-flip": (lambda b: b[:5000] + bytes([b[5000] ^ 1]) + b[5001:], r"checksum mismatch in the tiles"),
    "newer-version": (lambda b: b[:8] + struct.pack("<I", 7) + b[12:], r"version 7 by a newer nndex"),
}


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("name", list(BAD_INDEX))
def test_bad_index_files(tmp_path, name, mmap):
    change, pattern = BAD_INDEX[name]
    path = tmp_path / f"{name}.nndex"
    path.write_bytes(change(_index_bytes()))
    with pytest.raises(ValueError, match=rf"{name}\.nndex.*({pattern})"):
        NNdex.load(path, mmap=mmap)


def test_package_exports_and_docstrings():
    assert nndex.load_matrix is load_matrix
    assert dataclasses.is_dataclass(nndex.CacheInfo) and nndex.CacheInfo.__dataclass_params__.frozen
    assert [f.name for f in dataclasses.fields(nndex.CacheInfo)] == [
        "enabled", "hits", "misses", "entries", "bytes", "max_entries", "max_bytes", "reused_index"]
    assert type(NNdex(DATA).cache_info()) is nndex.CacheInfo
    public = [nndex.NNdex, nndex.load_matrix, nndex.CacheInfo, NNdex.from_file, NNdex.search, NNdex.save,
              NNdex.load, NNdex.cache_info, NNdex.clear_cache]
    public += [getattr(NNdex, name) for name in dir(NNdex) if isinstance(getattr(NNdex, name, None), property)]
    for obj in public:
        assert (obj.__doc__ or "").strip(), f"{obj!r} has no docstring"


def test_typing_files_are_installed():
    folder = pathlib.Path(nndex.__file__).parent
    assert (folder / "py.typed").exists()
    assert (folder / "_nndex.pyi").exists()
