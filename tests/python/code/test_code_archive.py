"""archive.open_arrays: the members of an .npz memory-mapped, equal to np.load's, and damaged or
unsafe archives refused."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from nndex.code.archive import open_arrays

ARRAYS = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "i64": np.array([-(2**40), 0, 2**40], dtype=np.int64),
    "u8": np.frombuffer("ünïcödé text".encode(), np.uint8),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    "empty": np.zeros((0, 5), np.float32),
    "scalar": np.array(3.5),
    "odd": np.arange(3, dtype=np.int16),  # 6 bytes: the members after it start off alignment
}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_members_equal_np_load(tmp_path, save):
    path = tmp_path / "a.npz"
    save(path, **ARRAYS)
    got = open_arrays(path)
    assert set(got) == set(ARRAYS)
    with np.load(path) as want:
        for name, arr in ARRAYS.items():
            assert got[name].dtype == arr.dtype and got[name].shape == arr.shape, name
            np.testing.assert_array_equal(got[name], want[name])
    if save is np.savez:  # mapped, so read-only
        assert not got["f32"].flags.writeable
        with pytest.raises(ValueError):
            got["f32"][0, 0] = 1


def test_damaged_or_unsafe_archives_are_refused(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, **ARRAYS)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(zipfile.BadZipFile):
        open_arrays(path)
    with zipfile.ZipFile(tmp_path / "a2.npz", "w") as z:  # a member longer than its array
        z.writestr("x.npy", _npy_bytes(np.arange(4, dtype=np.int32)) + b"extra")
    with pytest.raises(ValueError, match="does not fit"):
        open_arrays(tmp_path / "a2.npz")
    broken = bytearray(raw)
    broken[0:4] = b"XXXX"  # the first member's local header
    path.write_bytes(bytes(broken))
    with pytest.raises(ValueError, match="no local header"):
        open_arrays(path)
    np.savez(path, obj=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        open_arrays(path)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()
