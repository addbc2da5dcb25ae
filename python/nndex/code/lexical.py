"""Lexical retrieval for ``nndex code``: BM25 over the words of each chunk.

Code names things in compounds (``read_file``, ``HTTPResponse``, ``getItem``), questions in words, so
both sides are cut the same way: identifiers into their parts at underscores and case changes, then
lower-cased, stopwords (English and Python's) dropped, and stemmed (PyStemmer's English Snowball), so
that "wrapping columns" meets ``wrap_column``. BM25's scores are then one more ranking, fused with the
dense one (see ``fusion.py``).

The BM25 weights are computed by the ``bm25s`` library when the index is built; what is stored is
its sparse matrix (one weight per word and chunk that holds it) and the vocabulary, in one ``.npz``
file. A search adds up the rows of the question's words with numpy alone: importing bm25s (and
scipy with it) costs 0.27 s, more than the rest of a search."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from nndex.code.errors import CodeSearchError

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# Parts of one identifier piece: "HTTPResponse2x" -> HTTP, Response, 2, x; "getItem" -> get, Item.
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Words that say nothing about what code does: English function words and Python's own vocabulary.
STOPWORDS = frozenset(
    "a about above after again all also am an and any are as at be been before being below between both but by "
    "can could did do does doing down during each either else every few for from further had has have having "
    "he her here hers him his how i if in into is it its itself just me more most my no nor not now of off on "
    "once only or other our out over own same she should so some such than that the their them then there "
    "these they this those through to too under until up very was we were what when where which while who "
    "whom why will with would you your one two get set use used using way want like thing things "
    "self cls def return none true false import class elif lambda pass raise try except finally yield async "
    "await global nonlocal assert del args kwargs kw str int bool float dict list tuple obj object param "
    "params type value todo".split()
)


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise CodeSearchError(f"nndex code needs bm25s and PyStemmer ({exc}): pip install 'nndex[code]'") from None


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return _require("Stemmer").Stemmer("english")


def words(text: str) -> list[str]:
    """The stemmed, lower-case words of ``text`` with identifiers split into their parts."""
    out: list[str] = []
    for identifier in _IDENTIFIER.findall(text.replace("_", " ")):
        for part in _PART.findall(identifier):
            word = part.lower()
            if len(word) >= 2 and word not in STOPWORDS and not word.isdigit():
                out.append(word)
    return _stemmer().stemWords(out)


class LexicalIndex:
    """BM25 weights of a list of texts (one per chunk, in row order): for word ``w`` (its number in
    ``vocab``), the chunks ``indices[indptr[w]:indptr[w + 1]]`` hold it with weights ``data[...]``."""

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 rows: int) -> None:
        self._vocab = vocab
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self._rows = rows

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        bm25s = _require("bm25s")
        retriever = bm25s.BM25()  # Lucene's BM25 (k1 = 1.5, b = 0.75)
        retriever.index([words(t) or ["\x00"] for t in texts], show_progress=False)  # each needs a word
        s = retriever.scores
        indptr = np.asarray(s["indptr"], np.int64)
        # bm25s also lists "" (a word no chunk holds, past the matrix's last column): left out.
        vocab = {w: i for w, i in retriever.vocab_dict.items() if w and i < indptr.size - 1}
        return cls(vocab, np.asarray(s["data"], np.float32), np.asarray(s["indices"], np.int32), indptr,
                   int(s["num_docs"]))

    def save(self, file: Any) -> None:
        names = [""] * (self._indptr.size - 1)  # a word's number is its line; "" where none
        for word, i in self._vocab.items():
            names[i] = word
        vocab = np.frombuffer("\n".join(names).encode("utf-8"), dtype=np.uint8)
        np.savez(file, vocab=vocab, data=self._data, indices=self._indices, indptr=self._indptr,
                 rows=np.asarray([self._rows], np.int64))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """The index saved at ``path``, its postings memory-mapped (archive.py): a search reads those
        of its words only, and checks their chunk numbers then (``scores``)."""
        from nndex.code.archive import open_arrays

        z = open_arrays(path)
        names = z["vocab"].tobytes().decode("utf-8").split("\n")
        data, indices, indptr, rows = z["data"], z["indices"], z["indptr"], int(z["rows"][0])
        if (indptr.shape != (len(names) + 1,) or data.shape != indices.shape or indptr[0] != 0
                or indptr[-1] != data.size or np.any(np.diff(indptr) < 0)):
            raise ValueError("its arrays do not fit together")
        if data.dtype != np.float32 or indices.dtype != np.int32 or indptr.dtype != np.int64:
            raise ValueError("its arrays have the wrong types")
        return cls({w: i for i, w in enumerate(names) if w}, data, indices, indptr, rows)

    @property
    def rows(self) -> int:
        return self._rows

    def scores(self, query: str) -> Optional[np.ndarray]:
        """BM25 score of every chunk for ``query``; None when no word of it occurs in the index."""
        ids = [self._vocab[w] for w in words(query) if w in self._vocab]
        if not ids:
            return None
        out = np.zeros(self._rows, np.float32)
        for w in ids:  # a word asked twice counts twice, as in BM25's sum over query terms
            lo, hi = self._indptr[w], self._indptr[w + 1]
            chunks = self._indices[lo:hi]
            if chunks.size and (chunks.min() < 0 or chunks.max() >= self._rows):
                raise CodeSearchError("the lexical index is damaged (a word's postings name a chunk out of "
                                      "range); re-run 'nndex code embed'")
            out[chunks] += self._data[lo:hi]  # a word's chunks are distinct
        return out
