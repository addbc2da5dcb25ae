"""Compressed storage at every kernel level the CPU has: the same results whatever NNDEX_ISA forces
(AMX tiles off, dot instructions off, scalar), and the level reported in `isa`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

CHILD = r"""
import json, sys
import numpy as np
from nndex import NNdex
rng = np.random.default_rng(17)
X = rng.standard_normal((3000, 100), dtype=np.float32)
Q = rng.standard_normal((40, 100), dtype=np.float32)
out = {}
for storage in ("bf16", "int8"):
    for approx in (False, True):
        ix = NNdex(X, storage=storage, approx=approx, nlist=30 if approx else None, nprobe=6 if approx else None)
        batch = ix.search(Q, k=10)          # AMX's path where the CPU has it
        single = [ix.search(q, k=10) for q in Q[:5]]
        out[f"{storage}-{approx}"] = {"isa": ix.isa, "ids": batch[0].tolist(), "sims": batch[1].tolist(),
                                      "single_ids": [s[0].tolist() for s in single]}
print(json.dumps(out))
"""


def _run(isa: str | None) -> dict:
    env = dict(os.environ)
    env.pop("NNDEX_ISA", None)
    if isa is not None:
        env["NNDEX_ISA"] = isa
    res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.fixture(scope="module")
def default_run() -> dict:
    return _run(None)


def test_amx_off_gives_the_same_results(default_run: dict) -> None:
    # NNDEX_ISA=avx512 keeps every float32 kernel and turns the AMX tiles off (VNNI / BF16 dot
    # instructions score instead): int8 sums are exact integers at every level, so shortlists and
    # results are identical.
    forced = _run("avx512")
    for key, want in default_run.items():
        got = forced[key]
        if key.startswith("int8"):
            assert got["ids"] == want["ids"], key
            assert got["sims"] == want["sims"], key
            assert got["single_ids"] == want["ids"][:5], key  # single queries take the few-query kernels
        else:
            # bf16 dot instructions and tiles round pair sums their own way, which can swap two rows
            # at the edge of the shortlist; the exact similarities of the rows both return agree.
            _expect_close(got, want, key, exact=True)


@pytest.mark.parametrize("isa", ["avx2", "scalar"])
def test_lower_levels_give_the_same_results(default_run: dict, isa: str) -> None:
    # Lower levels also change the float32 kernels, whose norm sums (the normalisation of rows and
    # queries) add in another order: similarities agree to float32 rounding, not bit for bit.
    forced = _run(isa)
    for key, want in default_run.items():
        _expect_close(forced[key], want, key, exact=False)


def _expect_close(got: dict, want: dict, key: str, exact: bool) -> None:
    a, b = np.array(got["ids"]), np.array(want["ids"])
    assert np.mean(a == b) >= 0.99, key
    same = a == b
    ga, wa = np.array(got["sims"])[same], np.array(want["sims"])[same]
    if exact:
        np.testing.assert_array_equal(ga, wa, err_msg=key)
    else:
        np.testing.assert_allclose(ga, wa, rtol=0, atol=1e-6, err_msg=key)


def test_isa_names_the_compressed_kernels(default_run: dict) -> None:
    flags = _cpu_flags()
    isa = default_run["int8-False"]["isa"]
    if "amx_int8" in flags and "amx_tile" in flags:
        # AMX is used when the kernel grants the tile state; a refusal falls back to VNNI.
        assert isa in ("avx512+amx", "avx512+vnni")
    elif "avx512_vnni" in flags:
        assert isa == "avx512+vnni"
    assert _run("scalar")["bf16-False"]["isa"] == "scalar"
    assert _run("avx512")["int8-False"]["isa"] in (("avx512+vnni",) if "avx512_vnni" in flags else ("avx512", "avx2"))
