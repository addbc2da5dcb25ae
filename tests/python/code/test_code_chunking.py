"""Chunking of `nndex code`: definitions kept whole, exact line ranges, no line lost, size limits,
huge and empty files, every supported language, and the fallbacks."""

from __future__ import annotations

import textwrap

import pytest
from code_helpers import FIXTURE_TREE, assert_chunk_invariants
from hypothesis import given, settings
from hypothesis import strategies as st

from nndex.code import chunking
from nndex.code.chunking import ChunkOptions, chunk_text, embedding_text, split_lines

SMALL = ChunkOptions(max_chars=400, max_lines=30, overlap_lines=2, min_chars=0)


def chunks_of(path, text, opts=None):
    opts = opts or ChunkOptions()
    chunks = chunk_text(path, text, opts)
    assert_chunk_invariants(split_lines(text), chunks, opts.max_chars, opts.max_lines)
    return chunks


def by_name(chunks, name):
    found = [c for c in chunks if name in c.name.split(", ")]
    assert found, f"no chunk named {name}: {[c.name for c in chunks]}"
    return found


PY_SOURCE = textwrap.dedent(
    '''\
    """Module docstring."""
    import os

    CONSTANT = 3


    # A comment that belongs to the decorated function below,
    # over two lines.
    @decorator
    @other(arg=1)
    def decorated(x):
        """Docstring."""
        return x + CONSTANT



    class Shape:
        """A shape."""

        sides = 0

        def area(self):
            raise NotImplementedError

        @property
        def name(self):
            return type(self).__name__


    async def fetch(url):
        return url


    if __name__ == "__main__":
        print(decorated(1))
    '''
)


def test_python_definitions_are_whole_with_decorators_and_comments():
    chunks = chunks_of("m.py", PY_SOURCE, SMALL)
    lines = split_lines(PY_SOURCE)
    (dec,) = by_name(chunks, "decorated")
    assert lines[dec.start_line - 1] == "# A comment that belongs to the decorated function below,"
    assert dec.kind == "function"
    assert "return x + CONSTANT" in dec.text
    (shape,) = by_name(chunks, "Shape")
    assert shape.kind == "class"
    assert lines[shape.start_line - 1] == "class Shape:"
    assert "return type(self).__name__" in shape.text  # the whole class in one chunk: it fits
    (fetch,) = by_name(chunks, "fetch")
    assert lines[fetch.start_line - 1] == "async def fetch(url):"
    # module-level code before the first definition is grouped into one chunk starting at line 1
    assert chunks[0].start_line == 1 and "CONSTANT = 3" in chunks[0].text


def test_exact_end_lines_include_the_last_line_of_each_definition():
    # the original under-counted end lines: here each chunk's last line must be its real last line
    chunks = chunks_of("m.py", PY_SOURCE, SMALL)
    lines = split_lines(PY_SOURCE)
    (dec,) = by_name(chunks, "decorated")
    last_code = max(i for i in range(dec.start_line, dec.end_line + 1) if lines[i - 1].strip())
    assert lines[last_code - 1] == "    return x + CONSTANT"
    assert all(not lines[i - 1].strip() for i in range(last_code + 1, dec.end_line + 1))
    for c in chunks:
        assert c.text.split("\n")[0] == lines[c.start_line - 1]
        assert c.text.split("\n")[-1] == lines[c.end_line - 1]


def test_small_neighbours_are_merged_and_large_ones_kept_apart():
    src = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(10))
    merged = chunks_of("m.py", src, ChunkOptions(max_chars=1500, min_chars=250))
    assert len(merged) < 10
    apart = chunks_of("m.py", src, ChunkOptions(max_chars=1500, min_chars=0))
    assert [c.name for c in apart] == [f"f{i}" for i in range(10)]


def test_a_large_class_is_split_along_its_methods():
    methods = "".join(
        f"    def method_{i}(self, value):\n" + "".join(f"        value = value * {j} + {i}\n" for j in range(8)) + "        return value\n\n"
        for i in range(12)
    )
    src = 'class Big:\n    """A class too large for one chunk."""\n\n' + methods
    chunks = chunks_of("big.py", src, SMALL)
    lines = split_lines(src)
    assert chunks[0].name.startswith("Big") and chunks[0].start_line == 1
    for i in range(12):
        (c,) = by_name(chunks, f"Big.method_{i}")
        assert c.kind == "method"
        assert lines[c.start_line - 1] == f"    def method_{i}(self, value):"
        assert "        return value" in c.text.split("\n")


