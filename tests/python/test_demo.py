"""The demo (the README's first command): warm medians next to the first call, and numpy beside nndex."""

from __future__ import annotations

import re

from nndex import demo


def test_demo_reports_first_and_warm_times_next_to_numpy(capsys):
    demo.main(["--rows", "3000", "--dims", "16", "--batch", "8", "-k", "4", "--calls", "8"])
    out = capsys.readouterr().out
    timing = re.compile(r"^  (nndex|numpy) +first call +[\d,.]+ (us|ms), then median +[\d,.]+ (us|ms) over (\d+) calls")
    lines = [m for m in map(timing.match, out.splitlines()) if m]
    assert [m.group(1) for m in lines] == ["nndex", "numpy", "nndex", "numpy"], out
    assert [int(m.group(4)) for m in lines] == [8, 8, 2, 2]
    assert "same top 4 as numpy: yes" in out
    assert "same top 4 as numpy: 100.0% of ranks\n" in out
    assert "row     123  similarity" in out.split("single query")[1].splitlines()[1]  # the noisy copy is found first


def test_numpy_reference_is_exact_top_k():
    import numpy as np

    rng = np.random.default_rng(3)
    data = rng.standard_normal((500, 8), dtype=np.float32)
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    queries = rng.standard_normal((3, 8), dtype=np.float32)
    expected = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ normed.T, axis=1)[:, :6]
    np.testing.assert_array_equal(demo._numpy_topk(normed, queries, 6), expected)
