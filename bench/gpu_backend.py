"""The GPU backend against the CPU path on one machine: time per call, the rates it reaches, and the
crossover where the GPU starts to win.

Cases (each checked against the CPU's results before it is timed):
  * single query on rows x dims float32 (default 1,000,000 x 768): GB/s of rows read, and the share
    of --peak-gbs (the device's memory bandwidth, e.g. 4800 for an H200) when given;
  * a batch (default 2048 queries) over rows x 128: GFLOP/s (2 flops per multiply-add, top-k
    included), and the share of --peak-tflops (its fp32 peak) when given;
  * the crossover: single queries and batches of 32 over rows x 768 for rows from 1,000 up, GPU vs CPU.
faiss-gpu is timed beside it when it imports with GPUs (faiss.get_num_gpus() > 0).

    python bench/gpu_backend.py [--rows 1000000] [--dims 768] [--batch 2048] [--peak-gbs 4800]
                                [--peak-tflops 67] [--quick] [--out bench/results/gpu_backend.json]

--quick shrinks every case (for a software device such as lavapipe, which checks the script, not
the speed). Times are medians of repeated calls, with p10/p90.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import nndex
from common import cpu_model
from nndex import NNdex


def _times(fn, min_reps: int = 5, min_seconds: float = 1.0) -> dict:
    fn()  # warm: first-call buffers, pipelines, caches
    samples = []
    start = time.perf_counter()
    while len(samples) < min_reps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
        if len(samples) >= 200:
            break
    samples.sort()
    q = statistics.quantiles(samples, n=10) if len(samples) >= 2 else [samples[0]] * 9
    return {"median_s": statistics.median(samples), "p10_s": q[0], "p90_s": q[-1], "reps": len(samples)}


def _check(gpu: NNdex, cpu: NNdex, queries: np.ndarray, k: int) -> None:
    gi, gs = gpu.search(queries, k=k)
    ci, cs = cpu.search(queries, k=k)
    if not np.allclose(gs, cs, atol=1e-4) or (gi == ci).mean() < 0.99:
        raise SystemExit("the GPU's results differ from the CPU's: not timing them")


def _faiss_gpu():
    try:
        import faiss  # noqa: PLC0415

        return faiss if faiss.get_num_gpus() > 0 else None
    except Exception:  # noqa: BLE001 - any import failure means "not here"
        return None


def _pair(rows: int, dims: int, n: int, k: int, rng: np.random.Generator) -> dict:
    data = rng.standard_normal((rows, dims), dtype=np.float32)
    queries = rng.standard_normal((n, dims), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gpu = NNdex(data, backend="gpu", enable_cache=False)
    cpu = NNdex(data, enable_cache=False)
    q = queries[0] if n == 1 else queries
    _check(gpu, cpu, queries, k)
    out = {"rows": rows, "dims": dims, "queries": n, "k": k,
           "gpu": _times(lambda: gpu.search(q, k=k)), "cpu": _times(lambda: cpu.search(q, k=k))}
    faiss = _faiss_gpu()
    if faiss is not None:
        res = faiss.StandardGpuResources()
        flat = faiss.GpuIndexFlatIP(res, dims)
        unit = data / np.linalg.norm(data, axis=1, keepdims=True)
        flat.add(unit)
        fq = (queries / np.linalg.norm(queries, axis=1, keepdims=True))[:n]
        out["faiss_gpu"] = _times(lambda: flat.search(fq, k))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--peak-gbs", type=float, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not nndex.gpu_devices():
        raise SystemExit(f"no GPU: {nndex.gpu_unavailable_reason()}")
    if args.quick:
        args.rows, args.batch = min(args.rows, 20_000), min(args.batch, 64)
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        device = NNdex(np.ones((1, 4), np.float32), backend="gpu").gpu_info
    report = {"cpu": cpu_model(), "device": device, "cases": {}}

    single = _pair(args.rows, args.dims, 1, 10, rng)
    gbs = args.rows * args.dims * 4 / single["gpu"]["median_s"] / 1e9
    single["gpu_gb_per_s"] = gbs
    if args.peak_gbs:
        single["share_of_peak_bandwidth"] = gbs / args.peak_gbs
    report["cases"]["single"] = single

    batch_rows = args.rows
    batch = _pair(batch_rows, 128, args.batch, 10, rng)
    gflops = 2 * args.batch * batch_rows * 128 / batch["gpu"]["median_s"] / 1e9
    batch["gpu_gflop_per_s"] = gflops
    if args.peak_tflops:
        batch["share_of_peak_fp32"] = gflops / (args.peak_tflops * 1e3)
    report["cases"]["batch"] = batch

    crossover = []
    for rows in ([1000, 4000, 16000] if args.quick else [1000, 4000, 16000, 64000, 256000, 1_000_000]):
        for n in (1, 32):
            c = _pair(rows, 768, n, 10, rng)
            crossover.append({"rows": rows, "queries": n, "gpu_s": c["gpu"]["median_s"], "cpu_s": c["cpu"]["median_s"],
                              "gpu_faster": c["gpu"]["median_s"] < c["cpu"]["median_s"]})
    report["crossover"] = crossover
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
