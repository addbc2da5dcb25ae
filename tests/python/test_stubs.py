"""The committed type stubs python/nndex/_nndex.pyi are exactly what nanobind's stub generator writes
for the built extension. After changing python/src/bindings.cpp, regenerate them with
`./scripts/update-stubs.sh` (after reinstalling the package) and commit the result."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_COMMITTED = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "python", "nndex", "_nndex.pyi")


def test_committed_stubs_match_the_extension(tmp_path):
    pytest.importorskip("nanobind")
    if not os.path.exists(_COMMITTED):
        pytest.skip("not run from a source tree")
    out = tmp_path / "_nndex.pyi"
    subprocess.run(
        [sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "nndex._nndex", "-o", str(out)],
        check=True,
        cwd=str(tmp_path),
    )
    with open(_COMMITTED, encoding="utf-8") as f:
        committed = f.read()
    assert out.read_text(encoding="utf-8") == committed, (
        "python/nndex/_nndex.pyi is stale: run ./scripts/update-stubs.sh and commit it"
    )
    import nndex

    installed = os.path.join(os.path.dirname(nndex.__file__), "_nndex.pyi")
    with open(installed, encoding="utf-8") as f:
        assert f.read() == committed, f"the installed stubs {installed} differ from the committed ones"
