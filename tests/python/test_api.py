"""Public API surface: module attributes, constructor options, properties, repr, result objects."""

from __future__ import annotations

import gc
import platform
import re

import numpy as np
import pytest

import nndex
from nndex import NNdex
from oracle_helpers import assert_matches_oracle, assert_same_results, make_data, make_queries

ISAS = {"avx512", "avx2", "neon", "scalar"}


def test_version_is_a_string():
    assert isinstance(nndex.__version__, str)
    assert re.match(r"^\d+\.\d+", nndex.__version__), nndex.__version__


def test_nndex_class_is_exported():
    from nndex._index import NNdex as defined

    assert nndex.NNdex is NNdex is defined
    index = nndex.NNdex(make_data(4, 3))
    assert type(index) is defined and repr(index).startswith("NNdex(rows=4, dims=3, ")
    assert sorted(nndex.__all__) == [
        "CacheInfo", "NNdex", "__version__", "gpu_devices", "gpu_unavailable_reason", "load_matrix"
    ]


def test_uses_ivf():
    data = make_data(2048, 256)  # above the automatic IVF threshold (1,024 rows and 2**19 values)
    ivf = NNdex(data, approx=True, nlist=8, nprobe=2)
    assert ivf.uses_ivf is True and ivf.approx is True and ivf.nlist == 8
    assert "nlist=8, nprobe=2" in repr(ivf)
    assert NNdex(data, approx="ivf").uses_ivf is True
    assert NNdex(data, approx=True).method == "graph"  # the automatic choice
    assert NNdex(data, approx=True).uses_ivf is False
    assert NNdex(data[:1000], approx=True).method == "exact"  # under 1,024 rows: exact search
    assert NNdex(data[:1000], approx="ivf").uses_ivf is False
    assert NNdex(data).uses_ivf is False
    with pytest.raises(AttributeError):
        ivf.uses_ivf = False


@pytest.mark.parametrize("threads", [None, 1, 2, 3], ids=["threads-default", "t1", "t2", "t3"])
@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_properties(normalized, threads):
    index = NNdex(make_data(123, 45, normalized), normalized=normalized, threads=threads)
    assert index.rows == 123 and isinstance(index.rows, int)
    assert index.dims == 45 and isinstance(index.dims, int)
    assert index.backend == "cpu"
    assert isinstance(index.normalized, bool)
    assert index.normalized is normalized
    assert index.approx is False
    assert isinstance(index.threads, int)
    if threads is None:
        assert index.threads >= 1
    else:
        assert index.threads == threads
    assert index.isa in ISAS


def test_isa_matches_the_platform():
    isa = NNdex(make_data(3, 3)).isa
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        assert isa in {"avx512", "avx2", "scalar"}
    elif machine in ("aarch64", "arm64"):
        assert isa in {"neon", "scalar"}
    else:
        assert isa in ISAS


def test_properties_are_read_only():
    index = NNdex(make_data(10, 4))
    for name, value in [("rows", 5), ("dims", 2), ("backend", "gpu"), ("normalized", True), ("threads", 7)]:
        with pytest.raises(AttributeError):
            setattr(index, name, value)
    assert (index.rows, index.dims, index.backend, index.normalized) == (10, 4, "cpu", False)


def test_repr_names_class_rows_and_dims():
    index = NNdex(make_data(123, 45))
    text = repr(index)
    assert "NNdex" in text
    assert re.search(r"\b123\b", text), text
    assert re.search(r"\b45\b", text), text


def test_positional_arguments_follow_the_signature():
    data = make_data(30, 5, True)
    index = NNdex(data, True, False, "cpu", True, None)
    assert index.normalized is True
    assert index.approx is False
    assert index.backend == "cpu"


def test_threads_is_keyword_only():
    with pytest.raises(TypeError):
        NNdex(make_data(30, 5), False, False, "cpu", True, None, 2)


@pytest.mark.parametrize("backend", ["cpu", "CPU", "Cpu", "cPU"])
def test_backend_is_case_insensitive(backend):
    data = make_data(50, 6)
    index = NNdex(data, backend=backend)
    assert index.backend == "cpu"
    q = make_queries(2, 6)
    assert_same_results(index.search(q, k=5), NNdex(data).search(q, k=5))


@pytest.mark.parametrize("backend", ["gpu", "GPU", "Gpu"])
def test_gpu_backend_is_case_insensitive_and_needs_a_device(backend):
    """With a Vulkan device the index runs there (tests/python/test_gpu.py checks its results);
    without one, a ValueError says what is missing."""
    import warnings

    import nndex

    if not nndex.gpu_devices():
        with pytest.raises(ValueError, match=r"backend=.gpu. is unavailable"):
            NNdex(make_data(10, 4), backend=backend)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a software device warns
        assert NNdex(make_data(10, 4), backend=backend).backend == "gpu"