def test_an_oversized_function_is_cut_into_overlapping_windows():
    body = "".join(f"    total += compute({i}, 'some argument text to make the line longer')\n" for i in range(200))
    src = "def huge():\n    total = 0\n" + body + "    return total\n"
    opts = ChunkOptions(max_chars=1000, max_lines=40, overlap_lines=3, min_chars=0)
    chunks = chunks_of("h.py", src, opts)
    assert len(chunks) > 5
    assert all(c.name == "huge" for c in chunks)
    assert [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(c.parts == len(chunks) for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start_line <= a.end_line  # windows overlap
        assert b.start_line > a.start_line  # and move forward


def test_huge_file_every_line_covered():
    src = "".join(f"line_{i} = {i}  # filler to make it longer\n" if i % 7 else "\n" for i in range(30_000))
    chunks = chunks_of("data.txt", src)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 30_000


def test_a_single_giant_line_is_one_chunk_cut_at_the_limit():
    src = "header = 1\n" + "var a=" + "x" * 200_000 + ";\n" + "footer = 2\n"
    opts = ChunkOptions(max_chars=1500)
    chunks = chunks_of("bundle.min.js", src, opts)
    giant = [c for c in chunks if c.start_line <= 2 <= c.end_line]
    assert giant and all(len(c.text) <= 1500 for c in chunks)
    assert chunks[-1].end_line == 3


@pytest.mark.parametrize("text", ["", "\n", "   \n\t\n", "\n\n\n"])
def test_empty_and_blank_files_give_no_chunks(text):
    assert chunk_text("empty.py", text) == []


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_numbers_follow_the_editor_for_every_newline_style(newline):
    src = newline.join(["import os", "", "def a():", "    return 1", "", "", "def b():", "    return 2", ""])
    chunks = chunk_text("m.py", src, ChunkOptions(min_chars=0))
    a = by_name(chunks, "a")[0]
    b = by_name(chunks, "b")[0]
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 2), (3, 6), (7, 8)]
    assert (a.start_line, a.end_line) == (3, 6)  # the blank lines after a definition stay with it
    assert (b.start_line, b.end_line) == (7, 8)


def test_python_syntax_error_falls_back_to_patterns():
    src = "def ok():\n    return 1\n\nprint 'python 2'\n\ndef other():\n    return 2\n"
    chunks = chunks_of("old.py", src, ChunkOptions(min_chars=0))
    assert [c.name for c in chunks if c.name] == ["ok", "other"]


def test_markdown_is_split_at_headings_outside_code_fences():
    src = "# Title\nintro\n\n## Install\n```sh\n# not a heading\npip install x\n```\n\n## Usage\nrun it\n"
    chunks = chunks_of("README.md", src, ChunkOptions(min_chars=0))
    assert [c.name for c in chunks] == ["Title", "Install", "Usage"]
    assert chunks[0].preview == "# Title"


# Each fixture file with (definition name, first line of its chunk, a line the chunk must contain).
LANGUAGE_CASES = [
    ("web/cart.js", "ShoppingCart", "export class ShoppingCart {", "    this.save();"),
    ("web/cart.js", "formatPrice", "export const formatPrice = (cents) => {", "};"),
    ("web/auth.ts", "verifyPassword", "/** Checks a login attempt against the stored hash, in constant time. */", "}"),
    ("web/auth.ts", "StoredPassword", "export interface StoredPassword {", "  hash: string;"),
    ("server/main.go", "healthHandler", "// healthHandler answers the load balancer's liveness probe.", "}"),
    ("server/main.go", "Book", "// Book is one title of the catalogue as the API returns it.", "}"),
    ("parser/src/csv.rs", "Record", "/// One row of the catalogue.", "}"),
    ("parser/src/csv.rs", "parse_line", "/// Splits one line at commas; a field in double quotes may hold commas and doubled quotes (\"\").", "    Ok(Record { fields })"),
    ("native/ring_buffer.c", "ring_pop", "/* Takes the oldest byte out; returns 0 when the buffer is empty. */", "    return 1;"),
    ("native/matrix.cpp", "shop.multiply", "// Matrix product a * b; the inner dimensions must agree.", "  return out;"),
    ("java/shop/RateLimiter.java", "RateLimiter.tryAcquire", "    /** Returns true when the request may go ahead, false when the client must wait. */", "        return false;"),
    ("python/pricing.py", "apply_coupon", "def apply_coupon(subtotal: Decimal, code: str | None) -> Decimal:", "    return subtotal"),
]


