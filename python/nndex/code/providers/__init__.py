"""Embedding providers: one small interface, a local sentence-transformers model and any
OpenAI-compatible HTTP endpoint.

Every provider returns float32 arrays whose rows are L2-normalised here, whatever the model or the
server returned, so the index can score by plain dot products.
"""

from __future__ import annotations

import os
from typing import Any

from nndex.code.errors import CodeSearchError
from nndex.code.providers.base import EmbeddingProvider, l2_normalize
from nndex.code.providers.local import DEFAULT_MODEL, ENV_BF16, LocalProvider, model_prompts, resolve_local_model
from nndex.code.providers.remote import HttpProvider, embeddings_endpoint

__all__ = [
    "DEFAULT_MODEL", "ENV_API_KEY", "ENV_API_URL", "ENV_BF16", "ENV_MODEL", "EmbeddingProvider", "HttpProvider",
    "LocalProvider", "embeddings_endpoint", "l2_normalize", "make_provider", "model_prompts", "provider_for_index",
    "resolve_local_model",
]

ENV_API_URL = "NNDEX_EMBED_API_URL"
ENV_API_KEY = "NNDEX_EMBED_API_KEY"
ENV_MODEL = "NNDEX_EMBED_MODEL"


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
