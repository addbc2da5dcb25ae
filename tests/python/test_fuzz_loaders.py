"""Fuzzing every file reader: mutated .npy, .npz, .parquet and index files may only raise ValueError or
OSError (never crash, hang, or raise anything else), and crafted headers with valid checksums but
absurd shapes are refused without a large allocation.

Each format is fuzzed in a child process (a crash is then reported with the mutation that caused it,
instead of killing pytest). The default budget is short (a few seconds in all); set
NNDEX_FUZZ_SECONDS to fuzz longer, e.g. NNDEX_FUZZ_SECONDS=600 for ten minutes shared by the formats,
and NNDEX_FUZZ_SEED to vary the mutations. A failure prints the seed and iteration to reproduce it:
``python tests/python/test_fuzz_loaders.py FORMAT SECONDS SEED FIRST_ITERATION``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pytest

FORMATS = ["npy", "npy-f16", "npz-stored", "npz-deflate", "parquet", "index-exact", "index-ivf", "pickle"]
DEFAULT_TOTAL_SECONDS = 10.0


def _budget() -> float:
    total = float(os.environ.get("NNDEX_FUZZ_SECONDS", DEFAULT_TOTAL_SECONDS))
    return max(0.5, total / len(FORMATS))


# ------------------------------------------------------------------------------------------------
# Seed files
# ------------------------------------------------------------------------------------------------


def _matrix(rows: int, dims: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dims)).astype(np.float32)


def seed_bytes(fmt: str) -> tuple[bytes, str]:
    """A small valid file of the format, and its extension."""
    from nndex import NNdex

    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, _matrix(40, 6))
        return buf.getvalue(), ".npy"
    if fmt == "npy-f16":
        np.save(buf, np.asfortranarray(_matrix(40, 6).astype(np.float16)))
        return buf.getvalue(), ".npy"
    if fmt == "npz-stored":
        np.savez(buf, a=_matrix(30, 5), b=_matrix(20, 5, 8).astype(np.float64))
        return buf.getvalue(), ".npz"
    if fmt == "npz-deflate":
        np.savez_compressed(buf, a=_matrix(30, 5))
        return buf.getvalue(), ".npz"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        m = _matrix(40, 4)
        table = pa.table(
            {
                "id": pa.array(np.arange(40)),
                "emb": pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), 4),
                "var": pa.array(list(m.astype(np.float64)), type=pa.list_(pa.float64())),
            }
        )
        pq.write_table(table, buf, row_group_size=16, compression="NONE")
        return buf.getvalue(), ".parquet"
    if fmt in ("index-exact", "pickle"):
        return NNdex(_matrix(40, 6))._index.to_bytes(), ".nndex"
    if fmt == "index-ivf":
        return NNdex(_matrix(200, 4), approx=True, nlist=4, nprobe=2)._index.to_bytes(), ".nndex"
    raise AssertionError(fmt)


# ------------------------------------------------------------------------------------------------
# Mutations
# ------------------------------------------------------------------------------------------------

_INTERESTING = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x30, 0x39]
_HEADER_EDITS = [
    (b"'shape': (", b"'shape': (99999999999, "),
    (b"'shape': (", b"'shape': (-1, "),
    (b"'shape': (", b"'shape': ((("),
    (b"<f4", b"<i4"),
    (b"<f4", b"|O8"),
    (b"<f4", b"<c8"),
    (b"<f4", b">f4"),
    (b"<f4", b"<f2"),
    (b"<f8", b"<V8"),
    (b"False", b"True"),
    (b"True", b"False"),
    (b"\x01\x00", b"\x09\x00"),
    (b"\x93NUMPY", b"\x93NUMPX"),
    (b"PK\x03\x04", b"PK\x03\x05"),
    (b"PK\x01\x02", b"PK\x01\x03"),
    (b"PAR1", b"PAR2"),
    (b"NNDEXIDX", b"NNDEXIDY"),
]


def mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One random mutation of `data`, and a description of it."""
    b = bytearray(data)
    n = len(b)
    choice = int(rng.integers(0, 9)) if n else 5
    # Half of the byte-level edits target the first and last 512 bytes (headers and zip/parquet footers).
    def pos() -> int:
        r = rng.random()
        if r < 0.35:
            return int(rng.integers(0, min(n, 512)))
        if r < 0.6:
            return int(rng.integers(max(0, n - 512), n))
        return int(rng.integers(0, n))

    if choice == 0:
        flips = int(rng.integers(1, 9))
        where = [pos() for _ in range(flips)]
        for p in where:
            b[p] ^= 1 << int(rng.integers(0, 8))
        return bytes(b), f"bit flips at {where}"
    if choice == 1:
        cut = int(rng.integers(0, n))
        return bytes(b[:cut]), f"truncated to {cut} bytes"
    if choice == 2:
        p = pos()
        v = _INTERESTING[int(rng.integers(0, len(_INTERESTING)))]
        width = int(rng.integers(1, 9))
        b[p : p + width] = bytes([v]) * len(b[p : p + width])
        return bytes(b), f"{width} bytes set to {v:#x} at {p}"
    if choice == 3:
        p = pos()
        width = int(rng.integers(1, 64))
        b[p : p + width] = rng.integers(0, 256, size=len(b[p : p + width]), dtype=np.uint8).tobytes()
        return bytes(b), f"{width} random bytes at {p}"
    if choice == 4:
        extra = rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
        return bytes(b) + extra, f"{len(extra)} random bytes appended"
    if choice == 5:
        size = int(rng.integers(0, 2048))
        return rng.integers(0, 256, size=size, dtype=np.uint8).tobytes(), f"{size} random bytes"
    if choice == 6:
        old, new = _HEADER_EDITS[int(rng.integers(0, len(_HEADER_EDITS)))]
        if old in b:
            return bytes(b).replace(old, new, 1), f"header edit {old!r} -> {new!r}"
        p = pos()
        return bytes(b[:p] + b[p + 1 :]), f"byte {p} deleted"
    if choice == 7:
        # Little-endian 32/64-bit fields set to boundary values (sizes, offsets, counts).
        p = pos()
        value = [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 2**63 - 1, 2**64 - 1, 2**40, n * 2][int(rng.integers(0, 8))]
        width = 8 if value > 0xFFFFFFFF or rng.random() < 0.5 else 4
        b[p : p + width] = value.to_bytes(width, "little")[: len(b[p : p + width])]
        return bytes(b), f"{width}-byte field at {p} set to {value}"
    start = pos()
    length = int(rng.integers(1, 256))
    segment = bytes(b[start : start + length])
    at = pos()
    return bytes(b[:at] + segment + b[at:]), f"{len(segment)} bytes from {start} duplicated at {at}"


