"""Hybrid retrieval in `nndex code`: the words BM25 sees, reciprocal rank fusion, the lexical index on
disk (built, replaced, missing, damaged) and the search modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from code_helpers import FakeProvider

from nndex.code import store
from nndex.code.engine import Searcher, build
from nndex.code.errors import CodeSearchError
from nndex.code.fusion import fuse, top_rows

pytest.importorskip("bm25s")
pytest.importorskip("Stemmer")

from nndex.code.lexical import LexicalIndex, words  # noqa: E402


def test_words_split_identifiers_drop_stopwords_and_stem():
    assert words("def read_file(self, HTTPResponse2x, getItem):") == ["read", "file", "http", "respons", "item"]
    assert words("wrapping the columns of tables") == words("wrap_column tabl") == ["wrap", "column", "tabl"]
    assert words("return None if x else 42") == []


def test_rrf_prefers_agreement_and_keeps_one_sided_rows():
    lexical = np.zeros(10, np.float32)
    lexical[[7, 2, 9]] = [3.0, 2.0, 1.0]  # BM25 ranks 7, 2, 9
    fused = fuse(np.array([2, 5, 7]), lexical, depth=10, c=60.0, lexical_weight=1.0)
    assert fused.rows.tolist()[:2] == [2, 7]  # in both rankings
    assert set(fused.rows.tolist()) == {2, 5, 7, 9}
    assert np.all(np.diff(fused.scores) <= 0)
    c = 60.0
    assert fused.scores[0] == pytest.approx(1 / (c + 1) + 1 / (c + 2))
    alone = fuse(np.array([4, 1, 3]), None, depth=2)  # no word of the question in the index
    assert alone.rows.tolist() == [4, 1]
    assert top_rows(np.array([0.0, 2.0, 2.0, 5.0, -1.0]), 3).tolist() == [3, 1, 2]  # positive only, ties by row


def test_a_search_process_loads_no_module_only_other_commands_need(code_tree):
    """Start-up is most of a CLI search: urllib (HTTP embedding), concurrent.futures (hashing large
    caches) and numpy.ma (which np.union1d imports) cost it ~70 ms together."""
    import subprocess
    import sys

    build(code_tree, FakeProvider())
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from nndex.code import store\n"
        "from nndex.code.engine import Searcher\n"
        "dims = store.load(sys.argv[1]).dims\n"
        "class Provider:\n"
        "    def embed_query(self, text):\n"
        "        return np.full(dims, dims ** -0.5, np.float32)\n"
        "assert Searcher(sys.argv[1], Provider()).search('remove an item from the cart', k=3)\n"
        "print(sorted(m for m in ('urllib.request', 'concurrent.futures', 'numpy.ma', 'http.client') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(code_tree)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_hybrid_finds_the_words_dense_misses_and_modes_are_checked(code_tree):
    build(code_tree, FakeProvider())
    meta = json.loads((code_tree / ".nndex" / "chunks.json").read_text())
    assert meta["lexical"] == store.LEXICAL_FILE and (code_tree / ".nndex" / store.LEXICAL_FILE).is_file()
    question = "value added tax rate per country"
    hybrid = Searcher(code_tree, FakeProvider()).search(question, k=3)  # hash vectors: dense is noise
    assert hybrid[0].file == "python/pricing.py"
    assert all(h.score > 0 for h in hybrid) and [h.rank for h in hybrid] == [1, 2, 3]
    dense = Searcher(code_tree, FakeProvider(), mode="dense").search(question, k=3)
    assert [h.score for h in dense] == [h.similarity for h in dense]
    with pytest.raises(CodeSearchError, match="mode must be one of hybrid, dense"):
        Searcher(code_tree, FakeProvider(), mode="bm25")


def test_lexical_index_follows_changes_and_is_added_to_an_older_index(code_tree):
    build(code_tree, FakeProvider())
    (code_tree / "python" / "pricing.py").write_text("def shipping_fee():\n    return 7\n")
    build(code_tree, FakeProvider())
    assert Searcher(code_tree, FakeProvider()).search("shipping fee", k=1)[0].file == "python/pricing.py"

    # An index written before the lexical index: searched densely, and `embed` adds one without
    # re-embedding anything.
    meta_path = code_tree / ".nndex" / "chunks.json"
    meta = json.loads(meta_path.read_text())
    del meta["lexical"]
    meta_path.write_text(json.dumps(meta))
    (code_tree / ".nndex" / store.LEXICAL_FILE).unlink()
    assert Searcher(code_tree, FakeProvider()).lexical is None
    stats = build(code_tree, FakeProvider())
    assert stats.chunks_embedded == 0 and not stats.up_to_date
    assert store.load(code_tree).load_lexical() is not None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "rows"])
def test_damaged_lexical_index_is_reported(code_tree, damage):
    build(code_tree, FakeProvider())
    path = code_tree / ".nndex" / store.LEXICAL_FILE
    if damage == "garbage":
        path.write_bytes(b"garbage")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:  # a well-formed file for another number of chunks
        with open(path, "wb") as f:
            LexicalIndex.build(["one chunk only"]).save(f)
    with pytest.raises(CodeSearchError, match="(damaged|inconsistent) .*re-run 'nndex code embed'"):
        Searcher(code_tree, FakeProvider())


def test_postings_out_of_range_are_reported_by_the_search_that_reads_them(code_tree):
    """The postings are mapped, not read when the index opens: a search checks those it reads."""
    build(code_tree, FakeProvider())
    path = code_tree / ".nndex" / store.LEXICAL_FILE
    arrays = dict(np.load(path))
    arrays["indices"] = arrays["indices"].copy()
    arrays["indices"][:] = store.load(code_tree).meta["num_chunks"] + 5
    np.savez(path, **arrays)
    searcher = Searcher(code_tree, FakeProvider())
    with pytest.raises(CodeSearchError, match="lexical index is damaged .*re-run 'nndex code embed'"):
        searcher.search("value added tax rate per country")


def test_scores_equal_bm25s_and_survive_a_round_trip(tmp_path):
    bm25s = pytest.importorskip("bm25s")
    texts = ["parse the header of a request", "", "write rows to disk", "parse rows, parse headers twice"]
    index = LexicalIndex.build(texts)
    assert index.rows == 4
    reference = bm25s.BM25()
    reference.index([words(t) or ["\x00"] for t in texts], show_progress=False)
    for query in ("parsing headers", "rows rows disk", "header"):
        want = reference.get_scores([w for w in words(query) if w in reference.vocab_dict])
        np.testing.assert_allclose(index.scores(query), want, rtol=1e-6)
    with open(tmp_path / "l.npz", "wb") as f:
        index.save(f)
    again = LexicalIndex.load(tmp_path / "l.npz")
    np.testing.assert_array_equal(again.scores("parse rows"), index.scores("parse rows"))
    assert index.scores("parse")[1] == 0
    assert index.scores("nothing matches here zzz") is None


def test_diverse_results_show_each_file_first_then_the_rest(tmp_path):
    # Three functions about shipping in one file, one in another: by score the first file fills the top.
    (tmp_path / "a.py").write_text("".join(
        f"def shipping_rate_{i}(order):\n    '''shipping rate table {i}'''\n"
        + "    total = compute_the_total_of(order, rate_table)\n" * 22 + "\n\n" for i in range(3)))
    (tmp_path / "b.py").write_text("def shipping_note():\n    '''shipping'''\n    return 'ships'\n")
    build(tmp_path, FakeProvider())
    searcher = Searcher(tmp_path, FakeProvider())
    by_score = searcher.search("shipping rate table", k=4, diverse=False)
    diverse = searcher.search("shipping rate table", k=4)
    assert sorted((h.file, h.start_line) for h in by_score) == sorted((h.file, h.start_line) for h in diverse)
    files = [h.file for h in diverse]
    assert files[:2] in (["a.py", "b.py"], ["b.py", "a.py"]) and files[2:] == ["a.py", "a.py"]
    assert [h.rank for h in diverse] == [1, 2, 3, 4]


def test_chunk_table_round_trips_and_version_1_indexes_still_read(code_tree):
    build(code_tree, FakeProvider())
    stored = store.load(code_tree)
    rows = list(stored.chunks)
    assert stored.meta["version"] == store.FORMAT_VERSION and "chunks" not in stored.meta
    assert stored.chunks[-1] == rows[-1] and stored.chunks[1:3] == rows[1:3]
    assert all(set(r) == {"file", "start_line", "end_line", "kind", "name", "preview"} for r in rows)
    table = store.ChunkTable(store.ChunkTable.columns(rows))
    assert list(table) == rows
    # Format 1 kept the rows in chunks.json: such an index is still searched.
    meta_path = code_tree / ".nndex" / "chunks.json"
    meta = json.loads(meta_path.read_text())
    meta.update(version=1, chunks=rows)
    meta_path.write_text(json.dumps(meta))
    (code_tree / ".nndex" / store.CHUNKS_FILE).unlink()
    assert Searcher(code_tree, FakeProvider()).search("value added tax", k=1)[0].file == "python/pricing.py"
    # A damaged table is an error naming the file.
    build(code_tree, FakeProvider(), full=True)
    (code_tree / ".nndex" / store.CHUNKS_FILE).write_bytes(b"not a table")
    with pytest.raises(CodeSearchError, match="chunks.npz"):
        Searcher(code_tree, FakeProvider()).search("tax", k=1)
