"""The remote provider: any OpenAI-compatible /v1/embeddings endpoint."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import numpy as np

from nndex.code.errors import CodeSearchError
from nndex.code.providers.base import EmbeddingProvider, _short

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
