"""Environment variables (NNDEX_ISA, NNDEX_VERBOSE) and Ctrl-C, each in a fresh subprocess."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

# Searches a few deterministic data sets (dims chosen to hit SIMD tails) and saves the results
# to the .npz path given as argv[1]; prints the index's isa as the last stdout line.
# The seed is chosen so that, in every returned list and the next entry after it, no two oracle
# scores are closer than 4e-5: different kernels must then agree on the indices exactly.
SEARCH_CHILD = r"""
import sys
import numpy as np
from nndex import NNdex

rng = np.random.default_rng(2032)
cases = [
    ("a", 3000, 48, False),
    ("b", 1000, 768, False),
    ("c", 257, 1, True),
    ("d", 500, 33, True),
    ("e", 64, 5, False),
    ("f", 2000, 17, False),
    ("g", 700, 130, True),
]
out = {}
isa = None
for name, rows, dims, normalized in cases:
    data = rng.standard_normal((rows, dims)).astype(np.float32)
    queries = rng.standard_normal((6, dims)).astype(np.float32)
    if normalized:
        data /= np.float32(np.sqrt(dims))
        queries /= np.float32(np.sqrt(dims))
    index = NNdex(data, normalized=normalized)
    isa = index.isa
    k = rows if rows <= 64 else 10
    out[name + "_batch_idx"], out[name + "_batch_sims"] = index.search(queries, k=k)
    out[name + "_single_idx"], out[name + "_single_sims"] = index.search(queries[0], k=k)
np.savez(sys.argv[1], **out)
print(isa)
"""


def _search_child(env, path):
    proc = subprocess.run(
        [sys.executable, "-c", SEARCH_CHILD, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    isa = proc.stdout.strip().splitlines()[-1].strip()
    with np.load(path) as f:
        results = {name: f[name] for name in f.files}
    return isa, results


def _assert_results_agree(got, expected):
    assert sorted(got) == sorted(expected)
    for name in expected:
        if name.endswith("_idx"):
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        else:
            assert got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], expected[name], atol=1e-5, rtol=0, err_msg=name)


@pytest.fixture(scope="module")
def default_isa_results(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNDEX_")}
    return _search_child(env, tmp_path_factory.mktemp("isa") / "default.npz")


def test_default_child_reports_a_known_isa(default_isa_results):
    isa, results = default_isa_results
    assert isa in {"avx512", "avx2", "neon", "scalar"}
    assert results["a_batch_idx"].shape == (6, 10)
    assert results["c_single_idx"].shape == (10,)
    assert results["e_batch_idx"].shape == (6, 64)


def test_nndex_isa_scalar_gives_the_same_results(default_isa_results, child_env, tmp_path):
    _, expected = default_isa_results
    env = dict(child_env, NNDEX_ISA="scalar")
    isa, got = _search_child(env, tmp_path / "scalar.npz")
    assert isa == "scalar"
    _assert_results_agree(got, expected)


def test_nndex_isa_avx2_below_avx512_gives_the_same_results(default_isa_results, child_env, tmp_path):
    default_isa, expected = default_isa_results
    if default_isa != "avx512":
        pytest.skip(f"default isa is {default_isa}, not avx512")
    env = dict(child_env, NNDEX_ISA="avx2")
    isa, got = _search_child(env, tmp_path / "avx2.npz")
    assert isa == "avx2"
    _assert_results_agree(got, expected)


VERBOSE_CHILD = r"""
import sys
import numpy as np
from nndex import NNdex

index = NNdex(np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32))
q = np.ones((3, 8), dtype=np.float32)
sys.stdout.flush()
sys.stderr.write("MARK\n")
sys.stderr.flush()
index.search(q[0], k=3)
index.search(q, k=2)
index.search(q[:1], k=5)
sys.stderr.flush()
print("done", flush=True)
"""


def _verbose_child(env):
    proc = subprocess.run(
        [sys.executable, "-c", VERBOSE_CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip().splitlines()[-1] == "done"
    return proc.stdout, proc.stderr


def test_nndex_verbose_prints_one_line_per_search(child_env):
    stdout, stderr = _verbose_child(dict(child_env, NNDEX_VERBOSE="1"))
    lines = stderr.splitlines()
    assert "MARK" in lines, stderr
    after = lines[lines.index("MARK") + 1 :]
    tagged = [line for line in after if line.startswith("[nndex]")]
    assert len(tagged) == 3, f"expected 3 '[nndex]' lines after the 3 searches, got:\n{stderr}"
    assert "[nndex]" not in stdout


def test_no_output_without_nndex_verbose(child_env):
    stdout, stderr = _verbose_child(child_env)
    assert "[nndex]" not in stderr, stderr
    assert "[nndex]" not in stdout, stdout


# A long batch search in the main thread; the parent sends SIGINT once it is under way.
INTERRUPT_CHILD = r"""
import signal
import sys
import time

# A child started from a shell background job may inherit SIGINT as ignored; restore Python's
# handler so the signal turns into KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np
from nndex import NNdex

threads = int(sys.argv[1])
rng = np.random.default_rng(0)
data = rng.standard_normal((200_000, 256), dtype=np.float32)
queries = rng.standard_normal((12000, 256), dtype=np.float32)  # ~3 s at 2 cores' AVX-512 peak
index = NNdex(data, threads=threads)
print("ready", flush=True)
start = time.monotonic()
try:
    index.search(queries, k=10)
    print("finished %.3f" % (time.monotonic() - start), flush=True)
except KeyboardInterrupt:
    print("interrupted %.3f" % (time.monotonic() - start), flush=True)

# The index still works, and still gives right answers.
idx, sims = index.search(queries[:3], k=5)
assert idx.shape == (3, 5) and sims.shape == (3, 5), (idx.shape, sims.shape)
q = queries[:3] / np.linalg.norm(queries[:3], axis=1, keepdims=True)
scores = (data @ q.T).T / np.linalg.norm(data, axis=1)
best = np.argmax(scores, axis=1)
assert np.array_equal(idx[:, 0], best), (idx[:, 0], best)
assert np.allclose(sims[:, 0], scores[np.arange(3), best], atol=1e-4), (sims, scores[np.arange(3), best])
print("ok", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child needs POSIX")
@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
def test_ctrl_c_interrupts_a_long_search(child_env, tmp_path, threads):
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", INTERRUPT_CHILD, str(threads)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
    lines: queue.Queue = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    reader_thread = threading.Thread(target=reader, daemon=True)
    reader_thread.start()

    def next_line(timeout):
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from the child within {timeout} s; stderr:\n{stderr_path.read_text()}")
        if line is None:
            pytest.fail(f"child exited early ({proc.wait()}); stderr:\n{stderr_path.read_text()}")
        return line

    try:
        assert next_line(120) == "ready"
        time.sleep(1.0)  # let the search get well under way inside the library
        assert proc.poll() is None, "child exited before the signal"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = next_line(30)
        latency = time.monotonic() - sent
        assert line.startswith("interrupted"), f"search was not interrupted: {line!r}"
        ran_for = float(line.split()[1])
        assert ran_for >= 0.8, f"the signal arrived before the search started ({ran_for} s)"
        assert latency < 1.5, f"KeyboardInterrupt took {latency:.2f} s after SIGINT"
        assert next_line(60) == "ok"
        assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader_thread.join(timeout=10)
        proc.stdout.close()
