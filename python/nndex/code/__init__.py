"""``nndex code``: natural-language search over a source tree, built on :class:`nndex.NNdex`.

>>> from nndex.code import build, search, make_provider
>>> build("path/to/project", make_provider())          # writes path/to/project/.nndex
>>> for hit in search("path/to/project", "where are passwords hashed", k=5):
...     print(hit.file, hit.start_line, hit.end_line, hit.similarity)

Modules: ``discovery`` (which files), ``chunking`` (how they are split), ``providers`` (embedding
models), ``store`` (the on-disk index), ``engine`` (incremental build and search), ``cli``.
The local model needs the ``embed`` extra (sentence-transformers and the bundled all-MiniLM-L6-v2);
an OpenAI-compatible embedding server needs nothing more.
"""

from nndex.code.chunking import Chunk, ChunkOptions, chunk_text
from nndex.code.engine import EmbedStats, Hit, Searcher, build, search
from nndex.code.errors import CodeSearchError
from nndex.code.providers import EmbeddingProvider, HttpProvider, LocalProvider, make_provider

__all__ = [
    "Chunk",
    "ChunkOptions",
    "CodeSearchError",
    "EmbedStats",
    "EmbeddingProvider",
    "Hit",
    "HttpProvider",
    "LocalProvider",
    "Searcher",
    "build",
    "chunk_text",
    "make_provider",
    "search",
]
