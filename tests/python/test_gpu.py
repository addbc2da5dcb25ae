"""The GPU backend from Python, on whatever Vulkan device this machine has (in CI: Mesa's lavapipe,
a CPU implementation, so correctness only). NNDEX_EXPECT_GPU=1 (set by scripts/test.sh) turns the
skips for a missing device into failures."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nndex
from nndex import NNdex
from oracle_helpers import assert_matches_oracle, make_data, make_queries, run_in_threads

_devices = nndex.gpu_devices()
_expect = os.environ.get("NNDEX_EXPECT_GPU") == "1"


def test_a_device_is_found_where_one_is_expected():
    if not _expect:
        pytest.skip("NNDEX_EXPECT_GPU is not set")
    assert _devices, nndex.gpu_unavailable_reason()
    assert nndex.gpu_unavailable_reason() == ""


needs_device = pytest.mark.skipif(not _devices, reason=f"no Vulkan device: {nndex.gpu_unavailable_reason()}")


def _gpu(data, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a software device warns; tested on its own
        return NNdex(data, backend="gpu", **options)


def _tol(normalized: bool, sims: np.ndarray) -> float:
    # Raw dot products beyond 1 carry float32 rounding relative to their size.
    return 1e-5 * max(1.0, float(np.abs(sims).max())) if normalized else 1e-5


@needs_device
def test_devices_are_described():
    for i, d in enumerate(_devices):
        assert d["index"] == i
        assert d["name"] and d["api_version"]
        assert d["type"] in {"discrete", "integrated", "virtual", "cpu", "other"} or "unusable" in d["type"]
        assert d["software"] == (d["type"] == "cpu")
        assert isinstance(d["memory_bytes"], int)


@needs_device
@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize(
    "rows,dims,n",
    [(1, 1, 1), (7, 3, 3), (1000, 17, 5), (1025, 48, 4), (3000, 128, 2), (1500, 384, 2), (1100, 768, 3),
     (100_000, 2, 2), (700, 48, 2048)],
)
def test_matches_the_oracle(rows, dims, n, normalized):
    data = make_data(rows, dims, normalized)
    queries = make_queries(n, dims, normalized, salt=3)
    index = _gpu(data, normalized=normalized, enable_cache=False)
    assert index.backend == "gpu"
    for k in (1, 10, 100):
        idx, sims = index.search(queries, k=k)
        assert idx.shape == (n, min(k, rows))
        assert_matches_oracle(idx, sims, data, queries, k, normalized, sim_tol=_tol(normalized, sims))
    idx, sims = index.search(queries[0], k=10)  # one query: 1-D results
    assert idx.ndim == 1
    assert_matches_oracle(idx[None], sims[None], data, queries[:1], 10, normalized, sim_tol=_tol(normalized, sims))


@needs_device
def test_filters_ids_and_mutations_match_the_cpu():
    data = make_data(3000, 32)
    queries = make_queries(3, 32, salt=5)
    cpu = NNdex(data, enable_cache=False)
    gpu = _gpu(data, enable_cache=False)
    for index in (cpu, gpu):
        index.add(make_data(500, 32)[::-1].copy())
        index.remove(np.arange(0, 3000, 4))
    allowed = np.arange(1, 3500, 3)
    for kwargs in ({}, {"filter": allowed}, {"filter": np.isin(np.arange(3500), allowed)}):
        ci, cs = cpu.search(queries, k=20, **kwargs)
        gi, gs = gpu.search(queries, k=20, **kwargs)
        np.testing.assert_allclose(gs, cs, atol=1e-5)
        assert (gi == ci).mean() > 0.99
    assert gpu.backend == "gpu"


@needs_device
def test_save_load_and_pickle_keep_the_backend(tmp_path):
    data = make_data(2000, 24)
    queries = make_queries(2, 24, salt=6)
    gpu = _gpu(data)
    want = gpu.search(queries, k=10)
    gpu.save(tmp_path / "i.nndex")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loaded = NNdex.load(tmp_path / "i.nndex", backend="gpu")
        copy = pickle.loads(pickle.dumps(gpu))
    for other in (loaded, copy):
        assert other.backend == "gpu"
        got = other.search(queries, k=10)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], atol=1e-6)
    assert NNdex.load(tmp_path / "i.nndex").backend == "cpu"


@needs_device
def test_searches_from_many_threads_at_once():
    data = make_data(4000, 40)
    queries = make_queries(16, 40, salt=7)
    gpu = _gpu(data, enable_cache=False)
    want = [gpu.search(q, k=10) for q in queries]

    def worker(offset: int) -> None:
        for i in range(32):
            j = (i + offset) % 16
            got = gpu.search(queries[j], k=10)
            np.testing.assert_array_equal(got[0], want[j][0])

    run_in_threads(worker, 4)


@needs_device
def test_info_names_the_device_with_the_original_keys():
    info = _gpu(make_data(10, 4)).gpu_info
    assert info is not None
    assert {"index", "name", "driver", "driver_info", "backend", "device_type", "software"} <= set(info)
    assert info["backend"] == "Vulkan"
    assert NNdex(make_data(10, 4)).gpu_info is None


@needs_device
def test_a_software_device_warns_once_and_auto_never_takes_it():
    software = [d for d in _devices if d["software"]]
    hardware = [d for d in _devices if not d["software"]]
    if not software:
        pytest.skip("no software Vulkan device here")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NNdex(make_data(10, 4), backend="gpu", gpu_device_index=software[0]["index"])
        NNdex(make_data(10, 4), backend="gpu", gpu_device_index=software[0]["index"])
    # Once per process: an earlier test may have had it already.
    assert len([w for w in caught if "software Vulkan device" in str(w.message)]) <= 1
    auto = NNdex(make_data(10, 4), backend="auto")
    assert auto.backend == ("gpu" if hardware else "cpu")


@needs_device
def test_approximate_indexes_search_on_the_cpu_and_say_so():
    data = make_data(3000, 16)
    index = _gpu(data, storage="int8")
    assert index.backend == "cpu"
    idx, _ = index.search(make_queries(1, 16, salt=8)[0], k=5)
    assert idx.shape == (5,)


@needs_device
def test_a_device_out_of_range_is_a_value_error():
    with pytest.raises(ValueError, match="out of range"):
        NNdex(make_data(10, 4), backend="gpu", gpu_device_index=len(_devices))


def test_bad_backend_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unsupported backend 'tpu'"):
        NNdex(make_data(10, 4), backend="tpu")
    for bad in (-1, True, 1.5, "0"):
        with pytest.raises(ValueError, match="gpu_device_index"):
            NNdex(make_data(10, 4), backend="gpu", gpu_device_index=bad)


_NO_DEVICE_CHECK = """
import numpy as np, pytest, nndex
from nndex import NNdex
assert nndex.gpu_devices() == [], nndex.gpu_devices()
reason = nndex.gpu_unavailable_reason()
assert reason, "no reason given"
data = np.ones((10, 4), np.float32)
with pytest.raises(ValueError, match="unavailable") as error:
    NNdex(data, backend="gpu")
assert reason in str(error.value), (reason, str(error.value))
assert NNdex(data, backend="auto").backend == "cpu"
assert NNdex(data, backend="cpu").search(data[0], k=3)[0].tolist() == [0, 1, 2]
"""


def test_gpu_without_a_device_is_a_value_error_naming_what_is_missing(tmp_path):
    # The Vulkan loader takes its drivers from VK_DRIVER_FILES (VK_ICD_FILENAMES before loader 1.3.207):
    # pointing both at a file that does not exist hides every device, so a machine with a GPU (or
    # lavapipe) runs the no-device path too, in a child process.
    env = dict(os.environ, VK_DRIVER_FILES=str(tmp_path / "none.json"), VK_ICD_FILENAMES=str(tmp_path / "none.json"))
    child = subprocess.run([sys.executable, "-c", _NO_DEVICE_CHECK], env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert child.returncode == 0, child.stdout + child.stderr
