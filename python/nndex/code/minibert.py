"""A small numpy implementation of a BERT sentence encoder with mean pooling, for queries.

Importing sentence-transformers and torch takes seconds; embedding one short query with numpy takes
milliseconds. ``load_encoder`` returns an encoder only for a model it can reproduce exactly: a
``bert`` model (GELU, absolute positions) saved as ``model.safetensors`` with a ``tokenizer.json``,
followed by mean pooling (and optionally Normalize). For anything else it returns None and the caller
uses sentence-transformers. The test suite checks that both give the same vectors.
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any, Sequence

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
_SINGLE_THREAD_TOKENS = 128


def _one_blas_thread() -> Any:
    """A context limiting BLAS to one thread (threadpoolctl, when installed), else a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    try:
        return threadpool_limits(limits=1, user_api="blas")
    except Exception:
        return contextlib.nullcontext()


def read_safetensors(path: str | Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file as float32 arrays (memory-mapped, converted on read)."""
    path = Path(path)
    with open(path, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
    blob = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__" or (names is not None and name not in names):
            continue
        start, end = info["data_offsets"]
        raw = blob[start:end]
        dtype = info["dtype"]
        if dtype == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = raw.view(_DTYPES[dtype]).astype(np.float32, copy=False)
        else:
            continue  # integer buffers such as position_ids
        out[name] = arr.reshape(info["shape"])
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    # Chebyshev fit of erfc (Numerical Recipes), fractional error below 1.2e-7 everywhere.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (
        1.00002368
        + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))
    )
    r = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - r, r - 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x64 - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)


def _blas_ready(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    return arr if arr.flags.aligned else np.array(arr)


class MiniBert:
    """BERT forward pass and mean pooling; ``encode(texts)`` -> (n, hidden) float32 (not normalised)."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any], tokenizer: Any, max_len: int) -> None:
        # The weights stay memory-mapped where they are aligned float32 (no copy: opening the model
        # costs no 85 MB transposing copy); an unaligned tensor is copied, as BLAS skips unaligned memory.
        self.w = {name: _blas_ready(arr) for name, arr in weights.items()}
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = tokenizer
        self.max_len = max_len

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        # W (out, in) as stored, times the tokens as columns: BLAS reads W row-major, which for a few
        # tokens is faster than x @ W.T (measured: 26 against 35 ms a query on 2 cores).
        tokens = x.reshape(-1, x.shape[-1])
        y = (self.w[name + ".weight"] @ tokens.T).T
        return y.reshape(*x.shape[:-1], y.shape[-1]) + self.w[name + ".bias"]

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        n, length = ids.shape
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hidden = h.shape[-1]
        head_dim = hidden // self.heads
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(n, length, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(self._dense(h, p + "attention.self.query"))
            k = split(self._dense(h, p + "attention.self.key"))
            v = split(self._dense(h, p + "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head_dim)) + bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            attn = self._dense(ctx, p + "attention.output.dense")
            h = _layer_norm(attn + h, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            inter = _gelu(self._dense(h, p + "intermediate.dense"))
            out = self._dense(inter, p + "output.dense")
            h = _layer_norm(out + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None].astype(np.float32)
        return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            types[row, : len(e.type_ids)] = e.type_ids
            mask[row, : len(e.attention_mask)] = e.attention_mask
        if ids.size > _SINGLE_THREAD_TOKENS:
            return self._forward(ids, types, mask)
        # A short query is a few small matrix products: waking BLAS worker threads costs more than it
        # saves, and on a busy machine it can cost hundreds of milliseconds.
        with _one_blas_thread():
            return self._forward(ids, types, mask)


def load_encoder(model_dir: str | Path) -> MiniBert | None:
    """A MiniBert for a sentence-transformers model folder, or None when it cannot be reproduced here."""
    try:
        root = Path(model_dir)
        config = json.loads((root / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            return None
        if config.get("position_embedding_type", "absolute") != "absolute":
            return None
        modules = json.loads((root / "modules.json").read_text())
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
            return None
        if modules[0].get("path"):
            return None
        pooling = json.loads((root / modules[1]["path"] / "config.json").read_text())
        wanted = {k: v for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        if set(wanted) != {"pooling_mode_mean_tokens"}:
            return None
        st_config = {}
        if (root / "sentence_bert_config.json").is_file():
            st_config = json.loads((root / "sentence_bert_config.json").read_text())
        if st_config.get("do_lower_case"):
            return None
        max_len = int(st_config.get("max_seq_length") or 512)
        weights_path = root / "model.safetensors"
        if not weights_path.is_file() or not (root / "tokenizer.json").is_file():
            return None
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_len)
        weights = read_safetensors(weights_path)
        if any(k.startswith("bert.") for k in weights):
            weights = {k[5:]: v for k, v in weights.items() if k.startswith("bert.")}
        needed = ["embeddings.word_embeddings.weight", f"encoder.layer.{int(config['num_hidden_layers']) - 1}.output.dense.weight"]
        if any(k not in weights for k in needed):
            return None
        return MiniBert(weights, config, tokenizer, max_len)
    except Exception:
        return None
