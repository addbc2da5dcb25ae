"""Resident memory of each index relative to the raw float32 matrix.

Method: every index is built in a fresh Python process that first creates (or loads) the
L2-normalised float32 matrix and imports its library. It then reads VmRSS from /proc/self/status,
resets the peak counter (writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS), builds
the index, and reads VmRSS (after a gc) and VmHWM again:

    kept  = (VmRSS after build - VmRSS before) / raw bytes     -- what the index keeps
    peak  = (VmHWM during build - VmRSS before) / raw bytes    -- transient build memory included

where raw bytes = rows x dims x 4. A copy of the rows is 1.00 on both. The approximate indexes are
measured the same way by the ANN suite's workers (same process model), so their figures come from
the ANN results of the dataset of the same size; this suite adds the exact indexes. numpy, simsimd
and usearch's exact search keep no index: they search the caller's matrix (0 extra).

Run through run_all.py; `python bench/memory_suite.py [--quick]` runs this part alone (without the
approximate indexes).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

from common import (RESULTS_DIR, gaussian, log, prepare_environment, proc_status_bytes, reset_peak_rss,
                    usable_cpus, write_json)

EXACT_INDEXES = {
    "nndex": "NNdex(X, normalized=True, enable_cache=False)",
    "faiss_flat": "faiss.IndexFlatIP(d); add(X)",
}
NO_INDEX = {"numpy": "numpy", "simsimd": "simsimd", "usearch_exact": "usearch exact"}


def shape(quick: bool) -> tuple[int, int]:
    return (100_000, 128) if quick else (1_000_000, 128)


def worker(key: str, n: int, d: int, out: Path) -> None:
    X = gaussian(n, d)
    threads = usable_cpus()
    if key == "nndex":
        from nndex import NNdex

        def build():
            return NNdex(X, normalized=True, threads=threads, enable_cache=False)

        def reported(ix):
            return int(ix.memory_bytes)
    elif key == "faiss_flat":
        import faiss
        faiss.omp_set_num_threads(threads)

        def build():
            ix = faiss.IndexFlatIP(d)
            ix.add(X)
            return ix

        def reported(ix):
            return None
    else:
        raise KeyError(key)
    gc.collect()
    rss0 = proc_status_bytes("VmRSS")
    ok = reset_peak_rss()
    t0 = time.perf_counter()
    ix = build()
    took = time.perf_counter() - t0
    gc.collect()
    rss1 = proc_status_bytes("VmRSS")
    hwm = proc_status_bytes("VmHWM")
    write_json(out, {"key": key, "n": n, "d": d, "build_s": took, "raw_bytes": int(X.nbytes), "rss_before": rss0,
                     "rss_after": rss1, "peak_rss": hwm if ok else None, "reported_bytes": reported(ix)})


def run(quick: bool, ann: dict | None = None) -> dict:
    n, d = shape(quick)
    rows = []
    for key, how in EXACT_INDEXES.items():
        out = RESULTS_DIR / f".mem-{key}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, str(n), str(d), str(out)]
        log(f"memory: {key} on {n}x{d} ...")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not out.exists():
            rows.append({"key": key, "how": how, "note": f"worker failed: {proc.stderr.strip()[-300:]}"})
            continue
        r = json.loads(out.read_text())
        out.unlink()
        r["how"] = how
        rows.append(r)
    for key, label in NO_INDEX.items():
        rows.append({"key": key, "how": f"{label}: no index, searches the caller's matrix", "n": n, "d": d,
                     "raw_bytes": n * d * 4, "kept_override": 0.0})
    if ann:
        for ds in ann.get("datasets", []):
            info = ds["dataset"]
            if info["kind"] != "clustered" or (info["n"], info["d"]) != (n, d):
                continue
            for key, res in ds["results"].items():
                if "memory" not in res:
                    rows.append({"key": key, "how": res.get("label", key), "note": res.get("note", "no data")})
                    continue
                m = res["memory"]
                rows.append({"key": key, "how": (res.get("describe") or {}).get("settings", res.get("label")),
                             "n": n, "d": d, "build_s": res.get("build_s"), **m, "source": ds["dataset"]["name"]})
    for r in rows:
        if r.get("raw_bytes") and r.get("rss_after") is not None:
            r["kept_ratio"] = (r["rss_after"] - r["rss_before"]) / r["raw_bytes"]
            if r.get("peak_rss") is not None:
                r["peak_ratio"] = (r["peak_rss"] - r["rss_before"]) / r["raw_bytes"]
        elif "kept_override" in r:
            r["kept_ratio"] = r["peak_ratio"] = r.pop("kept_override")
    return {"n": n, "d": d, "rows": rows}


def main() -> int:
    prepare_environment(Path(__file__).resolve())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "memory.json")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        key, n, d, out = args.worker
        worker(key, int(n), int(d), Path(out))
        return 0
    write_json(args.out, run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