@pytest.mark.parametrize("backend", ["tpu", "metal", "", "cpu2"])
def test_unknown_backend_is_rejected(backend):
    with pytest.raises(ValueError, match=r"(?i)backend|" + re.escape(backend or "backend")):
        NNdex(make_data(10, 4), backend=backend)


@pytest.mark.parametrize("normalized", [False, True], ids=["cosine", "dot"])
def test_approx_on_a_small_matrix_falls_back_to_exact(normalized):
    data = make_data(50, 4, normalized)
    approx = NNdex(data, normalized=normalized, approx=True)
    exact = NNdex(data, normalized=normalized)
    assert approx.approx is True and exact.approx is False
    assert approx.uses_ivf is False and exact.uses_ivf is False
    assert approx.nlist == 1 and approx.nprobe == 1
    for got, want in zip(approx.search(data[:5], k=7), exact.search(data[:5], k=7)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("option", [{"nlist": 4}, {"nprobe": 2}, {"recall": 0.9}])
def test_ivf_options_need_approx(option):
    with pytest.raises(ValueError, match=r"(?i)approx"):
        NNdex(make_data(50, 4), **option)


@pytest.mark.parametrize("threads", [0, -1, -8])
def test_threads_below_one_is_rejected(threads):
    with pytest.raises(ValueError, match=r"(?i)thread"):
        NNdex(make_data(10, 4), threads=threads)


@pytest.mark.parametrize("threads", [1, 2, 5, 64])
def test_requested_threads_are_honoured(threads):
    data = make_data(2000, 16)
    index = NNdex(data, threads=threads)
    assert index.threads == threads
    q = make_queries(4, 16)
    assert_matches_oracle(*index.search(q, k=7), data, q, 7, False)


@pytest.mark.parametrize("enable_cache", [True, False])
def test_enable_cache_does_not_change_results(enable_cache):
    data = make_data(200, 12)
    q = make_queries(3, 12)
    index = NNdex(data, enable_cache=enable_cache)
    first = index.search(q, k=6)
    assert_same_results(index.search(q, k=6), first)
    assert_same_results(first, NNdex(data).search(q, k=6))


def test_search_returns_a_tuple_of_two_arrays():
    index = NNdex(make_data(40, 6))
    q = make_queries(3, 6)
    for query in (q, q[0]):
        result = index.search(query, k=4)
        assert isinstance(result, tuple) and len(result) == 2
        idx, sims = result
        assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
        assert isinstance(sims, np.ndarray) and sims.dtype == np.float32
        assert idx.shape == sims.shape == query.shape[:-1] + (4,)


def test_k_can_be_positional_or_keyword():
    index = NNdex(make_data(40, 6))
    q = make_queries(1, 6)[0]
    assert_same_results(index.search(q, 4), index.search(q, k=4))
    assert index.search(q, 4)[0].shape == (4,)


def test_results_outlive_the_index_and_are_independent():
    data = make_data(100, 8)
    q = make_queries(3, 8)
    index = NNdex(data)
    a_idx, a_sims = index.search(q, k=5)
    b_idx, b_sims = index.search(q, k=5)
    keep = (a_idx.copy(), a_sims.copy())
    b_idx[:] = -1
    b_sims[:] = 0
    del index
    gc.collect()
    np.testing.assert_array_equal(a_idx, keep[0])
    np.testing.assert_array_equal(a_sims, keep[1])
    assert_matches_oracle(a_idx, a_sims, data, q, 5, False)


def test_index_still_works_after_errors():
    data = make_data(30, 6)
    index = NNdex(data)
    q = make_queries(2, 6)
    expected = index.search(q, k=3)
    for bad in (np.ones(5, np.float32), np.zeros(6, np.float32), np.full(6, np.nan, np.float32)):
        with pytest.raises(ValueError):
            index.search(bad, k=3)
    with pytest.raises(ValueError):
        index.search(q, k=0)
    with pytest.raises(TypeError):
        index.search(q, k="3")
    assert_same_results(index.search(q, k=3), expected)


def test_many_indexes_can_coexist_and_be_released():
    indexes = [NNdex(make_data(50 + i, 4 + i % 3)) for i in range(40)]
    for i, index in enumerate(indexes):
        assert index.rows == 50 + i and index.dims == 4 + i % 3
    q = make_queries(1, 4)[0]
    expected = indexes[0].search(q, k=3)
    del indexes[1:]
    gc.collect()
    assert_same_results(indexes[0].search(q, k=3), expected)