# ------------------------------------------------------------------------------------------------
# One case
# ------------------------------------------------------------------------------------------------


def exercise(fmt: str, path: str, data: bytes) -> str:
    """Loads the file every way it can be loaded; returns 'ok' or the allowed exception's class name."""
    from nndex import NNdex, _nndex
    from nndex._io import load_matrix

    try:
        if fmt == "pickle":
            # A mangled pickle payload: the index bytes inside the state are what is fuzzed.
            index = NNdex.__new__(NNdex)
            index.__setstate__({"index": data, "enable_cache": True})
        elif fmt.startswith("index"):
            index = NNdex.load(path, mmap=bool(len(data) % 2))
            _nndex.Index.from_bytes(data, 0)
        else:
            keys = {"npz-stored": ("a", "b", None), "parquet": ("emb", "var", None)}.get(fmt, (None,))
            matrix = load_matrix(path, keys[len(data) % len(keys)])
            if matrix.ndim == 2 and matrix.shape[0] * matrix.shape[1] > 0:
                with np.errstate(all="ignore"):
                    np.asarray(matrix).sum()  # touch every value: a bad mapping would fault here
            index = NNdex(matrix)
        q = np.ones(index.dims, dtype=np.float32)
        index.search(q, k=3)
        return "ok"
    except (ValueError, OSError) as exc:
        return type(exc).__name__


