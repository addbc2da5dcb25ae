#!/usr/bin/env python3
"""The nndex benchmark suite, in one command.

    python bench/run_all.py --quick     # < 5 minutes on 2 cores: a first look
    python bench/run_all.py             # the full run (< 60 minutes on 2 cores)

Runs, in this order, each part writing its JSON under bench/results/:
  limits  the machine's memory read bandwidth and peak FMA throughput (bench/native/membw.cpp)
  exact   exact top-k against numpy, simsimd, faiss IndexFlatIP and usearch (exact_suite.py)
  cpp     Google Benchmark microbenchmarks of the internals (bench/cpp, built in build/bench)
  ann     recall@10 vs queries/s and build time against faiss IVFFlat, usearch HNSW, hnswlib
          (ann_suite.py); it gets what is left of the time budget (4m40s quick, 56 min full) and
          skips, with a note, builds projected to overrun it
  memory  resident memory of every index relative to the raw matrix (memory_suite.py)
  storage bf16 / int8 storage against f32, faiss SQ + refine and usearch bf16 / i8 (bench_storage.py)
then renders BENCHMARKS.md at the repository root with its plots (report.py).

--only / --skip select parts; --report-only re-renders the page from the stored JSON.
Progress goes to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (REPO_DIR, RESULTS_DIR, cache_sizes, compiler_description, cpu_family_model,  # noqa: E402
                    cpu_model, hypervisor, load_average, log, meminfo_bytes, os_description,
                    prepare_environment, read_json, removed_env, thp_mode, usable_cpus, write_json)

# Run order: the approximate suite, the longest, goes last but one and gets what is left of the time
# budget (memory needs its results and takes a few seconds).
PARTS = ("limits", "exact", "cpp", "ann", "memory", "storage")
BUDGET_S = {"quick": 280.0, "full": 56 * 60.0}
MEMORY_RESERVE_S = {"quick": 15.0, "full": 90.0}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Run the nndex benchmark suite and render BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and shorter timings (< 5 min)")
    ap.add_argument("--only", default=None, help=f"comma-separated parts to run ({','.join(PARTS)})")
    ap.add_argument("--skip", default="", help="comma-separated parts not to run")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="overall time budget (default 4m40s quick, 56 min full); the ANN part gets what is left")
    ap.add_argument("--report-only", action="store_true", help="only re-render BENCHMARKS.md from bench/results")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON and plots go")
    ap.add_argument("--page", type=Path, default=REPO_DIR / "BENCHMARKS.md", help="the markdown page to write")
    args = ap.parse_args()
    chosen = set(PARTS) if args.only is None else {p.strip() for p in args.only.split(",") if p.strip()}
    chosen -= {p.strip() for p in args.skip.split(",") if p.strip()}
    unknown = chosen - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    args.parts = [p for p in PARTS if p in chosen]
    return args


def machine_meta(args: argparse.Namespace) -> dict:
    import numpy  # noqa: F401  (loaded so that threadpoolctl sees its OpenBLAS)
    from common import blas_libraries
    try:
        import faiss  # noqa: F401  (its own OpenBLAS and OpenMP)
    except ImportError:
        pass
    from peers import library_versions
    nndex_info = {}
    try:
        import nndex
        probe = nndex.NNdex(numpy.ones((16, 2), dtype=numpy.float32), normalized=True)
        nndex_info = {"isa": probe.isa, "threads": probe.threads, "file": nndex.__file__}
    except Exception as exc:
        nndex_info = {"error": str(exc)}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "full",
        "command": "python bench/run_all.py" + (" --quick" if args.quick else ""),
        "argv": sys.argv[1:],
        "cpu": cpu_model(),
        "cpu_id": cpu_family_model(),
        "logical_cpus": __import__("os").cpu_count(),
        "usable_cpus": usable_cpus(),
        "caches": cache_sizes(),
        "memory_bytes": meminfo_bytes("MemTotal"),
        "os": os_description(),
        "hypervisor": hypervisor(),
        "thp": thp_mode(),
        "compiler": compiler_description(),
        "python": platform.python_version(),
        "versions": library_versions(),
        "nndex": nndex_info,
        "blas": blas_libraries(),
        "removed_env": removed_env(),
        "load_before": load_average(),
    }


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    args = parse_args()
    out = args.results
    if args.report_only:
        import report
        report.render(out, args.page)
        return 0

    t_start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    budget = BUDGET_S[mode] if args.budget_minutes is None else args.budget_minutes * 60.0
    deadline = time.monotonic() + budget - MEMORY_RESERVE_S[mode]
    meta = machine_meta(args)
    meta["parts"] = args.parts
    meta["budget_minutes"] = round(budget / 60.0, 1)
    meta["seconds"] = {}
    write_json(out / "meta.json", meta)
    log(f"nndex benchmark suite ({meta['mode']}): {', '.join(args.parts)}; results in {out}")

    def save(part: str, payload: dict, t0: float) -> None:
        payload["run"] = {"mode": meta["mode"], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        write_json(out / f"{part}.json", payload)
        meta["seconds"][part] = time.perf_counter() - t0
        write_json(out / "meta.json", meta)

    if "limits" in args.parts:
        import limits
        t0 = time.perf_counter()
        save("limits", limits.measure(args.quick), t0)
    if "exact" in args.parts:
        import exact_suite
        t0 = time.perf_counter()
        save("exact", exact_suite.run(exact_suite.config(args.quick)), t0)
    if "cpp" in args.parts:
        import cpp_suite
        t0 = time.perf_counter()
        save("cpp", cpp_suite.run(args.quick), t0)
    ann = None
    if "ann" in args.parts:
        import ann_suite
        t0 = time.perf_counter()
        ann = ann_suite.run(ann_suite.config(args.quick), deadline=deadline)
        save("ann", ann, t0)
    if "memory" in args.parts:
        import memory_suite
        t0 = time.perf_counter()
        if ann is None and (out / "ann.json").exists():
            ann = read_json(out / "ann.json")
        save("memory", memory_suite.run(args.quick, ann), t0)
    if "storage" in args.parts:
        import bench_storage
        t0 = time.perf_counter()
        save("storage", bench_storage.run(args.quick, min_time_s=0.3 if args.quick else 1.0), t0)

    meta["load_after"] = load_average()
    meta["total_seconds"] = time.perf_counter() - t_start
    write_json(out / "meta.json", meta)
    log(f"suite finished in {meta['total_seconds']:.0f} s")

    import report
    report.render(out, args.page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
