"""Index files: the in-tree XXH64 checksum against the PyPI xxhash package, every byte of a saved file
checked (any single changed byte is a ValueError), verify=False skipping only the checksum pass, and
files of the previous format version refused with a message asking for a re-save."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from nndex import NNdex, _nndex


def _matrix(rows: int, dims: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dims)).astype(np.float32)


def test_xxh64_matches_the_xxhash_package_on_random_lengths_and_offsets():
    xxhash = pytest.importorskip("xxhash")
    rng = random.Random(10)
    buffer = bytes(rng.getrandbits(8) for _ in range(400))
    assert _nndex._xxh64(b"") == 0xEF46DB3751D8E999
    for length in range(301):
        offset = rng.randrange(0, 64)
        seed = rng.choice([0, 1, 2**64 - 1, rng.getrandbits(64)])
        chunk = buffer[offset : offset + length]
        if len(chunk) < length:
            chunk = (buffer * 2)[offset : offset + length]
        assert _nndex._xxh64(chunk, seed) == xxhash.xxh64_intdigest(chunk, seed), (length, offset, seed)


def _saved(tmp_path, approx: bool) -> tuple[str, bytes]:
    # IVF needs 5,000 rows (smaller approximate indexes are stored exact); 2 dims keep the file small.
    index = NNdex(_matrix(5000, 2), approx=True, nlist=7, nprobe=2) if approx else NNdex(_matrix(37, 5))
    path = str(tmp_path / ("ivf.nndex" if approx else "exact.nndex"))
    index.save(path)
    with open(path, "rb") as f:
        return path, f.read()


@pytest.mark.parametrize("approx", [False, True])
def test_changing_any_single_byte_is_a_value_error(tmp_path, approx):
    path, good = _saved(tmp_path, approx)
    NNdex.load(path)
    if approx:
        assert struct.unpack_from("<Q", good, 56)[0] == 4, "expected an IVF file (4 sections)"
    loaded = []
    # Every byte of the exact file; the larger IVF file: its whole header page, then every 7th byte
    # (the C++ suite flips every byte of a small IVF file).
    for at in (range(len(good)) if not approx else [*range(4096), *range(4096, len(good), 7), len(good) - 1]):
        bad = bytearray(good)
        bad[at] ^= 0x01 if at % 2 else 0x80
        try:
            _nndex.Index.from_bytes(bytes(bad), 0)
        except ValueError:
            continue
        loaded.append(at)
    assert loaded == [], f"{len(loaded)} changed bytes still load, first at {loaded[:5]}"
    # Bytes appended after the last section are refused too, through a real file and mmap.
    with open(path, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(ValueError, match="bytes"):
        NNdex.load(path)


def test_flipped_payload_byte_loads_only_with_verify_false(tmp_path):
    path, good = _saved(tmp_path, False)
    (offset,) = struct.unpack_from("<Q", good, 64 + 8)  # the tiles section
    bad = bytearray(good)
    bad[offset + 2] ^= 0x01  # a low mantissa bit: the float stays finite
    with open(path, "wb") as f:
        f.write(bad)
    for mmap in (True, False):
        with pytest.raises(ValueError, match="checksum mismatch"):
            NNdex.load(path, mmap=mmap)
        index = NNdex.load(path, mmap=mmap, verify=False)
        assert index.rows == 37
        assert index.search(_matrix(1, 5)[0], k=3)[0].shape == (3,)
    # The structure is still checked with verify=False: padding and the header.
    for at in (20, offset - 1, len(good) - 1):
        worse = bytearray(good)
        worse[at] ^= 0x04
        with open(path, "wb") as f:
            f.write(worse)
        with pytest.raises(ValueError):
            NNdex.load(path, verify=False)


def test_previous_format_version_asks_for_a_re_save(tmp_path):
    xxhash = pytest.importorskip("xxhash")
    path, good = _saved(tmp_path, False)
    old = bytearray(good)
    struct.pack_into("<I", old, 8, 1)
    (header_bytes,) = struct.unpack_from("<I", old, 12)
    struct.pack_into("<Q", old, header_bytes, xxhash.xxh64_intdigest(bytes(old[:header_bytes])))
    with open(path, "wb") as f:
        f.write(old)
    with pytest.raises(ValueError, match=r"format version 1.*reads version \d+.*re-saved by this version"):
        NNdex.load(path)
