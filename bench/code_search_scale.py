"""End-to-end latency of `nndex code search` on a large index: --chunks chunks (default 100,000).

Embedding 100,000 chunks takes most of an hour on 2 cores, so the large index is made from a real one:
the stdlib tree of bench/code_eval_set.json is chunked and embedded once, then its chunks are repeated
under new file names (`copy7/json/decoder.py`, ...) with their vectors jittered (Gaussian noise of 0.05
per unit vector, re-normalised) until there are --chunks of them; the lexical index is built over the
repeated chunk texts, and everything is saved as `nndex code embed` saves it. What is timed is the
command users run, in a fresh process each time: `python -m nndex.code search QUESTION -d TREE`,
with its own split (--timings): opening the index, loading the model, embedding the query, searching.

Usage: python bench/code_search_scale.py [--chunks N] [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from code_search_eval import EVAL_SETS, cli_latency, copy_tree  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR")
    args = parser.parse_args()

    import numpy as np

    from nndex.code import store
    from nndex.code.chunking import ChunkOptions, chunk_text, decode, embedding_text
    from nndex.code.engine import build
    from nndex.code.lexical import LexicalIndex
    from nndex.code.providers import LocalProvider

    spec = json.loads(EVAL_SETS[0].read_text())
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nndex-code-scale-"))
    small, large = work / "small", work / "large"
    for d in (small, large):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    copy_tree(spec["tree"], small)
    build(small, LocalProvider(), options=ChunkOptions())
    stored = store.load(small)
    vectors = stored.load_vectors()
    # chunk texts in row order (the files' chunks, as build() made them)
    texts = []
    for f in stored.files:
        pieces = chunk_text(f["path"], decode((small / f["path"]).read_bytes()), ChunkOptions())
        texts.extend(embedding_text(f["path"], p) for p in pieces)
    assert len(texts) == len(stored.chunks)

    rng = np.random.default_rng(0)
    copies = -(-args.chunks // len(stored.chunks))
    chunks, files, all_vectors, all_texts = [], [], [], []
    for i in range(copies):
        prefix = "" if i == 0 else f"copy{i}/"
        for f in stored.files:
            files.append({**f, "path": prefix + f["path"], "first_chunk": f["first_chunk"] + i * len(stored.chunks)})
        chunks.extend({**c, "file": prefix + c["file"]} for c in stored.chunks)
        jitter = vectors + rng.normal(0, 0.05 / np.sqrt(vectors.shape[1]), vectors.shape).astype(np.float32)
        all_vectors.append(jitter / np.linalg.norm(jitter, axis=1, keepdims=True))
        all_texts.extend(texts)
    n = args.chunks
    meta = {**stored.meta, "chunks": chunks[:n], "num_chunks": n,
            "files": [f for f in files if f["first_chunk"] < n], "num_files": sum(f["first_chunk"] < n for f in files)}
    store.save(large, meta, np.concatenate(all_vectors)[:n], LexicalIndex.build(all_texts[:n]))
    size = sum(p.stat().st_size for p in (large / ".nndex").rglob("*") if p.is_file())
    print(f"index: {n:,} chunks, {size / 1e6:.0f} MB in {large / '.nndex'}")

    questions = [item["q"] for item in spec["questions"][: args.runs]]
    for fast in (True, False):
        r = cli_latency(large, questions, fast=fast)
        label = "fast query encoder" if fast else "sentence-transformers"
        print(f"{label}: {r['wall_s'] * 1e3:.0f} ms end to end (model load {r['model_load_s'] * 1e3:.0f} ms, "
              f"query embedding {r['embed_query_s'] * 1e3:.0f} ms, search {r['search_s'] * 1e3:.1f} ms, "
              f"start-up, index opening and the rest {r['startup_and_rest_s'] * 1e3:.0f} ms; median of {r['runs']})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