def drive(fmt: str, seconds: float, seed: int, first: int = 0, out: str | None = None) -> dict:
    """Runs mutations for `seconds`; the current case is written to `out` before it runs."""
    import warnings

    warnings.simplefilter("error")  # a warning escaping a loader counts as a failure too
    seed_data, ext = seed_bytes(fmt)
    folder = tempfile.mkdtemp(prefix="nndex-fuzz-")
    path = os.path.join(folder, "case" + ext)
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    i = first
    try:
        while time.monotonic() < deadline:
            rng = np.random.default_rng([seed, i])
            data = seed_data
            rounds = int(rng.integers(1, 4))
            what = []
            for _ in range(rounds):
                data, desc = mutate(data, rng)
                what.append(desc)
            if out:
                with open(out, "w") as f:
                    json.dump({"format": fmt, "seed": seed, "iteration": i, "mutation": what}, f)
            with open(path, "wb") as f:
                f.write(data)
            try:
                outcome = exercise(fmt, path, data)
            except BaseException as exc:  # anything else is a failure: report it with the case
                return {
                    "failure": f"{type(exc).__name__}: {exc}",
                    "format": fmt,
                    "seed": seed,
                    "iteration": i,
                    "mutation": what,
                }
            counts[outcome] = counts.get(outcome, 0) + 1
            i += 1
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    return {"format": fmt, "cases": i - first, "outcomes": counts}


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_files_raise_only_value_or_os_errors(fmt, tmp_path, child_env):
    seconds = _budget()
    seed = int(os.environ.get("NNDEX_FUZZ_SEED", "20240607"))
    progress = tmp_path / "case.json"
    result_file = tmp_path / "result.json"
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import test_fuzz_loaders as t; "
        "json.dump(t.drive(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), 0, sys.argv[5]), open(sys.argv[6], 'w'))"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", code, here, fmt, str(seconds), str(seed), str(progress), str(result_file)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if proc.returncode != 0:
        case = progress.read_text() if progress.exists() else "(no case started)"
        pytest.fail(
            f"fuzz child for {fmt} died with status {proc.returncode} (a crash?) on case {case}\n"
            f"stderr: {proc.stderr[-3000:]}"
        )
    result = json.loads(result_file.read_text())
    assert "failure" not in result, f"a loader raised something other than ValueError/OSError: {result}"
    assert result["cases"] > 0
    # The mutations must reach the interesting paths: both rejections and (some) survivors.
    assert sum(v for k, v in result["outcomes"].items() if k != "ok") > 0, result


# ------------------------------------------------------------------------------------------------
# Crafted index headers: valid checksums, absurd contents, bounded memory
# ------------------------------------------------------------------------------------------------

_FIXED = struct.Struct("<8sIIIIQQQQQ")  # magic, version, header bytes, flags, block rows, rows, dims, nlist, nprobe, sections
_SECTION = struct.Struct("<IIQQQ")  # kind, element bytes, offset, length, checksum


def _parse_index(data: bytes) -> tuple[list, list]:
    fixed = list(_FIXED.unpack_from(data, 0))
    sections = [list(_SECTION.unpack_from(data, _FIXED.size + 32 * i)) for i in range(fixed[9])]
    return fixed, sections


def craft_index(data: bytes, fixed_changes: dict | None = None, section_changes: dict | None = None) -> bytes:
    """Returns `data` with header fields changed and the header checksum recomputed (valid)."""
    import xxhash

    fields = ["magic", "version", "header_bytes", "flags", "block_rows", "rows", "dims", "nlist", "nprobe", "sections"]
    fixed, sections = _parse_index(data)
    for name, value in (fixed_changes or {}).items():
        fixed[fields.index(name)] = value
    for (i, name), value in (section_changes or {}).items():
        sections[i][["kind", "element_bytes", "offset", "length", "checksum"].index(name)] = value
    header = bytearray(_FIXED.pack(*fixed))
    for s in sections:
        header += _SECTION.pack(*s)
    header_bytes = fixed[2]
    body = bytearray(data)
    body[: len(header)] = header
    if 0 < header_bytes <= len(body) - 8:
        body[header_bytes : header_bytes + 8] = struct.pack("<Q", xxhash.xxh64_intdigest(bytes(body[:header_bytes])))
    return bytes(body)


def _crafted_cases(exact: bytes, ivf: bytes) -> list[tuple[str, bytes, str]]:
    """(name, bytes, regex the ValueError must match)."""
    return [
        ("rows 2^40", craft_index(exact, {"rows": 2**40}), r"absurd|holds|outside|expected"),
        ("dims 2^40", craft_index(exact, {"dims": 2**40}), r"absurd|holds|outside|expected"),
        ("rows*dims overflow", craft_index(exact, {"rows": 2**62, "dims": 2**10}), r"absurd"),
        ("rows max", craft_index(exact, {"rows": 2**64 - 1}), r"absurd"),
        ("zero rows", craft_index(exact, {"rows": 0}), r"empty"),
        ("newer version", craft_index(exact, {"version": 99}), r"version 99.*newer"),
        ("unknown flag", craft_index(exact, {"flags": 1 << 7}), r"flags"),
        ("block size", craft_index(exact, {"block_rows": 8}), r"block size"),
        ("section length 2^62", craft_index(exact, section_changes={(0, "length"): 2**62}), r"section"),
        ("section offset past end", craft_index(exact, section_changes={(0, "offset"): 2**40}), r"section"),
        ("section checksum", craft_index(exact, section_changes={(0, "checksum"): 12345}), r"checksum"),
        ("ivf nlist 2^40", craft_index(ivf, {"nlist": 2**40}), r"nlist|absurd"),
        ("ivf nprobe > nlist", craft_index(ivf, {"nprobe": 99}), r"nprobe"),
        ("ivf rows 2^50", craft_index(ivf, {"rows": 2**50}), r"absurd|nlist|rows"),
        ("ivf dims 2^40", craft_index(ivf, {"dims": 2**40}), r"absurd|expected|section"),
    ]