@pytest.mark.parametrize("rel,name,first,contains", LANGUAGE_CASES, ids=[f"{c[0]}:{c[1]}" for c in LANGUAGE_CASES])
def test_definitions_of_every_language_are_kept_whole(rel, name, first, contains):
    text = (FIXTURE_TREE / rel).read_text()
    # a smaller limit forces the containers (the Java class, the C++ namespace) to be split into members
    split = rel.endswith((".java", ".cpp"))
    opts = ChunkOptions(max_chars=700 if split else 1500, max_lines=40, min_chars=0)
    chunks = chunks_of(rel, text, opts)
    (c,) = by_name(chunks, name)
    lines = split_lines(text)
    assert lines[c.start_line - 1] == first
    assert contains in c.text.split("\n")
    # the chunk ends at the definition's last line (or the blank lines after it)
    tail = [line for line in c.text.split("\n") if line.strip()]
    assert tail[-1].strip() in ("}", "};", "return subtotal", "Ok(Record { fields })") or tail[-1].endswith("}")


def test_every_fixture_file_satisfies_the_invariants():
    for path in sorted(FIXTURE_TREE.rglob("*")):
        if path.is_file():
            text = path.read_text()
            for opts in (ChunkOptions(), SMALL, ChunkOptions(max_chars=120, max_lines=5, overlap_lines=1, min_chars=0)):
                chunks_of(str(path.relative_to(FIXTURE_TREE)), text, opts)


def test_regex_fallback_without_tree_sitter(monkeypatch):
    monkeypatch.setattr(chunking, "_ts_parser", lambda *a: None)
    for rel, name in [("server/main.go", "healthHandler"), ("parser/src/csv.rs", "parse_line"), ("web/cart.js", "ShoppingCart")]:
        text = (FIXTURE_TREE / rel).read_text()
        chunks = chunks_of(rel, text, ChunkOptions(min_chars=0))
        assert by_name(chunks, name)


def test_tree_sitter_is_used_when_installed():
    pytest.importorskip("tree_sitter")
    pytest.importorskip("tree_sitter_go")
    assert chunking.tree_sitter_available("go")


def test_embedding_text_names_file_and_definition():
    chunks = chunk_text("pkg/m.py", PY_SOURCE, SMALL)
    (dec,) = by_name(chunks, "decorated")
    text = embedding_text("pkg/m.py", dec)
    assert text.startswith("pkg/m.py | function decorated\n")
    assert text.endswith(dec.text)


def test_preview_skips_comments_and_decorators():
    chunks = chunk_text("m.py", PY_SOURCE, SMALL)
    (dec,) = by_name(chunks, "decorated")
    assert dec.preview == "def decorated(x):"


_LINE = st.one_of(
    st.just(""),
    st.just("def f(x):"),
    st.just("class C:"),
    st.just("    return x"),
    st.just("    def m(self):"),
    st.just("# comment"),
    st.just("@decorator"),
    st.just("}"),
    st.just("fn main() {"),
    st.just("function g() {"),
    st.text(alphabet="abc (){}:#=\t'\"", max_size=60),
    st.text(alphabet="xyz", min_size=100, max_size=400),
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=80),
    ext=st.sampled_from(["py", "js", "rs", "go", "c", "java", "md", "txt"]),
    max_chars=st.integers(80, 600),
    max_lines=st.integers(4, 30),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_property_no_line_lost_and_exact_ranges(lines, ext, max_chars, max_lines, newline):
    text = newline.join(lines)
    opts = ChunkOptions(max_chars=max_chars, max_lines=max_lines, overlap_lines=min(3, max_lines // 2 - 1), min_chars=50)
    chunks_of(f"f.{ext}", text, opts)
