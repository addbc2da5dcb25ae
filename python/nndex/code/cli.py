"""``nndex code``: natural-language search over a source tree.

Commands::

    nndex code embed [DIR] [--model NAME | --api-url URL] [--full] [--quiet]
    nndex code search QUERY... [-d DIR] [-k 10] [--json] [--api-url URL] [--timings]
    nndex code info [DIR] [--json]

``register(subparsers)`` adds the ``code`` command to the ``nndex`` console script; ``main(argv)`` runs
the same commands standalone (``python -m nndex.code``). Every handler returns an exit status and
reports a problem as one line on stderr (``nndex: error: ...``), never as a traceback (unless
NNDEX_DEBUG=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from nndex.code.errors import CodeSearchError

Handler = Callable[[argparse.Namespace], int]

_EPILOG = (
    "The index lives in DIR/.nndex. The local model (all-MiniLM-L6-v2, offline) is the default; "
    "--api-url (or NNDEX_EMBED_API_URL, with NNDEX_EMBED_API_KEY and NNDEX_EMBED_MODEL) uses an "
    "OpenAI-compatible /v1/embeddings endpoint instead."
)


def _error(message: str) -> None:
    print(f"nndex: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _guard(handler: Handler) -> Handler:
    """Turns every failure into one line on stderr and an exit status."""

    def run(args: argparse.Namespace) -> int:
        start = time.perf_counter()
        args._started = getattr(args, "_started", start)
        try:
            return int(handler(args) or 0)
        except CodeSearchError as exc:
            _error(str(exc))
            return exc.exit_code
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except BrokenPipeError:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except OSError:
                pass
            return 1
        except Exception as exc:
            if os.environ.get("NNDEX_DEBUG"):
                raise
            _error(f"{type(exc).__name__}: {exc}")
            return 1

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


# ------------------------------------------------------------------------------------------------
# embed
# ------------------------------------------------------------------------------------------------


def _progress_factory(quiet: bool) -> Any:
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def make(total: int) -> Any:
        # disable=None: drawn only when stderr is a terminal, so logs and pipes stay clean
        return tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, disable=None, dynamic_ncols=True)

    return make


def _cmd_embed(args: argparse.Namespace) -> int:
    from nndex.code.chunking import CHUNKER_VERSION, ChunkOptions
    from nndex.code.engine import build, previous_settings
    from nndex.code.providers import ENV_API_URL, make_provider, provider_for_index

    directory = args.directory
    if not os.path.isdir(directory):
        raise CodeSearchError(f"not a directory: {directory}")
    previous = previous_settings(directory)
    if previous and not (args.model or args.api_url or os.environ.get(ENV_API_URL)):
        # no model named: keep the one the index was built with, so only changes are embedded
        identity = dict(previous["provider"])
        for key in ("query_prompt", "document_prompt"):
            if getattr(args, key) is not None:
                identity[key] = getattr(args, key)
        provider = provider_for_index(identity)
        if args.batch_size:
            provider.batch_size = args.batch_size
    else:
        provider = make_provider(args.model, args.api_url, batch_size=args.batch_size,
                                 query_prompt=args.query_prompt, document_prompt=args.document_prompt)
    max_chars = args.max_chars
    if max_chars is None and previous and previous.get("chunker", {}).get("version") == CHUNKER_VERSION:
        max_chars = previous["chunker"].get("max_chars")
    try:
        options = ChunkOptions(max_chars=max_chars) if max_chars else ChunkOptions()
    except ValueError as exc:
        raise CodeSearchError(str(exc)) from None
    stats = build(directory, provider, options=options, progress=_progress_factory(args.quiet), full=args.full)
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
        return 0
    if stats.full_rebuild and stats.rebuild_reason and not args.quiet:
        print(f"nndex: re-embedding everything: {stats.rebuild_reason}", file=sys.stderr)
    if stats.up_to_date:
        print(f"index is up to date: {stats.files} files, {stats.chunks} chunks ({stats.seconds:.2f} s)")
        return 0
    changes = f"{stats.files_embedded} embedded, {stats.files_unchanged} unchanged, {stats.files_removed} removed"
    print(f"files:  {stats.files} ({changes})")
    products = ", bfloat16 products" if stats.chunks_embedded and getattr(provider, "bf16", False) else ""
    print(f"chunks: {stats.chunks} ({stats.chunks_embedded} embedded, {stats.dims} dims, model {stats.model}{products})")
    if stats.chunks_embedded:
        print(
            f"speed:  {stats.chunks_per_second:.1f} chunks/s (embedding {stats.embed_seconds:.2f} s, "
            f"model load {stats.load_seconds:.2f} s)"
        )
    print(f"time:   {stats.seconds:.2f} s -> {os.path.join(directory, '.nndex')}")
    return 0


# ------------------------------------------------------------------------------------------------
# search
# ------------------------------------------------------------------------------------------------


def _display_path(directory: str, rel: str) -> str:
    return os.path.normpath(os.path.join(directory, rel)) if directory not in ("", ".") else rel


def _cmd_search(args: argparse.Namespace) -> int:
    from nndex.code.engine import Searcher

    query = " ".join(args.query).strip()
    if not query:
        raise CodeSearchError("the query is empty")
    if args.k < 1:
        raise CodeSearchError(f"-k must be at least 1, got {args.k}")
    started = time.perf_counter()
    searcher = Searcher(args.directory, api_url=args.api_url, mode=args.mode)
    hits = searcher.search(query, args.k, diverse=not args.by_score)
    if args.json:
        out = {
            "query": query,
            "root": str(searcher.root.resolve()),
            "model": searcher.stored.meta.get("model"),
            "results": [dict(h.as_dict(), path=_display_path(args.directory, h.file)) for h in hits],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        if not hits:
            print("no results")
        for h in hits:
            print(f"{_display_path(args.directory, h.file)}:{h.start_line}-{h.end_line}  (sim={h.similarity:.3f})")
            if h.preview:
                print(f"    {h.preview}")
    sys.stdout.flush()
    if args.timings:
        t = searcher.timings
        total = time.perf_counter() - started
        print(
            f"timings: open index {t.load_index * 1e3:.1f} ms, load model {t.load_model * 1e3:.1f} ms, "
            f"embed query {t.embed_query * 1e3:.1f} ms, search {t.search * 1e3:.2f} ms, total {total * 1e3:.1f} ms",
            file=sys.stderr,
        )
    return 0


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------


def _ago(iso: str) -> str:
    try:
        then = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return ""
    seconds = (datetime.now(timezone.utc) - then).total_seconds()
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f" ({n} {unit}{'s' if n != 1 else ''} ago)"
    return " (just now)"


def _cmd_info(args: argparse.Namespace) -> int:
    from nndex.code.engine import open_index
    from nndex.code.store import index_dir

    stored = open_index(args.directory)
    # the index file's checksums (which search skips) and the other files' structure: damage is named here
    stored.load_nndex(verify=True)
    stored.load_vectors(mmap=True)
    stored.load_lexical()
    meta = stored.meta
    provider = meta.get("provider", {})
    info = {
        "index": str(index_dir(args.directory)),
        "vectors": len(stored.chunks),
        "dimensions": meta.get("dims"),
        "model": meta.get("model"),
        "provider": provider.get("kind"),
        "api_url": provider.get("url"),
        "query_prompt": provider.get("query_prompt", ""),
        "document_prompt": provider.get("document_prompt", ""),
        "files": len(stored.files),
        "built_at": meta.get("built_at"),
        "build_seconds": meta.get("build_seconds"),
        "chunks_per_second": meta.get("chunks_per_second"),
        "chunker": meta.get("chunker"),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"index:      {info['index']}")
    print(f"vectors:    {info['vectors']}")
    print(f"dimensions: {info['dimensions']}")
    model = f"{info['model']} ({info['provider']}"
    model += f", {info['api_url']})" if info["api_url"] else ")"
    print(f"model:      {model}")
    for what in ("query", "document"):
        if info[f"{what}_prompt"]:
            print(f"{what} prompt: {info[f'{what}_prompt']!r}")
    print(f"files:      {info['files']}")
    print(f"built:      {info['built_at']}{_ago(info['built_at'] or '')} in {info['build_seconds']} s")
    return 0


# ------------------------------------------------------------------------------------------------
# parsers
# ------------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _set(parser: argparse.ArgumentParser, handler: Handler) -> None:
    wrapped = _guard(handler)
    # `func` for callers that dispatch on args.func, `handler` for nndex.cli
    parser.set_defaults(func=wrapped, handler=wrapped)


def add_commands(sub: Any) -> None:
    """Adds embed, search and info to an argparse subparsers object."""
    p = sub.add_parser(
        "embed",
        help="index a source tree (only changed files are re-embedded)",
        description="Walk DIR, split its files into chunks along their definitions, embed them and store "
        "the index in DIR/.nndex. Re-running re-embeds only files whose content changed.",
        epilog=_EPILOG,
    )
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the tree to index (default: .)")
    p.add_argument(
        "--model",
        metavar="NAME",
        help="local sentence-transformers model name or folder (default: the index's model, else "
        "all-MiniLM-L6-v2), or the model asked of the --api-url server",
    )
    p.add_argument("--api-url", metavar="URL", help="OpenAI-compatible server: POST URL/v1/embeddings")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="texts per embedding call")
    p.add_argument("--query-prompt", metavar="TEXT",
                   help="text put before each query, for models trained with one (E5: 'query: '); default: "
                   "the index's, else the one the local model declares, else none")
    p.add_argument("--document-prompt", metavar="TEXT",
                   help="text put before each chunk (E5: 'passage: '); changing it re-embeds everything")
    p.add_argument("--max-chars", type=_positive_int, metavar="N", help="largest chunk in characters (default: the index's setting, else 1500)")
    p.add_argument("--full", action="store_true", help="re-embed every file, not just the changed ones")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    _set(p, _cmd_embed)

    p = sub.add_parser(
        "search",
        help="search the index with a natural-language query",
        description="Embed QUERY and print the most similar chunks as FILE:START-END (sim=...), each "
        "with a preview line.",
        epilog=_EPILOG,
    )
    p.add_argument("query", nargs="+", metavar="QUERY", help="what to look for (several words may go unquoted)")
    p.add_argument("-d", "--directory", default=".", metavar="DIR", help="the indexed tree (default: .)")
    p.add_argument("-k", type=_positive_int, default=10, metavar="K", help="number of results (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--api-url", metavar="URL", help="embedding server to use instead of the one recorded in the index")
    p.add_argument("--timings", action="store_true", help="print how long each step took (stderr)")
    p.add_argument("--mode", choices=("hybrid", "dense"), default="hybrid",
                   help="hybrid (default): embeddings fused with BM25 over the code's words; dense: embeddings only")
    p.add_argument("--by-score", action="store_true",
                   help="list chunks strictly by score (default: each file's best chunk first, then the rest)")
    _set(p, _cmd_search)

    p = sub.add_parser("info", help="describe the index of a tree", description="Show what DIR/.nndex holds.")
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the indexed tree (default: .)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    _set(p, _cmd_info)


def register(subparsers: Any) -> None:
    """Adds ``code`` (with ``embed``, ``search``, ``info``) to the ``nndex`` command line."""
    parser = subparsers.add_parser(
        "code",
        help="natural-language search over a source tree",
        description="Natural-language code search: 'embed' indexes a tree, 'search' queries it, 'info' describes it.",
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="code_command", metavar="COMMAND", title="commands")
    sub.required = True
    add_commands(sub)


def build_parser(prog: str = "nndex code") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Natural-language code search: 'embed' indexes a tree, 'search' queries it, 'info' describes it.",
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="code_command", metavar="COMMAND", title="commands")
    sub.required = True
    add_commands(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nndex.code``: the same commands as ``nndex code``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))