def _crafted_npy_and_npz() -> list[tuple[str, str, bytes, str]]:
    """(name, extension, bytes, regex) for .npy/.npz files whose headers promise absurd arrays."""
    out = []
    for shape in [(10**12, 10**6), (2**62, 2**62), (2**32, 2**32), (99999999999,)]:
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
        header = header.ljust(118) + "\n"
        blob = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 256
        out.append((f"npy shape {shape}", ".npy", blob, r"truncated|promises"))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("x.npy", blob)
        out.append((f"npz (deflate) shape {shape}", ".npz", buf.getvalue(), r"truncated|promises|claims"))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("x.npy", blob)
        out.append((f"npz (stored) shape {shape}", ".npz", buf.getvalue(), r"truncated|promises"))
    # A deflate member whose central directory claims a 1 TiB uncompressed size.
    buf = io.BytesIO()
    small = io.BytesIO()
    np.save(small, _matrix(4, 4))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", small.getvalue())
    raw = bytearray(buf.getvalue())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", 0xFFFFFFF0)  # uncompressed size
    out.append(("npz member claiming 4 GiB", ".npz", bytes(raw), r"claims|more than deflate|decompress"))
    return out


_MEMORY_CHILD = r"""
import json, os, resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import test_fuzz_loaders as t
from nndex import NNdex
from nndex._io import load_matrix

exact = NNdex(t._matrix(40, 6))._index.to_bytes()
ivf = NNdex(t._matrix(200, 4), approx=True, nlist=4, nprobe=2)._index.to_bytes()
cases = [(name, ".nndex", blob, rx) for name, blob, rx in t._crafted_cases(exact, ivf)] + t._crafted_npy_and_npz()
folder = sys.argv[2]

def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
# Address space: what the process has now plus 256 MiB. Any allocation of the sizes these headers
# promise (terabytes) fails with MemoryError instead of quietly overcommitting.
limit = vm_bytes() + (256 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
results = []
for i, (name, ext, blob, rx) in enumerate(cases):
    path = os.path.join(folder, f"case{i}{ext}")
    with open(path, "wb") as f:
        f.write(blob)
    try:
        if ext == ".nndex":
            NNdex.load(path, mmap=False)
        else:
            load_matrix(path)
        results.append([name, "accepted", "", rx])
    except ValueError as exc:
        results.append([name, "ValueError", str(exc), rx])
    except BaseException as exc:
        results.append([name, type(exc).__name__, str(exc), rx])
print(json.dumps(results))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
def test_crafted_headers_are_refused_without_large_allocations(tmp_path, child_env):
    import re

    pytest.importorskip("xxhash")
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, here, str(tmp_path)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) > 20
    for name, kind, message, rx in results:
        assert kind == "ValueError", f"{name}: expected ValueError under a tight memory limit, got {kind}: {message}"
        assert re.search(rx, message), f"{name}: message {message!r} does not match {rx!r}"
        assert "case" in message, f"{name}: the message does not name the file: {message!r}"


def test_crafted_index_checksums_are_valid():
    """The crafting helper itself: an unchanged header re-checksummed still loads."""
    pytest.importorskip("xxhash")
    from nndex import NNdex, _nndex

    data = NNdex(_matrix(40, 6))._index.to_bytes()
    assert craft_index(data) == data
    assert _nndex.Index.from_bytes(craft_index(data), 0).rows == 40
    with pytest.raises(ValueError, match="rows|empty"):
        _nndex.Index.from_bytes(craft_index(data, {"rows": 0}), 0)


def test_pickled_index_with_corrupt_payload_raises_value_error():
    from nndex import NNdex

    index = NNdex(_matrix(40, 6))
    blob = bytearray(pickle.dumps(index))
    pos = blob.find(b"NNDEXIDX")
    blob[pos + 70] ^= 0xFF  # inside the section table, which the header checksum covers
    with pytest.raises(ValueError, match="checksum|corrupt"):
        pickle.loads(bytes(blob))


if __name__ == "__main__":
    # Reproduce or extend a run: FORMAT SECONDS SEED [FIRST_ITERATION]
    fmt, secs, sd = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    start = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    print(json.dumps(drive(fmt, secs, sd, start)))
