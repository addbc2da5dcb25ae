"""How the hybrid retrieval settings of `nndex code` were chosen: a grid over the fusion's lexical
weight and constant, scored on the *tuning* questions only (split "tune" of the PyPI sets, and the
stdlib set, which has no split), never on the held-out ones.

Needs trees built by `python bench/code_search_eval.py --keep DIR` (their .nndex indexes); each
question is embedded once and searched per setting with the Searcher itself.

Usage: python bench/code_search_tune.py DIR [--weights 0.25,0.5,1,2] [--constants 10,30,60,100]
       [--diverse 1,0]
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


class CachedQueries:
    """The provider, with each question embedded once for the whole grid."""

    def __init__(self, provider) -> None:
        self._provider, self._cache = provider, {}

    def embed_query(self, text: str):
        if text not in self._cache:
            self._cache[text] = self._provider.embed_query(text)
        return self._cache[text]


def ranks_for(searcher, questions, weight: float, c: float, tree: Path, diverse: bool) -> list[int | None]:
    """The rank of each question's expected file with one fusion setting (the Searcher's own search)."""
    searcher.lexical_weight, searcher.rrf_c = weight, c
    out = []
    for item in questions:
        files = [h.file for h in searcher.search(item["q"], k=10, diverse=diverse)]
        expect = [e for e in item["expect"] if (tree / e).is_file()]
        out.append(next((i + 1 for i, f in enumerate(files) if f in expect), None))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, help="the --keep DIR of code_search_eval.py")
    parser.add_argument("--weights", default="0.25,0.5,0.75,1,1.5,2")
    parser.add_argument("--constants", default="5,10,30,60,100")
    parser.add_argument("--diverse", default="1", help="results diversified by file: 1, 0 or both (1,0)")
    args = parser.parse_args()

    from nndex.code.engine import Searcher
    from nndex.code.providers import LocalProvider

    provider = CachedQueries(LocalProvider())
    sets = []
    for path in [p for p in EVAL_SETS if p.is_file()]:
        spec = json.loads(path.read_text())
        name = path.stem.replace("code_eval_", "").replace("set", "stdlib")
        tree = args.trees / name
        if not (tree / ".nndex").is_dir():
            print(f"skipping {name}: no index in {tree}")
            continue
        questions = [q for q in spec["questions"] if q.get("split", "tune") == "tune"]
        sets.append((name, tree, Searcher(tree, provider), questions))
    print("div weight  c     " + "  ".join(f"{name:>22s}" for name, *_ in sets) + "   mean hit@1 / hit@5")
    rows = []
    for diverse, weight, c in itertools.product([bool(int(d)) for d in args.diverse.split(",")],
                                                 [float(w) for w in args.weights.split(",")],
                                                 [float(x) for x in args.constants.split(",")]):
        cells, h1s, h5s = [], [], []
        for name, tree, searcher, questions in sets:
            ranks = ranks_for(searcher, questions, weight, c, tree, diverse)
            h1 = sum(r == 1 for r in ranks) / len(ranks)
            h5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
            cells.append(f"{h1:.3f}/{h5:.3f} (n={len(ranks)})")
            h1s.append(h1)
            h5s.append(h5)
        h1, h5 = sum(h1s) / len(h1s), sum(h5s) / len(h5s)
        rows.append(((h1 + h5) / 2, h1, h5, weight, c, diverse))
        print(f"{int(diverse):<3d} {weight:<7g} {c:<5g} " + "  ".join(f"{cell:>22s}" for cell in cells)
              + f"   {sum(h1s) / len(h1s):.3f} / {sum(h5s) / len(h5s):.3f}")
    best = max(rows)
    print(f"best by the mean of hit@1 and hit@5: diverse {best[5]}, weight {best[3]:g}, c {best[4]:g} "
          f"({best[1]:.3f} / {best[2]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
