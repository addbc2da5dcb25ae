"""The interface every embedding provider implements, and what they share: rows L2-normalised here,
whatever the model or the server returned, so the index can score by plain dot products; prompts
checked the same way for all."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from nndex.code.errors import CodeSearchError

Progress = Callable[[int], None]


def l2_normalize(vectors: Any, what: str = "embedding") -> np.ndarray:
    """Rows as float32 unit vectors; a non-finite or all-zero row is an error naming the row."""
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise CodeSearchError(f"{what} has shape {arr.shape}, expected (n, dims) with dims > 0")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise CodeSearchError(f"{what} {int(np.argmin(finite))} holds NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        raise CodeSearchError(f"{what} {int(np.argmin(norms))} is all zeros and cannot be normalised")
    return (arr / norms[:, None]).astype(np.float32)


class EmbeddingProvider:
    """The interface: embed_documents(texts) -> (n, dims) and embed_query(text) -> (dims,), float32, unit length."""

    kind = "abstract"
    batch_size = 32

    def __init__(self, *, query_prompt: str = "", document_prompt: str = "") -> None:
        self.dims: int | None = None
        # Text put before every query / document: models such as E5, BGE, Nomic or CodeRankEmbed were
        # trained with such instructions ("query: ", "search_document: ") and retrieve worse without them.
        self.query_prompt = _checked_prompt(query_prompt, "query prompt")
        self.document_prompt = _checked_prompt(document_prompt, "document prompt")

    @property
    def model(self) -> str:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What must match for stored vectors to be reused (and what search needs to embed queries)."""
        return {"kind": self.kind, "model": self.model, **self._prompt_identity()}

    def _prompt_identity(self) -> dict[str, str]:
        """The prompts, only when set: an index built without them keeps its identity."""
        out = {}
        if self.query_prompt:
            out["query_prompt"] = self.query_prompt
        if self.document_prompt:
            out["document_prompt"] = self.document_prompt
        return out

    def load(self) -> None:
        """Loads the model (or checks nothing: remote providers need no loading)."""

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = [self.document_prompt + t for t in texts] if self.document_prompt else list(texts)
        if not texts:
            return np.zeros((0, self.dims or 0), dtype=np.float32)
        self.load()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            parts.append(self._checked(self._embed(batch), len(batch)))
            if progress is not None:
                progress(len(batch))
        return np.concatenate(parts, axis=0)

    def embed_query(self, text: str) -> np.ndarray:
        self.load()
        return self._checked(self._embed([self.query_prompt + text]), 1)[0]

    def _checked(self, vectors: Any, n: int) -> np.ndarray:
        out = l2_normalize(vectors)
        if out.shape[0] != n:
            raise CodeSearchError(f"the embedding model returned {out.shape[0]} vectors for {n} texts")
        if self.dims is None:
            self.dims = int(out.shape[1])
        elif out.shape[1] != self.dims:
            raise CodeSearchError(f"the embedding model returned {out.shape[1]}-dim vectors after {self.dims}-dim ones")
        return out


def _checked_prompt(prompt: Any, what: str) -> str:
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise CodeSearchError(f"the {what} must be a string, got {type(prompt).__name__}")
    if len(prompt) > 1000:
        raise CodeSearchError(f"the {what} is {len(prompt)} characters long; at most 1000 are allowed")
    return prompt


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
