"""Building and searching a code index: stored metadata, incremental re-embedding (changed, deleted
and added files), rebuild triggers, errors, and search over HTTP embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from code_helpers import FAKE_DIMS, FakeProvider

from nndex import NNdex
from nndex.code import store
from nndex.code.chunking import ChunkOptions, split_lines
from nndex.code.engine import Searcher, build, search
from nndex.code.errors import CodeSearchError
from nndex.code.providers import HttpProvider

pytest.importorskip("pathspec")


def test_build_writes_index_vectors_and_metadata(code_tree, fake_provider):
    stats = build(code_tree, fake_provider)
    assert stats.files == 12 and stats.files_embedded == 12 and stats.chunks == len(fake_provider.texts)
    directory = code_tree / ".nndex"
    meta = json.loads((directory / "chunks.json").read_text())
    assert meta["model"] == "fake-hash" and meta["dims"] == FAKE_DIMS and meta["provider"]["kind"] == "fake"
    assert meta["num_chunks"] == stats.chunks and meta["num_files"] == 12
    assert meta["built_at"].endswith("+00:00") and meta["build_seconds"] >= 0
    vectors = np.load(directory / "vectors.npy")
    assert vectors.shape == (stats.chunks, FAKE_DIMS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    index = NNdex.load(directory / "index.nndex")
    assert index.rows == stats.chunks and index.dims == FAKE_DIMS
    assert (directory / ".gitignore").read_text().strip().endswith("*")
    # every chunk names its file and exact lines; files record their hash and chunk range
    for f in meta["files"]:
        assert len(f["sha256"]) == 64
        rows = store.load(code_tree).chunks[f["first_chunk"] : f["first_chunk"] + f["num_chunks"]]
        assert all(c["file"] == f["path"] for c in rows)
        lines = split_lines((code_tree / f["path"]).read_text())
        assert f["lines"] == len(lines)
        covered = set()
        for c in rows:
            covered.update(range(c["start_line"], c["end_line"] + 1))
            assert c["preview"]
        assert covered == set(range(1, len(lines) + 1))
    # the embedded text starts with the file path
    assert all(t.split("\n", 1)[0].split(" | ")[0] in {f["path"] for f in meta["files"]} for t in fake_provider.texts)


def test_unchanged_tree_reembeds_nothing_and_skips_the_model(code_tree):
    first = FakeProvider()
    build(code_tree, first)
    before = (code_tree / ".nndex" / "chunks.json").read_bytes()
    second = FakeProvider()
    stats = build(code_tree, second)
    assert stats.up_to_date and stats.chunks_embedded == 0
    assert second.loads == 0 and second.calls == 0  # the model is not even loaded
    assert (code_tree / ".nndex" / "chunks.json").read_bytes() == before


def test_incremental_reembeds_only_changed_and_added_files(code_tree):
    build(code_tree, FakeProvider())
    old_chunks = list(store.load(code_tree).chunks)
    old_vectors = np.load(code_tree / ".nndex" / "vectors.npy")

    pricing = code_tree / "python" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef gift_wrapping_fee(parcels):\n    return 2 * parcels\n")
    (code_tree / "web" / "cart.js").unlink()
    (code_tree / "python" / "loyalty.py").write_text(
        "def loyalty_points(purchase_total):\n    \"\"\"Customers earn one bonus point per euro spent.\"\"\"\n    return int(purchase_total)\n"
    )

    provider = FakeProvider()
    stats = build(code_tree, provider)
    assert (stats.files_embedded, stats.files_removed, stats.files_unchanged) == (2, 1, 10)
    embedded_files = {t.split("\n", 1)[0].split(" | ")[0] for t in provider.texts}
    assert embedded_files == {"python/pricing.py", "python/loyalty.py"}
    meta = json.loads((code_tree / ".nndex" / "chunks.json").read_text())
    assert stats.chunks_embedded == sum(f["num_chunks"] for f in meta["files"] if f["path"] in embedded_files)
    assert "web/cart.js" not in {f["path"] for f in meta["files"]}
    assert "web/cart.js" not in {c["file"] for c in store.load(code_tree).chunks}

    # unchanged files kept their exact vectors
    vectors = np.load(code_tree / ".nndex" / "vectors.npy")
    old_rows = {(c["file"], c["start_line"]): i for i, c in enumerate(old_chunks)}
    for i, c in enumerate(store.load(code_tree).chunks):
        if c["file"] not in embedded_files:
            np.testing.assert_array_equal(vectors[i], old_vectors[old_rows[(c["file"], c["start_line"])]])

    # and the search sees the change
    hits = search(code_tree, "loyalty bonus points earned per euro", k=3, provider=FakeProvider())
    assert hits[0].file == "python/loyalty.py"
    hits = search(code_tree, "gift wrapping fee for parcels", k=3, provider=FakeProvider())
    assert hits[0].file == "python/pricing.py" and hits[0].end_line == len(split_lines(pricing.read_text()))
    assert all(h.file != "web/cart.js" for h in search(code_tree, "shopping cart remove item", k=20, provider=FakeProvider()))


def test_a_different_model_or_chunker_rebuilds_everything(code_tree):
    build(code_tree, FakeProvider())
    other = FakeProvider(model="another-model")
    stats = build(code_tree, other)
    assert stats.full_rebuild and "model changed" in stats.rebuild_reason and stats.files_embedded == 12
    again = FakeProvider(model="another-model")
    stats = build(code_tree, again, options=ChunkOptions(max_chars=600))
    assert stats.full_rebuild and "chunking" in stats.rebuild_reason and again.calls > 0
    forced = FakeProvider(model="another-model")
    stats = build(code_tree, forced, options=ChunkOptions(max_chars=600), full=True)
    assert stats.files_embedded == 12


def test_prompts_are_embedded_recorded_and_used_by_search(code_tree):
    built = FakeProvider(query_prompt="query: ", document_prompt="passage: ")
    build(code_tree, built)
    assert built.texts and all(t.startswith("passage: ") for t in built.texts)
    identity = store.load(code_tree).meta["provider"]
    assert identity == {"kind": "fake", "model": "fake-hash", "query_prompt": "query: ", "document_prompt": "passage: "}
    # search embeds the question with the query prompt: the same vector as the prompt typed by hand
    asker = FakeProvider(query_prompt="query: ")
    plain = FakeProvider()
    assert [h.file for h in Searcher(code_tree, asker).search("rate limit", k=3)] == \
        [h.file for h in Searcher(code_tree, plain).search("query: rate limit", k=3)]
    assert asker.texts == ["query: rate limit"]


def test_a_prompt_change_reembeds_only_when_the_documents_change(code_tree):
    build(code_tree, FakeProvider(document_prompt="passage: "))
    new_query = FakeProvider(query_prompt="query: ", document_prompt="passage: ")
    stats = build(code_tree, new_query)  # the vectors still hold: only the recorded query prompt changes
    assert new_query.calls == 0 and not stats.full_rebuild and not stats.up_to_date
    assert store.load(code_tree).meta["provider"]["query_prompt"] == "query: "
    again = FakeProvider(query_prompt="query: ", document_prompt="passage: ")
    assert build(code_tree, again).up_to_date and again.calls == 0
    new_docs = FakeProvider(query_prompt="query: ", document_prompt="doc: ")
    stats = build(code_tree, new_docs)
    assert stats.full_rebuild and stats.rebuild_reason == "the document prompt changed" and stats.files_embedded == 12
    none = FakeProvider()
    stats = build(code_tree, none)
    assert stats.full_rebuild and none.texts and not none.texts[0].startswith("doc: ")
    assert "document_prompt" not in store.load(code_tree).meta["provider"]


def test_damaged_index_is_rebuilt_by_embed_and_reported_by_search(code_tree):
    build(code_tree, FakeProvider())
    np.save(code_tree / ".nndex" / "vectors.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(CodeSearchError, match="damaged|inconsistent"):
        store.load(code_tree).load_vectors()
    stats = build(code_tree, FakeProvider())
    assert stats.full_rebuild and stats.files_embedded == 12
    (code_tree / ".nndex" / "chunks.json").write_text("{not json")
    with pytest.raises(CodeSearchError, match="not valid JSON"):
        search(code_tree, "x", provider=FakeProvider())


def test_empty_trees_are_errors(tmp_path, fake_provider):
    with pytest.raises(CodeSearchError, match="no text files found"):
        build(tmp_path, fake_provider)
    (tmp_path / "blank.py").write_text("\n\n   \n")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CodeSearchError, match="all 2 files are empty"):
        build(tmp_path, fake_provider)
    assert not (tmp_path / ".nndex" / "chunks.json").exists()


def test_search_without_index(tmp_path):
    with pytest.raises(CodeSearchError, match="no index found .* run 'nndex code embed' first"):
        search(tmp_path, "anything", provider=FakeProvider())


def test_overlapping_windows_are_reported_once(tmp_path):
    body = "".join(f"    total += shipping_rate({i})  # shipping rate table entry\n" for i in range(120))
    (tmp_path / "rates.py").write_text("def rates():\n    total = 0\n" + body + "    return total\n")
    build(tmp_path, FakeProvider(), options=ChunkOptions(max_chars=800, max_lines=20, overlap_lines=3))
    hits = search(tmp_path, "shipping rate table entry", k=50, provider=FakeProvider())
    spans = [(h.start_line, h.end_line) for h in hits]
    for i, (a, b) in enumerate(spans):
        for c, d in spans[i + 1 :]:
            assert b < c or d < a, "overlapping chunks of one file were both returned"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_http_provider_end_to_end_and_query_dims_check(code_tree, embed_server):
    stats = build(code_tree, HttpProvider(embed_server.url, model="fake"))
    assert embed_server.inputs == stats.chunks
    searcher = Searcher(code_tree)  # the provider comes from the index metadata
    assert isinstance(searcher.provider, HttpProvider) and searcher.provider.model == "fake"
    hits = searcher.search("remove item from shopping cart", k=3)
    assert hits[0].file == "web/cart.js"
    assert hits[0].similarity >= hits[-1].similarity
    embed_server.mode = "dims:32"
    with pytest.raises(CodeSearchError, match=f"32 dims but the index holds {FAKE_DIMS}-dim"):
        Searcher(code_tree).search("anything", k=3)


def test_incremental_embedding_counts_requests_on_the_server(code_tree, embed_server):
    build(code_tree, HttpProvider(embed_server.url, model="fake"))
    embed_server.reset()
    stats = build(code_tree, HttpProvider(embed_server.url, model="fake"))
    assert stats.up_to_date and embed_server.requests == []
    (code_tree / "scripts" / "backup.sh").write_text("#!/bin/sh\necho restore the database from the newest archive\n")
    stats = build(code_tree, HttpProvider(embed_server.url, model="fake"))
    assert stats.files_embedded == 1 and embed_server.inputs == stats.chunks_embedded == 1
