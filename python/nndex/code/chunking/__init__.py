"""Splitting source files into chunks that are embedded one vector each.

Every file is split along its top-level definitions: Python with the ``ast`` module, JavaScript,
TypeScript, Go, Rust, C, C++ and Java with tree-sitter (when the grammars are installed; careful
regular expressions otherwise), Markdown by headings. A definition keeps its decorators, attributes
and the comments right above it; the statements between definitions are grouped. A definition
larger than the size limit is split along its members (the methods of a class, the items of an
``impl`` or a namespace) or, failing that, into overlapping line windows. Files with no known
structure are cut into overlapping line windows.

Guarantees, for every file: each line (blank ones included) lies in at least one chunk; each chunk's
``start_line``/``end_line`` are 1-based, inclusive and exact (the chunk's text is precisely those
lines); no chunk is larger than ``max_chars`` characters or ``max_lines`` lines, except that a single
line longer than ``max_chars`` becomes a chunk of its own whose text is cut at ``max_chars``.
"""

from __future__ import annotations

import re
from typing import Sequence

from nndex.code.chunking import treesitter as _treesitter
from nndex.code.chunking._core import (
    CHUNKER_VERSION,
    Chunk,
    ChunkOptions,
    Unit,
    chunk_lines,
    decode,
    make_preview,
    split_lines,
)
from nndex.code.chunking.markdown import markdown_units
from nndex.code.chunking.python import python_units
from nndex.code.chunking.regex import _REGEX_LANGUAGE, regex_units
from nndex.code.chunking.treesitter import _TS_GRAMMARS

__all__ = [
    "CHUNKER_VERSION",
    "Chunk",
    "ChunkOptions",
    "Unit",
    "chunk_lines",
    "chunk_text",
    "decode",
    "embedding_text",
    "language_of",
    "make_preview",
    "markdown_units",
    "python_units",
    "regex_units",
    "split_lines",
    "tree_sitter_available",
    "tree_sitter_units",
]

# The grammar loader, looked up here on every call so that it can be replaced (tests do, to force
# the regular-expression fallback).
_ts_parser = _treesitter._ts_parser


def tree_sitter_available(ext: str) -> bool:
    """Whether the tree-sitter grammar for files of this extension is installed and loads."""
    return _treesitter.tree_sitter_available(ext, _ts_parser)


def tree_sitter_units(data: bytes, ext: str) -> list[Unit] | None:
    """Units of a file parsed with tree-sitter; None when its grammar is not available."""
    return _treesitter.tree_sitter_units(data, ext, _ts_parser)


_MARKDOWN_EXTS = frozenset({"md", "markdown", "mdx", "rst"})


def language_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in ("py", "pyi", "pyw"):
        return "python"
    if ext in _TS_GRAMMARS:
        return _TS_GRAMMARS[ext][0]
    if ext in _MARKDOWN_EXTS:
        return "markdown"
    return "text"


def _units_for(path: str, text: str, lines: Sequence[str]) -> list[Unit]:
    language = language_of(path)
    if language == "python":
        units = python_units(text, lines)
        return units if units is not None else regex_units(lines, "python")
    if language == "markdown":
        return markdown_units(lines)
    if language == "text":
        return []
    ext = path.rsplit(".", 1)[-1].lower()
    normalised = "\n".join(lines).encode("utf-8", errors="replace")
    units = tree_sitter_units(normalised, ext)
    if units is not None:
        return units
    return regex_units(lines, _REGEX_LANGUAGE.get(language, ""))


def chunk_text(path: str, text: str, opts: ChunkOptions | None = None) -> list[Chunk]:
    """Chunks of one file's text; ``path`` (any form) only selects the language by its extension."""
    opts = opts or ChunkOptions()
    lines = split_lines(text)
    if not any(line.strip() for line in lines):
        return []
    units = _units_for(path, "\n".join(lines), lines)
    return chunk_lines(lines, units, opts, language_of(path))


_NAME_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _spelled_out(name: str) -> str:
    """A definition's name as words ("Table._calculate_column_widths" -> "table calculate column widths"):
    the embedding model reads words, and splits an identifier into pieces that are not."""
    return " ".join(p.lower() for p in _NAME_PART.findall(name.replace("_", " ")))


def embedding_text(path: str, chunk: Chunk) -> str:
    """The text embedded for a chunk: where it is and what it defines (its name also spelled out in
    words), then the code itself."""
    header = path
    if chunk.name:
        label = chunk.kind if chunk.kind not in ("code", "block", "definitions") else ""
        header += f" | {label} {chunk.name}".replace("  ", " ")
        words = _spelled_out(chunk.name)
        if words and words != chunk.name.lower():
            header += f" ({words})"
    if chunk.parts:
        header += f" (part {chunk.part} of {chunk.parts})"
    return header + "\n" + chunk.text
