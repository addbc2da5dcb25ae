"""Combining the dense ranking (embeddings) and the lexical one (BM25) of the chunks for a question.

Reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009): a chunk scores ``sum w / (c + rank)``
over the rankings it appears in (rank 1 = first). It needs no calibration between cosine
similarities and BM25 scores, whose scales differ from one question to the next, and a chunk that
only one ranking finds still competes. The weights and ``c`` were chosen on the tuning halves of the
question sets (bench/code_eval_*.json; bench/code_search_eval.py reports the held-out halves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

RRF_C = 60.0  # the paper's constant; rank differences at the top then matter less than agreement
# Relative to the dense ranking's 1.0. On the tuning questions (bench/code_search_tune.py, by the mean
# of hit@1 and hit@5) 0.2 and 0.3 tied best: hit@1 0.745 against 0.684 without BM25, hit@5 0.909
# against 0.916; 1.0 lost most "hard" questions of one set (their words occur in other files' code).
LEXICAL_WEIGHT = 0.3


@dataclass(frozen=True)
class Fused:
    rows: np.ndarray  # chunk rows, best first
    scores: np.ndarray  # their fused scores


def top_rows(scores: np.ndarray, depth: int) -> np.ndarray:
    """The rows of the ``depth`` highest positive scores, best first (ties: lower row first)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > depth:
        part = np.argpartition(-scores[positive], depth - 1)[:depth]
        positive = positive[part]
    return positive[np.lexsort((positive, -scores[positive]))]


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.union1d would do, but its first call imports numpy.ma: ~20 ms of every CLI search
    rows = np.sort(np.concatenate((a, b)))
    return rows[np.concatenate(([True], rows[1:] != rows[:-1]))] if rows.size else rows


def fuse(dense_rows: np.ndarray, lexical_scores: Optional[np.ndarray], depth: int, *, c: float = RRF_C,
         lexical_weight: float = LEXICAL_WEIGHT) -> Fused:
    """``dense_rows``: the dense search's rows, best first; ``lexical_scores``: BM25 of every row (None:
    no word of the question is in the index, so the dense ranking stands alone)."""
    dense_rows = np.asarray(dense_rows, dtype=np.int64)[:depth]
    if lexical_scores is None:
        return Fused(dense_rows, 1.0 / (c + np.arange(1, dense_rows.size + 1)))
    lexical_rows = top_rows(lexical_scores, depth)
    rows = _sorted_union(dense_rows, lexical_rows)
    score = np.zeros(rows.size)
    score[np.searchsorted(rows, dense_rows)] += 1.0 / (c + np.arange(1, dense_rows.size + 1))
    score[np.searchsorted(rows, lexical_rows)] += lexical_weight / (c + np.arange(1, lexical_rows.size + 1))
    order = np.lexsort((rows, -score))
    return Fused(rows[order], score[order])
