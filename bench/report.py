"""Renders BENCHMARKS.md and its plots from the suite's JSON results (bench/results/*.json).

    python bench/report.py [--results bench/results] [--page BENCHMARKS.md]

Every number on the page comes from the JSON; nothing is typed in by hand. Rows where nndex is not
ahead are shown like the others and listed again at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO_DIR, RESULTS_DIR, read_json  # noqa: E402

EXACT_ORDER = ["nndex", "numpy", "simsimd", "faiss_flat", "usearch_exact"]
EXACT_LABELS = {"nndex": "nndex", "numpy": "numpy", "simsimd": "simsimd", "faiss_flat": "faiss Flat",
                "usearch_exact": "usearch exact"}
ANN_ORDER = ["nndex_ivf", "faiss_ivf", "usearch_hnsw", "hnswlib"]
ANN_LABELS = {"nndex_ivf": "nndex IVF", "faiss_ivf": "faiss IVFFlat", "usearch_hnsw": "usearch HNSW",
              "hnswlib": "hnswlib HNSW"}
COLORS = {"nndex": "#d62728", "nndex_ivf": "#d62728", "numpy": "#1f77b4", "simsimd": "#9467bd",
          "faiss_flat": "#2ca02c", "faiss_ivf": "#2ca02c", "usearch_exact": "#ff7f0e", "usearch_hnsw": "#ff7f0e",
          "hnswlib": "#8c564b"}
MEMORY_LABELS = {**EXACT_LABELS, **ANN_LABELS, "nndex": "nndex exact"}


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def fmt_time(ns: float | None) -> str:
    if ns is None:
        return ""
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs" if ns < 1e5 else f"{ns / 1e3:.0f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms" if ns < 1e8 else f"{ns / 1e6:.0f} ms"
    return f"{ns / 1e9:.3g} s"


def spread_pct(stats: dict) -> float:
    return 100.0 * (stats["p90_ns"] - stats["p10_ns"]) / (2.0 * stats["median_ns"])


def fmt_stats(stats: dict, mark: str = "") -> str:
    return f"{fmt_time(stats['median_ns'])}{mark} ±{spread_pct(stats):.0f}%"


def fmt_binary(b: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def fmt_bytes(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def fmt_qps(q: float | None) -> str:
    if q is None:
        return ""
    if q >= 1e6:
        return f"{q / 1e6:.2f}M"
    if q >= 1e4:
        return f"{q / 1e3:.0f}k"
    if q >= 1e3:
        return f"{q / 1e3:.1f}k"
    return f"{q:.0f}"


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return ""
    text = f"{r:.2f}×"
    return text if r >= 1.0 else f"**{text}** ⚠"


def short_note(note: str | None) -> str:
    if not note:
        return "–"
    if note.startswith("skipped: ~") and "projected" in note:
        return "skip (time)"
    if note.startswith("skipped:") and "GiB" in note:
        return "skip (memory)"
    if "CHECK FAILED" in note:
        return "**check failed**"
    if note.startswith("error"):
        return "error"
    return note[:20]


def table(head: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" * len(head))
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def load(results: Path, name: str):
    p = results / f"{name}.json"
    return read_json(p) if p.exists() else None


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------

class Limits:
    def __init__(self, data: dict | None, isa: str | None, llc: int | None):
        self.data = data if data and "error" not in data else None
        self.error = data.get("error") if data else "not measured"
        self.threads = self.data.get("threads") if self.data else None
        from limits import peak_key_for_isa
        self.peak_key = peak_key_for_isa(isa)
        self.llc = llc

    def read_gbps(self, threads: int) -> float | None:
        if not self.data:
            return None
        return self.data["read_gbps_1t"] if threads == 1 else self.data["read_gbps_all"]

    def peak_gflops(self, threads: int, key: str | None = None) -> float | None:
        if not self.data:
            return None
        p = (self.data.get("peak_gflops") or {}).get(key or self.peak_key)
        if not p:
            return None
        return p["1t"] if threads == 1 else p["all"]


def limits_section(lim: Limits, meta: dict) -> list[str]:
    out = ["## The machine's limits", ""]
    if not lim.data:
        out += [f"Not measured: {lim.error}.", ""]
        return out
    d = lim.data
    n = d["threads"]
    rows = [["memory read bandwidth", f"{d['read_gbps_1t']:.1f} GB/s", f"{d['read_gbps_all']:.1f} GB/s",
             f"best of {d['reps']} passes over {d['bytes'] / 2**30:.2f} GiB; best kernel "
             f"{d.get('read_kernel_1t', '?')} / {d.get('read_kernel_all', '?')}; "
             f"median {d['read_gbps_1t_median']:.1f} / {d['read_gbps_all_median']:.1f} GB/s"]]
    for key, p in (d.get("peak_gflops") or {}).items():
        share = p.get("cpu_share_all")
        rows.append([f"peak FMA, {key}", f"{p['1t']:.1f} GFLOP/s", f"{p['all']:.1f} GFLOP/s",
                     f"median {p.get('1t_median', float('nan')):.1f} / {p.get('all_median', float('nan')):.1f}"
                     + (f"; threads held a CPU {100 * share:.0f}% of the best pass" if share is not None else "")])
    out.append(table(["limit", "1 thread", f"{n} threads", "notes"], rows, "lrrl"))
    out.append("")
    thp = d.get("huge_page_bytes")
    out.append(
        f"Measured in the same run by `{d.get('command', 'membw')}` (built with `{d.get('build_command', '')}`). "
        "Read bandwidth: each thread streams its own slice of a 2 MiB-aligned, `MADV_HUGEPAGE` buffer "
        f"({'%.0f%%' % (100 * thp / d['bytes']) if thp and thp > 0 else 'no'} of it on huge pages), far "
        "larger than the last-level cache; SSE2, AVX2 and AVX-512 loads with 1 to 8 streams per thread are "
        "tried and the best is kept. FMA peak: 12 independent FMA chains per thread in registers, about "
        "20 ms per pass, best of many passes, threads pinned to distinct CPUs. nndex's figures below are "
        f"given as a fraction of these (its kernels run at the `{meta.get('nndex', {}).get('isa', '?')}` "
        "level, compared with that FMA peak).")
    shares = [p.get("cpu_share_all") for p in (d.get("peak_gflops") or {}).values() if p.get("cpu_share_all")]
    shares += [d.get("read_cpu_share_all")] if d.get("read_cpu_share_all") else []
    if shares and min(shares) < 0.9:
        out.append("")
        out.append(f"⚠ During the best all-thread pass the threads held a CPU only {100 * min(shares):.0f}% of "
                   "the time: other processes were running, so the all-thread limits are lower bounds and the "
                   "fractions of limit below are overstated.")
    out.append("")
    return out


# ---------------------------------------------------------------------------
# Exact search
# ---------------------------------------------------------------------------

def exact_index(rows: list[dict]) -> dict:
    return {(r["n"], r["d"], r["k"], r["nq"], r["threads"]): r for r in rows}


def effective(row: dict, key: str, one: dict | None):
    """(stats, from_one_thread) for a library in a row: on the all-thread rows a library is credited
    with the better of its 1-thread and all-thread runs (a user may always choose fewer threads)."""
    cell = row["cells"].get(key) or {}
    st = cell.get("stats")
    if one is None or row["threads"] == 1:
        return st, False
    o = (one["cells"].get(key) or {}).get("stats")
    if o and (not st or o["median_ns"] < st["median_ns"]):
        return o, True
    return st, False


def nndex_throughput(row: dict, ns: float, lim: Limits) -> tuple[str, str]:
    n, d, nq = row["n"], row["d"], row["nq"]
    sec = ns / 1e9
    if nq == 1:
        gbps = n * d * 4 / sec / 1e9
        bw = lim.read_gbps(row["threads"])
        pct = f"{100 * gbps / bw:.0f}%" if bw else ""
        if pct and lim.llc and n * d * 4 <= lim.llc:
            pct += " †"
        return f"{gbps:.1f} GB/s", pct
    gflops = 2.0 * nq * n * d / sec / 1e9
    peak = lim.peak_gflops(row["threads"])
    return f"{gflops:.0f} GFLOP/s", (f"{100 * gflops / peak:.0f}%" if peak else "")


def exact_rows_view(exact: dict, lim: Limits):
    """Per row: label data, per-library (stats, one-thread flag), best peer, ratio, throughput."""
    idx = exact_index(exact["rows"])
    keys = [k for k in EXACT_ORDER if k in exact["peers"] or any(k in r["cells"] for r in exact["rows"])]
    views = []
    for r in exact["rows"]:
        one = idx.get((r["n"], r["d"], r["k"], r["nq"], 1)) if r["threads"] != 1 else None
        eff = {k: effective(r, k, one) for k in keys}
        nn, _ = eff.get("nndex", (None, False))
        peers = [(k, s) for k, (s, _) in eff.items() if k != "nndex" and s]
        best = min(peers, key=lambda x: x[1]["median_ns"]) if peers else None
        ratio = best[1]["median_ns"] / nn["median_ns"] if (best and nn) else None
        tp = nndex_throughput(r, nn["median_ns"], lim) if nn else ("", "")
        views.append({"row": r, "eff": eff, "best": best, "ratio": ratio, "tp": tp, "keys": keys})
    return views


def exact_section(exact: dict, lim: Limits, meta: dict, plots: list[str]) -> tuple[list[str], list[str]]:
    out = ["## Exact search", ""]
    losses = []
    views = exact_rows_view(exact, lim)
    keys = views[0]["keys"] if views else []
    versions = ", ".join(f"{EXACT_LABELS.get(k, k)} {v.get('version')}" for k, v in exact["peers"].items())
    cfg = exact["config"]
    out.append(
        f"Libraries: {versions}. Same L2-normalised float32 standard-normal matrix and queries for all; "
        "inner product. numpy: `M @ q` (batches `Q @ M.T`) + `argpartition`; simsimd: `cdist(..., "
        "metric=\"dot\", out_dtype=\"float32\", threads=t)` + `argpartition`; faiss: `IndexFlatIP`; usearch: "
        "`usearch.index.search(M, q, k, MetricKind.IP, exact=True, threads=t)`; nndex: "
        "`NNdex(M, normalized=True, threads=t)`. Threads: nndex `threads=`, "
        "`faiss.omp_set_num_threads`, threadpoolctl limits for every BLAS/OpenMP pool, simsimd/usearch "
        "`threads=`.")
    out.append("")
    out.append(
        f"Each cell: median wall time of one call ±half the p10–p90 spread; warm-up, then repeats for "
        f"{cfg['min_time_s']} s and at least {cfg['min_reps']} calls (3 for calls over {cfg['slow_call_s']} s). "
        "Every library's result was checked against float64 dot products before timing (ids must carry the "
        "true top-k scores rank by rank within 1e-6, similarities within 1e-5). \"skip (time)\": the call was "
        f"projected to exceed {cfg['max_call_s']} s from the library's previous (smaller) workload; "
        "\"skip (memory)\": the full score matrix would not fit comfortably in memory. "
        "**speed-up** = best peer's median / nndex's median (above 1: nndex is faster). On the all-thread "
        "tables every library, nndex included, is credited with the better of its 1-thread and all-thread "
        "runs (¹ marks cells where the 1-thread run was faster). **% of limit**: single queries as matrix "
        "bytes/s against the measured read bandwidth for the same thread count; batches as 2·q·n·d flop/s "
        "against the measured FMA peak for nndex's ISA on the same thread count. † the matrix fits in the "
        f"last-level cache ({fmt_binary(lim.llc) if lim.llc else '?'}), so DRAM bandwidth is not its limit.")
    out.append("")
    for threads in sorted({v["row"]["threads"] for v in views}):
        title = "1 thread" if threads == 1 else f"all {threads} threads"
        out += [f"### {title}", ""]
        head = ["shape", "k", "queries"] + [EXACT_LABELS.get(k, k) for k in keys] + [
            "best peer", "nndex speed-up", "nndex throughput", "% of limit"]
        rows = []
        for v in views:
            r = v["row"]
            if r["threads"] != threads:
                continue
            cells = []
            for k in keys:
                st, from_one = v["eff"][k]
                if st:
                    cells.append(fmt_stats(st, "¹" if from_one else ""))
                else:
                    cells.append(short_note((r["cells"].get(k) or {}).get("note")))
            best = EXACT_LABELS.get(v["best"][0], v["best"][0]) if v["best"] else ""
            label = "single" if r["nq"] == 1 else f"batch {r['nq']}"
            rows.append([f"{r['n']}x{r['d']}", str(r["k"]), label] + cells +
                        [best, fmt_ratio(v["ratio"]), v["tp"][0], v["tp"][1]])
            if v["ratio"] is not None and v["ratio"] < 1.0:
                losses.append(f"exact, {title}, {r['n']}x{r['d']} k={r['k']} {label}: nndex "
                              f"{fmt_time(v['eff']['nndex'][0]['median_ns'])} vs {best} "
                              f"{fmt_time(v['best'][1]['median_ns'])} ({v['ratio']:.2f}×)")
        out.append(table(head, rows, "lll" + "r" * (len(keys)) + "lrrr"))
        out.append("")
    failed = [f"{r['n']}x{r['d']} k={r['k']} nq={r['nq']} t={r['threads']} {key}"
              for r in exact["rows"] for key, c in r["cells"].items() if "CHECK FAILED" in (c.get("note") or "")]
    if failed:
        out += ["**Cross-check failures (not timed):** " + "; ".join(failed), ""]
    if exact.get("unavailable"):
        out += ["Not run: " + "; ".join(f"{k}: {v}" for k, v in exact["unavailable"].items()), ""]
    for p in plots:
        out += [f"![exact search latency against matrix size]({p})", ""]
    return out, losses


def exact_summary(exact: dict, lim: Limits) -> list[str]:
    views = exact_rows_view(exact, lim)
    groups: dict[tuple, list] = {}
    for v in views:
        r = v["row"]
        if r["k"] != 10 or v["ratio"] is None:
            continue
        groups.setdefault((r["threads"], r["nq"]), []).append(v)
    rows = []
    for (threads, nq), vs in sorted(groups.items()):
        wins = sum(1 for v in vs if v["ratio"] >= 1.0)
        worst = min(vs, key=lambda v: v["ratio"])
        g = geomean([v["ratio"] for v in vs])
        rows.append([("1" if threads == 1 else f"all ({threads})"), "single" if nq == 1 else f"batch {nq}",
                     f"{wins} / {len(vs)}", f"{g:.2f}×" if g else "",
                     f"{fmt_ratio(worst['ratio'])} ({worst['row']['n']}x{worst['row']['d']}, vs "
                     f"{EXACT_LABELS.get(worst['best'][0], worst['best'][0])})"])
    out = [table(["threads", "workload", "shapes where nndex is fastest", "geometric-mean speed-up vs best peer",
                  "smallest speed-up"], rows, "llrrl"), ""]
    # Bandwidth and FMA headlines.
    lines = []
    for v in views:
        r = v["row"]
        nn = v["eff"].get("nndex", (None,))[0]
        if not nn or r["k"] != 10:
            continue
        if r["nq"] == 1 and r["n"] * r["d"] * 4 > 4 * (lim.llc or 0) and r["n"] * r["d"] >= 10**8:
            lines.append(f"single query on {r['n']}x{r['d']} ({fmt_bytes(r['n'] * r['d'] * 4)}, "
                         f"{'1 thread' if r['threads'] == 1 else 'all threads'}): {v['tp'][0]} = {v['tp'][1]} "
                         "of the measured read bandwidth")
        if r["nq"] == 2048 and (r["n"], r["d"]) == (10000, 768):
            lines.append(f"batch 2048 on 10000x768 ({'1 thread' if r['threads'] == 1 else 'all threads'}): "
                         f"{v['tp'][0]} = {v['tp'][1]} of the measured FMA peak")
    out += [f"- {x}" for x in lines] + ([""] if lines else [])
    return out


def plot_exact(exact: dict, lim: Limits, results: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    views = exact_rows_view(exact, lim)
    thread_set = sorted({v["row"]["threads"] for v in views})
    workloads = [1, 128]
    fig, axes = plt.subplots(len(thread_set), len(workloads), figsize=(12, 4.2 * len(thread_set)), squeeze=False)
    for i, threads in enumerate(thread_set):
        for j, nq in enumerate(workloads):
            ax = axes[i][j]
            sel = sorted((v for v in views if v["row"]["threads"] == threads and v["row"]["nq"] == nq
                          and v["row"]["k"] == 10), key=lambda v: v["row"]["n"] * v["row"]["d"])
            for key in views[0]["keys"]:
                pts = [(v["row"]["n"] * v["row"]["d"] * 4 / 1e6, v["eff"][key][0]["median_ns"] / 1e3, v)
                       for v in sel if v["eff"][key][0]]
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4,
                        lw=2.2 if key == "nndex" else 1.2, color=COLORS.get(key), label=EXACT_LABELS.get(key, key))
                if key == "nndex":
                    for x, y, v in pts:
                        ax.annotate(f"{v['row']['n']}x{v['row']['d']}", (x, y), fontsize=6, xytext=(3, -8),
                                    textcoords="offset points", color="#555")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("matrix size (MB, float32)")
            ax.set_ylabel("median latency per call (µs)")
            ax.set_title(f"{'single query' if nq == 1 else f'batch of {nq} queries'}, k=10, "
                         f"{'1 thread' if threads == 1 else f'{threads} threads'}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = results / "exact_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [os.path.relpath(path, REPO_DIR)]


# ---------------------------------------------------------------------------
# Approximate search
# ---------------------------------------------------------------------------

def ann_section(ann: dict, plots: dict[str, str]) -> tuple[list[str], list[str]]:
    out = ["## Approximate search", ""]
    losses = []
    cfg = ann["config"]
    targets = [f"{t:.2f}" for t in ann["targets"]]
    out.append(
        "recall@10 against exact top-10 (numpy), queries per second and build time. Every library builds and "
        f"searches on {cfg['threads']} threads in a fresh process. nndex: `NNdex(X, normalized=True, "
        "approx=True)` with its defaults (nlist ≈ 2√n, nprobe calibrated at build for recall 0.95; the build "
        "time includes that calibration), swept with `search(q, k, nprobe=p)`; faiss: `IndexIVFFlat` with "
        "`METRIC_INNER_PRODUCT`, nlist = 4√n, trained on a sample of 40 rows per list, swept over nprobe; "
        "usearch: `Index(metric=\"ip\", connectivity=16, expansion_add=200)` swept over `expansion_search`; "
        "hnswlib: `M=16, ef_construction=200`, swept over `set_ef`. **batch QPS**: all queries in one call "
        "(median of repeated calls); **single QPS**: 1-D queries one at a time in a Python loop (the "
        "per-call overhead of each binding included, as users see it); ±: half the p10–p90 spread of the batch "
        "calls. The recall reached is in brackets after each setting. For each target recall the table "
        "gives the cheapest swept setting that reaches it; \"–\" means no setting in the sweep reached it. "
        "**nndex / best** compares nndex with the best other library at the same target.")
    out.append("")
    for entry in ann["datasets"]:
        ds = entry["dataset"]
        out += [f"### {ds['name']} ({ds['n']}x{ds['d']}, {ds['nq']} queries)", ""]
        if entry.get("notes"):
            out += [f"- {n}" for n in entry["notes"]] + [""]
        res = entry["results"]
        if not res:
            continue
        head = ["library", "build (s)", "index memory (× raw)", "settings"]
        for t in targets:
            head += [f"@{t}: setting", "batch QPS", "single QPS"]
        rows = []
        for key in [k for k in ANN_ORDER if k in res]:
            r = res[key]
            if "note" in r and "sweep" not in r:
                rows.append([ANN_LABELS.get(key, key), "", "", r["note"]] + [""] * (3 * len(targets)))
                continue
            m = r.get("memory") or {}
            kept = (m["rss_after"] - m["rss_before"]) / m["raw_bytes"] if m.get("raw_bytes") else None
            desc = r.get("describe") or {}
            settings = ", ".join(f"{k}={v}" for k, v in desc.items() if k in ("nlist", "default_nprobe", "M", "ef_construction"))
            if desc.get("uses_ivf") is False:
                settings += " (too small for IVF: searched exactly)"
            row = [ANN_LABELS.get(key, key), f"{r.get('build_s', float('nan')):.2f}",
                   f"{kept:.2f}" if kept is not None else "", settings]
            for t in targets:
                hit = (r.get("targets") or {}).get(t)
                if hit:
                    spread = hit.get("batch_spread_pct")
                    row += [f"{r['param']}={hit['value']} ({hit['recall']:.3f})",
                            fmt_qps(hit["batch_qps"]) + (f" ±{spread:.0f}%" if spread is not None else ""),
                            fmt_qps(hit["single_qps"])]
                else:
                    row += ["–", "", ""]
            if r.get("note"):
                row[3] += f" ({r['note']})"
            rows.append(row)
        out.append(table(head, rows, "lrrl" + "lrr" * len(targets)))
        out.append("")
        nn = res.get("nndex_ivf")
        if nn and nn.get("default"):
            dflt = nn["default"]
            out.append(f"nndex with its defaults ({nn['param']} {dflt['label']}): recall {dflt['recall']:.3f}, "
                       f"batch {fmt_qps(dflt['batch_qps'])} QPS, single {fmt_qps(dflt['single']['qps'])} QPS.")
            out.append("")
        # nndex against the best other library at each target.
        cmp_rows = []
        for t in targets:
            mine = ((nn or {}).get("targets") or {}).get(t)
            others = [(k, (r.get("targets") or {}).get(t)) for k, r in res.items() if k != "nndex_ivf"]
            others = [(k, h) for k, h in others if h]
            if not others:
                continue
            bb = max(others, key=lambda x: x[1]["batch_qps"])
            bs = max(others, key=lambda x: x[1]["single_qps"])
            builds = [(k, r["build_s"]) for k, r in res.items() if k != "nndex_ivf" and r.get("build_s")
                      and (r.get("targets") or {}).get(t)]
            fb = min(builds, key=lambda x: x[1]) if builds else None
            if mine:
                rb = mine["batch_qps"] / bb[1]["batch_qps"]
                rs = mine["single_qps"] / bs[1]["single_qps"]
                rbuild = fb[1] / nn["build_s"] if fb and nn.get("build_s") else None
                cmp_rows.append([t, f"{fmt_ratio(rb)} (vs {ANN_LABELS[bb[0]]})", f"{fmt_ratio(rs)} (vs {ANN_LABELS[bs[0]]})",
                                 f"{fmt_ratio(rbuild)} (vs {ANN_LABELS[fb[0]]})" if rbuild else ""])
                for what, r_, who in (("batch QPS", rb, bb[0]), ("single QPS", rs, bs[0]),
                                      ("build time", rbuild, fb[0] if fb else None)):
                    if r_ is not None and r_ < 1.0:
                        losses.append(f"approximate, {ds['name']} at recall {t}: nndex {what} is {r_:.2f}× "
                                      f"{ANN_LABELS.get(who, who)}'s")
            else:
                cmp_rows.append([t, "not reached", "not reached", ""])
                losses.append(f"approximate, {ds['name']}: nndex's sweep did not reach recall {t}")
        if cmp_rows:
            out.append(table(["target recall", "nndex / best: batch QPS", "nndex / best: single QPS",
                              "build: fastest other / nndex"], cmp_rows, "lrrr"))
            out.append("")
        if ds["name"] in plots:
            out += [f"![recall against QPS on {ds['name']}]({plots[ds['name']]})", ""]
    return out, losses


def plot_ann(ann: dict, results: Path) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = {}
    for entry in ann["datasets"]:
        ds = entry["dataset"]
        res = entry["results"]
        if not any("sweep" in r for r in res.values()):
            continue
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, mode in zip(axes, ("batch", "single")):
            for key in [k for k in ANN_ORDER if k in res]:
                sweep = res[key].get("sweep") or []
                if not sweep:
                    continue
                xs = [p["recall"] for p in sweep]
                ys = [p["batch_qps"] if mode == "batch" else p["single"]["qps"] for p in sweep]
                ax.plot(xs, ys, marker="o", ms=3, lw=2.2 if key == "nndex_ivf" else 1.2, color=COLORS.get(key),
                        label=ANN_LABELS.get(key, key))
                d = res[key].get("default")
                if d:
                    ax.plot([d["recall"]], [d["batch_qps"] if mode == "batch" else d["single"]["qps"]], marker="*",
                            ms=12, color=COLORS.get(key), ls="none", label="nndex defaults")
            for t in ann["targets"]:
                ax.axvline(t, color="#999", lw=0.8, ls="--")
            ax.set_yscale("log")
            ax.set_xlim(left=max(0.5, ax.get_xlim()[0]), right=1.002)
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries per second")
            ax.set_title(f"{ds['name']} ({ds['n']}x{ds['d']}): "
                         f"{'batch of ' + str(ds['nq']) + ' queries' if mode == 'batch' else 'single queries'}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = results / f"ann_{ds['name']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out[ds["name"]] = os.path.relpath(path, REPO_DIR)
    return out


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------

def memory_section(mem: dict) -> list[str]:
    out = ["## Memory", ""]
    raw = mem["n"] * mem["d"] * 4
    out.append(
        f"Index on {mem['n']}x{mem['d']} float32 ({fmt_bytes(raw)} raw). Each index is built in a fresh process "
        "after the data is loaded; **kept** = (VmRSS after the build − VmRSS before) / raw bytes, **peak** = "
        "(VmHWM during the build − VmRSS before) / raw bytes, with VmHWM reset just before the build (`echo 5 > "
        "/proc/self/clear_refs`). 1.00 is one copy of the rows. The approximate indexes come from the ANN "
        "suite's workers on the clustered set of this size (same method).")
    out.append("")
    rows = []
    for r in mem["rows"]:
        label = MEMORY_LABELS.get(r["key"], r["key"])
        if r.get("note"):
            rows.append([label, "", "", "", "", r["note"]])
            continue
        rep = r.get("reported_bytes")
        rows.append([label, f"{r['kept_ratio']:.2f}" if r.get("kept_ratio") is not None else "",
                     f"{r['peak_ratio']:.2f}" if r.get("peak_ratio") is not None else "",
                     f"{rep / raw:.2f}" if rep else "",
                     f"{r['build_s']:.2f}" if r.get("build_s") is not None else "", r.get("how", "")])
    out.append(table(["index", "kept (× raw)", "peak during build (× raw)", "library's own figure (× raw)",
                      "build (s)", "how"], rows, "lrrrrl"))
    out.append("")
    return out


# ---------------------------------------------------------------------------
# C++ microbenchmarks
# ---------------------------------------------------------------------------

def cpp_section(cpp: dict, lim: Limits) -> list[str]:
    out = ["## C++ microbenchmarks (Google Benchmark)", ""]
    if cpp.get("error"):
        out += [f"Not run: {cpp['error']}", ""]
        return out
    out.append(f"`{cpp['configure']}`, `{cpp['build']}`, then `{cpp['command']}` (internals from `src/`, linked "
               "against the `nndex` static library). Times are real (wall) time per iteration.")
    out.append("")
    benches = cpp["benchmarks"]
    threads_all = cpp.get("threads", 2)

    def unit_ns(b):
        return b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]

    # Score tiles: GFLOP/s by dims x queries, per ISA, with % of the 1-thread FMA peak.
    isas = []
    for b in benches:
        if b["name"].startswith("ScoreTiles/"):
            isa = b["name"].split("/")[1]
            if isa not in isas:
                isas.append(isa)
    for isa in isas:
        sel = [b for b in benches if b["name"].startswith(f"ScoreTiles/{isa}/")]
        grid: dict[int, dict[int, float]] = {}
        for b in sel:
            parts = dict(p.split(":") for p in b["name"].split("/")[2:] if ":" in p)
            grid.setdefault(int(parts["dims"]), {})[int(parts["queries"])] = b.get("FLOP/s", 0) / 1e9
        qs = sorted({q for row in grid.values() for q in row})
        key = {"avx512": "avx512", "avx2": "avx2"}.get(isa)
        peak = lim.peak_gflops(1, key) if key else None
        rows = [[str(d)] + [f"{grid[d].get(q, 0):.1f}" + (f" ({100 * grid[d][q] / peak:.0f}%)" if peak and q in grid[d]
                                                           else "") for q in qs] for d in sorted(grid)]
        out.append(f"**score_tiles, {isa}** (1 thread, 1024-row panel in cache): GFLOP/s"
                   + (f" (% of the 1-thread {key} FMA peak)" if peak else "") + " by dims (rows) and query group "
                   "size (columns)")
        out.append("")
        out.append(table(["dims"] + [f"{q} {'query' if q == 1 else 'queries'}" for q in qs], rows,
                         "l" + "r" * len(qs)))
        out.append("")
    rows = []
    for b in benches:
        name = b["name"]
        if name.startswith("ScoreTiles/"):
            continue
        rate = ""
        pct = ""
        if "FLOP/s" in b and not name.startswith("ExactSingle"):
            g = b["FLOP/s"] / 1e9
            rate = f"{g:.1f} GFLOP/s"
            if name.startswith("ExactBatch"):
                threads = 1 if "/threads:1/" in name else threads_all
                peak = lim.peak_gflops(threads)
                pct = f"{100 * g / peak:.0f}% of FMA peak" if peak else ""
        elif name.startswith("ExactSingle") and "bytes_per_second" in b:
            g = b["bytes_per_second"] / 1e9
            rate = f"{g:.1f} GB/s"
            threads = 1 if "/threads:1/" in name else threads_all
            bw = lim.read_gbps(threads)
            pct = f"{100 * g / bw:.0f}% of read bandwidth" if bw else ""
            parts = dict(p.split(":") for p in name.split("/")[1:] if ":" in p)
            if pct and lim.llc and int(parts.get("rows", 0)) * int(parts.get("dims", 0)) * 4 <= lim.llc:
                pct += " †"
        elif "QPS" in b:
            rate = f"{fmt_qps(b['QPS'])} QPS"
        elif "items_per_second" in b:
            rate = f"{b['items_per_second'] / 1e6:.3g} M items/s"
        rows.append([name.replace("/real_time", ""), fmt_time(unit_ns(b)), rate, pct, b.get("label", "")])
    out.append(table(["benchmark", "time", "rate", "fraction of limit", "label"], rows, "lrrrl"))
    out.append("")
    out.append("ExactSingle: bytes/s = the matrix streamed per call, against the read bandwidth for the same "
               "thread count († the matrix fits in the last-level cache); ExactBatch: 2·q·n·d flop/s against "
               "the FMA peak. threads:0 = every hardware thread. SelectAbove/percent: share of 4096 scores "
               "above the threshold. TopKAscending is the worst case (every score enters the heap).")
    out.append("")
    return out


# ---------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------

def machine_section(meta: dict, limits_data: dict | None) -> list[str]:
    caches = ", ".join(f"{k} {fmt_binary(v)}" for k, v in (meta.get("caches") or {}).items())
    blas = []
    for d in meta.get("blas") or []:
        if d.get("user_api") == "blas":
            where = "faiss" if "faiss" in (d.get("filepath") or "") else "numpy" if "numpy" in (
                d.get("filepath") or "") else Path(d.get("filepath") or "?").name
            blas.append(f"{where}: {d.get('internal_api')} {d.get('version')}, kernel **{d.get('architecture')}**, "
                        f"{d.get('num_threads')} threads")
        elif d.get("user_api") == "openmp":
            blas.append(f"OpenMP {Path(d.get('filepath') or '?').name} ({d.get('num_threads')} threads)")
    v = meta.get("versions") or {}
    rows = [
        ["CPU", f"{meta['cpu']} ({meta.get('cpu_id') or ''})"],
        ["cores", f"{meta['usable_cpus']} usable of {meta['logical_cpus']} logical"
                  + (f"; virtual machine ({meta['hypervisor']})" if meta.get("hypervisor") else "")],
        ["caches (per core / shared)", caches],
        ["memory", fmt_binary(meta["memory_bytes"]) if meta.get("memory_bytes") else "?"],
        ["OS", meta["os"] + (f"; transparent huge pages: {meta['thp']}" if meta.get("thp") else "")],
        ["compiler", meta["compiler"]],
        ["Python", meta["python"]],
        ["nndex", f"{v.get('nndex')} (ISA {meta.get('nndex', {}).get('isa')}, "
                  f"{meta.get('nndex', {}).get('threads')} threads)"],
        ["peers", ", ".join(f"{k} {v.get(k)}" for k in ("numpy", "simsimd", "faiss-cpu", "usearch", "hnswlib"))],
        ["BLAS / OpenMP (threadpoolctl)", "; ".join(blas)],
        ["removed from the environment", meta.get("removed_env") or "nothing (no OPENBLAS_CORETYPE / "
                                                                      "OPENBLAS_L2_SIZE was set)"],
        ["load average (1/5/15 min) before / after", f"{meta.get('load_before')} / {meta.get('load_after')}"],
    ]
    return ["## Machine", "", table(["", ""], rows), ""]


KEPT_START, KEPT_END = "<!-- kept: not rendered from bench/results -->", "<!-- /kept -->"


def kept_sections(page: Path) -> tuple[list[str], list[str]]:
    """The lines of ``page`` between KEPT_START and KEPT_END markers, markers included: notes and
    sections whose script writes its own tables, carried over unchanged by a re-render. Returns the
    blocks above the page's first "## " heading (they stay there) and those below (they go before
    "Where nndex is not ahead")."""
    head: list[str] = []
    tail: list[str] = []
    if not page.exists():
        return head, tail
    target, inside = head, False
    for line in page.read_text().splitlines():
        if line.startswith("## ") and not inside:
            target = tail
        if line.strip() == KEPT_START:
            inside = True
        if inside:
            target.append(line)
        if line.strip() == KEPT_END and inside:
            inside = False
            target.append("")
    return head, tail


def render(results: Path = RESULTS_DIR, page: Path = REPO_DIR / "BENCHMARKS.md") -> None:
    meta = load(results, "meta") or {}
    limits_data = load(results, "limits")
    exact = load(results, "exact")
    ann = load(results, "ann")
    mem = load(results, "memory")
    cpp = load(results, "cpp")
    storage = load(results, "storage")
    llc = max((meta.get("caches") or {"L3": 0}).values() or [0]) or None
    lim = Limits(limits_data, (meta.get("nndex") or {}).get("isa"), llc)

    mode = meta.get("mode", "?")
    total = meta.get("total_seconds")
    out = ["# nndex benchmarks", ""]
    out.append(
        f"Generated by `{meta.get('command', 'python bench/run_all.py')}` on {meta.get('date', '?')} "
        f"({'**quick run**: smaller sizes and shorter timings, a first look, not the published numbers' if mode == 'quick' else 'full run'}"
        + (f", {total / 60:.1f} minutes" if total else "")
        + (f", time budget {meta['budget_minutes']} minutes: ANN builds projected past it are skipped and listed"
           if meta.get("budget_minutes") and mode != "quick" else "") + "). Raw results: `bench/results/*.json`; "
        "this page is rendered from them by `bench/report.py`. What is measured and why: `bench/README.md`.")
    out.append("")
    stale = [f"{name} ({d['run']['mode']}, {d['run']['date']})" for name, d in
             (("limits", limits_data), ("exact", exact), ("ann", ann), ("memory", mem), ("cpp", cpp),
              ("storage", storage))
             if d and d.get("run") and d["run"].get("mode") != mode]
    if stale:
        out += ["⚠ Some parts come from an earlier run of another mode: " + ", ".join(stale), ""]
    kept_head, kept_tail = kept_sections(page)
    out += kept_head
    out += ["## Reproduce", "", "```bash",
            ".venv/bin/pip install threadpoolctl faiss-cpu usearch hnswlib simsimd matplotlib ml_dtypes   # the `bench` extra",
            "python bench/run_all.py --quick    # < 5 minutes on 2 cores",
            "python bench/run_all.py            # full run, < 60 minutes on 2 cores",
            "python bench/run_all.py --report-only   # re-render this page from bench/results/*.json",
            "```", ""]
    out += machine_section(meta, limits_data)
    out += limits_section(lim, meta)

    losses: list[str] = []
    if exact:
        out += ["## Summary: exact search, nndex against the best peer", ""]
        out += exact_summary(exact, lim)
    if exact:
        plots = plot_exact(exact, lim, results)
        sec, l1 = exact_section(exact, lim, meta, plots)
        out += sec
        losses += l1
    if ann:
        plots = plot_ann(ann, results)
        sec, l2 = ann_section(ann, plots)
        out += sec
        losses += l2
    if mem:
        out += memory_section(mem)
    if cpp:
        out += cpp_section(cpp, lim)
    if storage:
        import bench_storage
        out += bench_storage.render(storage).splitlines() + [""]
    # Sections written by scripts outside run_all.py (mutable_vs_peers.py, sharded_overhead.py), with
    # their own notes on where nndex is not ahead, survive a re-render (see KEPT_START).
    out += kept_tail
    out += ["## Where nndex is not ahead", ""]
    nowhere = "Nowhere in this run" + (" (for the sections kept above, see their own notes)." if kept_tail else ".")
    out += [f"- {x}" for x in losses] if losses else [nowhere]
    out.append("")
    secs = meta.get("seconds") or {}
    if secs:
        out.append("Run time per part: " + ", ".join(f"{k} {v:.0f} s" for k, v in secs.items()) + ".")
        out.append("")
    page.write_text("\n".join(out))
    print(f"wrote {page}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description="Render BENCHMARKS.md from bench/results/*.json")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    ap.add_argument("--page", type=Path, default=REPO_DIR / "BENCHMARKS.md")
    args = ap.parse_args()
    render(args.results, args.page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
