"""How the hybrid retrieval settings of `nndex code` were chosen: a grid over the fusion's lexical
weight and constant, scored on the *tuning* questions only (split "tune" of the PyPI sets, and the
stdlib set, which has no split), never on the held-out ones.

Needs trees built by `python bench/code_search_eval.py --keep DIR` (their .nndex indexes); the
questions' embeddings are computed once and the fusion re-run per setting in process.

Usage: python bench/code_search_tune.py DIR [--weights 0.25,0.5,1,2] [--constants 10,30,60,100]
       [--per-file 0,1,2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from code_search_eval import EVAL_SETS  # noqa: E402


def ranks_for(searcher, questions, q_vectors, weight: float, c: float, tree: Path, per_file: int) -> list[int | None]:
    """The rank of each question's expected file under one fusion setting (Searcher.search's logic)."""
    from nndex.code.fusion import fuse

    out = []
    for item, q in zip(questions, q_vectors):
        depth = min(searcher.index.rows, 40)
        indices, _ = searcher.index.search(q, k=depth)
        fused = fuse(indices, searcher.lexical.scores(item["q"]), depth, c=c, lexical_weight=weight)
        files, spans, later = [], {}, []
        for row in fused.rows.tolist():
            chunk = searcher.stored.chunks[row]
            taken = spans.setdefault(chunk["file"], [])
            if any(chunk["start_line"] <= b and a <= chunk["end_line"] for a, b in taken):
                continue
            taken.append((chunk["start_line"], chunk["end_line"]))
            if per_file and files.count(chunk["file"]) >= per_file:
                later.append(chunk["file"])
                continue
            files.append(chunk["file"])
            if len(files) == 10:
                break
        files = (files + later)[:10]
        expect = [e for e in item["expect"] if (tree / e).is_file()]
        out.append(next((i + 1 for i, f in enumerate(files) if f in expect), None))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, help="the --keep DIR of code_search_eval.py")
    parser.add_argument("--weights", default="0.25,0.5,0.75,1,1.5,2")
    parser.add_argument("--constants", default="5,10,30,60,100")
    parser.add_argument("--per-file", default="0", help="most results per file before the rest (0: no limit)")
    args = parser.parse_args()

    from nndex.code.engine import Searcher
    from nndex.code.providers import LocalProvider

    provider = LocalProvider()
    sets = []
    for path in [p for p in EVAL_SETS if p.is_file()]:
        spec = json.loads(path.read_text())
        name = path.stem.replace("code_eval_", "").replace("set", "stdlib")
        tree = args.trees / name
        if not (tree / ".nndex").is_dir():
            print(f"skipping {name}: no index in {tree}")
            continue
        questions = [q for q in spec["questions"] if q.get("split", "tune") == "tune"]
        searcher = Searcher(tree, provider)
        vectors = [provider.embed_query(q["q"]) for q in questions]
        sets.append((name, tree, searcher, questions, vectors))
    print("cap weight  c     " + "  ".join(f"{name:>22s}" for name, *_ in sets) + "   mean hit@1 / hit@5")
    rows = []
    for per_file, weight, c in itertools.product([int(p) for p in args.per_file.split(",")],
                                                 [float(w) for w in args.weights.split(",")],
                                                 [float(x) for x in args.constants.split(",")]):
        cells, h1s, h5s = [], [], []
        for name, tree, searcher, questions, vectors in sets:
            ranks = ranks_for(searcher, questions, vectors, weight, c, tree, per_file)
            h1 = sum(r == 1 for r in ranks) / len(ranks)
            h5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
            cells.append(f"{h1:.3f}/{h5:.3f} (n={len(ranks)})")
            h1s.append(h1)
            h5s.append(h5)
        rows.append((sum(h5s) / len(h5s), sum(h1s) / len(h1s), weight, c, per_file))
        print(f"{per_file:<3d} {weight:<7g} {c:<5g} " + "  ".join(f"{cell:>22s}" for cell in cells)
              + f"   {sum(h1s) / len(h1s):.3f} / {sum(h5s) / len(h5s):.3f}")
    best = max(rows)
    print(f"best by mean hit@5, then hit@1: per file {best[4]}, weight {best[2]:g}, c {best[3]:g} "
          f"({best[1]:.3f} / {best[0]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
