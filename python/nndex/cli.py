"""The ``nndex`` command line (also ``python -m nndex``).

Commands::

    nndex build DATA -o INDEX [--key K] [--normalized] [--storage {f32,bf16,int8}]
                [--approx [graph|ivf] [--recall R | --nprobe N | --ef N] [--nlist N]]
    nndex search INDEX QUERIES -k K [-o OUT] [--key K] [--nprobe N | --ef N] [--oversampling F]
    nndex info INDEX [--json]

DATA and QUERIES are .npy, .npz or .parquet files (see :meth:`nndex.NNdex.from_file`). ``search``
writes OUT by its extension:

* ``.npz``: arrays ``indices`` (int64, queries x k) and ``similarities`` (float32, queries x k);
* ``.npy``: one structured array of shape (queries, k) with fields ``index`` (int64) and
  ``similarity`` (float32), so both travel in one file (``np.load(p)["index"]``);
* ``.parquet``: one row per query: ``query`` (int64), ``indices`` (list<int64>), ``similarities``
  (list<float32>);
* ``.csv`` (or no ``-o``, or ``-o -``: standard output): ``query,rank,index,similarity``, one line per
  neighbour, rank counting from 1.

Progress bars (tqdm, on stderr, only when it is a terminal) show long loads and builds; ``--quiet``
hides them and the summary lines. Any error ends the command with exit status 1 and one line,
``nndex: error: ...``, on stderr (no traceback unless NNDEX_DEBUG=1); usage errors exit with 2 and
Ctrl-C with 130.

Extending: a module adds commands with a function ``register(subparsers)`` that calls
:func:`add_command` (or ``subparsers.add_parser`` and ``set_defaults(handler=...)``). A handler takes the
parsed ``argparse.Namespace`` and returns an exit status (None means 0); raising :class:`CommandError`
(or any exception) prints the one-line error. The modules named in :data:`PLUGINS` are imported when
present; ``main(argv, extra=[register])`` adds more.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

Handler = Callable[[argparse.Namespace], Optional[int]]
Registrar = Callable[[Any], None]

# Subcommand name -> module with a register(subparsers) function, imported only if it exists.
PLUGINS = {"code": "nndex.code.cli"}

OUTPUT_FORMATS = (".npz", ".npy", ".parquet", ".csv")


class CommandError(Exception):
    """A user-facing error: main() prints ``nndex: error: <message>`` and exits with status 1."""


def add_command(subparsers: Any, name: str, handler: Handler, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Adds subcommand ``name`` (with the common ``-q/--quiet`` option) that runs ``handler(args)``."""
    parser = subparsers.add_parser(name, help=help, description=kwargs.pop("description", help), **kwargs)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary lines")
    parser.set_defaults(handler=handler)
    return parser


# ------------------------------------------------------------------------------------------------
# build
# ------------------------------------------------------------------------------------------------


def _register_build(subparsers: Any) -> None:
    p = add_command(subparsers, "build", _cmd_build, "build an index from a .npy/.npz/.parquet matrix and save it")
    p.add_argument("data", metavar="DATA", help="matrix file: .npy, .npz or .parquet")
    p.add_argument("-o", "--output", required=True, metavar="INDEX", help="index file to write")
    p.add_argument("--key", help="array (.npz) or column (.parquet) to read; default: the only one")
    p.add_argument("--normalized", action="store_true", help="score raw dot products (rows are not normalised)")
    p.add_argument(
        "--approx",
        nargs="?",
        const="auto",
        choices=("auto", "graph", "ivf"),
        help="approximate index: a graph (the default choice) or IVF",
    )
    p.add_argument(
        "--storage",
        choices=("f32", "bf16", "int8"),
        default="f32",
        help="how rows are stored: f32 (default), or bf16 / int8 scanned compressed and re-scored exactly "
        "in float32",
    )
    p.add_argument("--recall", type=float, metavar="R", help="(approx) target recall@10 that calibrates nprobe or ef")
    p.add_argument("--nlist", type=int, metavar="N", help="(IVF) number of clusters")
    p.add_argument("--nprobe", type=int, metavar="N", help="(IVF) clusters probed per query")
    p.add_argument("--ef", type=int, metavar="N", help="(graph) candidates the walk keeps per query")
    p.add_argument("--seed", type=int, metavar="S", help="(approx) k-means seed")
    p.add_argument("--threads", type=int, metavar="T", help="threads to use (default: every core)")


def _cmd_build(args: argparse.Namespace) -> int:
    from nndex import NNdex
    from nndex._io import load_matrix
    from nndex._progress import bar_factory, spinner

    if not args.approx and any(getattr(args, n) is not None for n in ("recall", "nlist", "nprobe", "ef")):
        raise CommandError("--recall, --nlist, --nprobe and --ef need --approx")
    show = not args.quiet
    bars = None if show else False  # on a terminal only, unless --quiet
    start = time.perf_counter()
    data = load_matrix(args.data, args.key, progress=bar_factory(bars))
    approx = {None: False, "auto": True}.get(args.approx, args.approx)  # True: the automatic choice
    options = {"normalized": args.normalized, "approx": approx, "storage": args.storage, "enable_cache": False}
    for name in ("recall", "nlist", "nprobe", "ef", "seed", "threads"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    try:
        with spinner("building index", enabled=bars):
            # As NNdex.from_file: bf16/int8 over a mapped .npy re-score from the file, not a copy.
            index = NNdex._from_loaded(data, os.fspath(args.data), **options)
    except ValueError as exc:
        raise CommandError(f"'{args.data}': {exc}") from None
    with spinner("saving", enabled=bars):
        index.save(args.output)
    if show:
        if index.method == "graph":
            kind = f"an approximate graph index (ef={index.ef})"
        elif index._index.uses_ivf:
            kind = f"an approximate index (nlist={index.nlist}, nprobe={index.nprobe})"
        elif args.approx:
            kind = "an exact index (too few rows for an approximate one)"
        else:
            kind = "an exact index"
        if index.storage != "f32":
            kind += f" ({index.storage} storage)"
        size = os.path.getsize(args.output)
        _note(
            f"built {kind} of {index.rows} x {index.dims} in {time.perf_counter() - start:.2f} s: "
            f"{args.output} ({_human(size)})"
        )
    return 0


# ------------------------------------------------------------------------------------------------
# search
# ------------------------------------------------------------------------------------------------


def _register_search(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "search",
        _cmd_search,
        "search an index with queries from a file",
        description="Search INDEX with every row of QUERIES. OUT's extension picks the format: .npz "
        "(indices, similarities), .npy (structured: index, similarity), .parquet (query, indices, "
        "similarities) or .csv (query,rank,index,similarity); without -o, CSV goes to standard output.",
    )
    p.add_argument("index", metavar="INDEX", help="index file written by 'nndex build' or NNdex.save")
    p.add_argument("queries", metavar="QUERIES", help="query matrix: .npy, .npz or .parquet (one query per row)")
    p.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (.npz, .npy, .parquet, .csv); default: CSV on stdout")
    p.add_argument("--key", help="array (.npz) or column (.parquet) of QUERIES to read")
    p.add_argument("--nprobe", type=int, metavar="N", help="(IVF) clusters probed per query")
    p.add_argument("--ef", type=int, metavar="N", help="(graph) candidates the walk keeps per query")
    p.add_argument(
        "--oversampling",
        type=float,
        metavar="F",
        help="(bf16/int8 storage) candidates re-scored per result, ceil(k * F); default 1.5 for bf16, 2 for int8 (at least k + 8)",
    )
    p.add_argument("--threads", type=int, metavar="T", help="threads to use (default: every core)")
    p.add_argument("--no-mmap", dest="mmap", action="store_false", help="read the index into memory instead of mapping it")


_SEARCH_BATCH = 4096


def _cmd_search(args: argparse.Namespace) -> int:
    from nndex import NNdex
    from nndex._io import load_matrix
    from nndex._progress import bar_factory

    out = args.output if args.output not in (None, "-") else None
    ext = os.path.splitext(out)[1].lower() if out else ".csv"
    if ext not in OUTPUT_FORMATS:
        raise CommandError(f"unsupported output extension {ext or '(none)'!r} for '{out}', expected one of: "
                           + ", ".join(OUTPUT_FORMATS))
    if args.k < 1:
        raise CommandError(f"-k must be at least 1, got {args.k}")
    show = not args.quiet
    bars = None if show else False
    index = NNdex.load(args.index, mmap=args.mmap, threads=args.threads, enable_cache=False)
    queries = load_matrix(args.queries, args.key, progress=bar_factory(bars))
    if queries.ndim == 1:
        queries = queries.reshape(1, -1)
    if queries.shape[1] != index.dims:
        raise CommandError(
            f"'{args.queries}': queries have {queries.shape[1]} dims but the index has {index.dims}"
        )
    n = queries.shape[0]
    kk = min(args.k, index.rows)
    ids = np.empty((n, kk), dtype=np.int64)
    sims = np.empty((n, kk), dtype=np.float32)
    bar = bar_factory(bars if n > _SEARCH_BATCH else False)(n, "searching")
    start = time.perf_counter()
    try:
        for begin in range(0, n, _SEARCH_BATCH):
            end = min(n, begin + _SEARCH_BATCH)
            try:
                ids[begin:end], sims[begin:end] = index.search(
                    queries[begin:end], k=args.k, nprobe=args.nprobe, oversampling=args.oversampling, ef=args.ef
                )
            except ValueError as exc:
                raise CommandError(f"'{args.queries}': {exc}") from None
            bar.update(end - begin)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    _write_results(out, ext, ids, sims)
    if show and out is not None:
        _note(f"searched {n} queries (k={kk}) in {elapsed:.2f} s: {out}")
    return 0


def _write_results(out: Optional[str], ext: str, ids: np.ndarray, sims: np.ndarray) -> None:
    if out is None:
        _write_csv(sys.stdout, ids, sims)
        sys.stdout.flush()
        return
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".nndex-", suffix=ext, dir=folder)
    try:
        with os.fdopen(fd, "w" if ext == ".csv" else "wb") as f:
            if ext == ".npz":
                np.savez(f, indices=ids, similarities=sims)
            elif ext == ".npy":
                table = np.empty(ids.shape, dtype=[("index", "<i8"), ("similarity", "<f4")])
                table["index"] = ids
                table["similarity"] = sims
                np.save(f, table)
            elif ext == ".parquet":
                _write_parquet(f, ids, sims)
            else:
                _write_csv(f, ids, sims)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_csv(f: Any, ids: np.ndarray, sims: np.ndarray) -> None:
    n, k = ids.shape
    f.write("query,rank,index,similarity\n")
    if n == 0 or k == 0:
        return
    query = np.repeat(np.arange(n, dtype=np.int64), k)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int64), n)
    # Written in slices so that the text of a huge result is never built at once.
    step = 65536
    flat_ids = ids.reshape(-1)
    flat_sims = sims.reshape(-1)
    for begin in range(0, n * k, step):
        end = min(n * k, begin + step)
        lines = [
            f"{q},{r},{i},{s:.9g}"  # 9 significant digits: every float32 reads back exactly
            for q, r, i, s in zip(
                query[begin:end].tolist(), rank[begin:end].tolist(), flat_ids[begin:end].tolist(),
                flat_sims[begin:end].tolist(),
            )
        ]
        f.write("\n".join(lines))
        f.write("\n")


def _write_parquet(f: Any, ids: np.ndarray, sims: np.ndarray) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CommandError("writing .parquet needs pyarrow (pip install pyarrow)") from None
    n, k = ids.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32)[: n + 1])
    table = pa.table(
        {
            "query": pa.array(np.arange(n, dtype=np.int64)),
            "indices": pa.ListArray.from_arrays(offsets, pa.array(ids.reshape(-1))),
            "similarities": pa.ListArray.from_arrays(offsets, pa.array(sims.reshape(-1))),
        }
    )
    pq.write_table(table, f)


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------


def _register_info(subparsers: Any) -> None:
    p = add_command(subparsers, "info", _cmd_info, "describe an index file")
    p.add_argument("index", metavar="INDEX", help="index file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_info(args: argparse.Namespace) -> int:
    import nndex
    from nndex import NNdex

    index = NNdex.load(args.index, mmap=True, enable_cache=False)
    facts = {
        "path": os.fspath(args.index),
        "rows": index.rows,
        "dims": index.dims,
        "normalized": index.normalized,
        "approx": index.approx,
        "storage": index.storage,
        "ivf": bool(index._index.uses_ivf),
        "method": index.method,
        "ef": index.ef,
        "nlist": index.nlist,
        "nprobe": index.nprobe,
        "segments": index.segments,
        "removed_rows": index.removed_rows,
        "next_id": index.next_id,
        "file_bytes": os.path.getsize(args.index),
        "memory_bytes": index.memory_bytes,
        "isa": index.isa,
        "threads": index.threads,
        "nndex_version": nndex.__version__,
    }
    if args.json:
        print(json.dumps(facts))
        return 0
    width = max(len(k) for k in facts)
    for name, value in facts.items():
        if name.endswith("_bytes"):
            value = f"{value} ({_human(value)})"
        print(f"{name:<{width}}  {value}")
    return 0


# ------------------------------------------------------------------------------------------------
# parser and entry point
# ------------------------------------------------------------------------------------------------

BUILTIN_COMMANDS: tuple[Registrar, ...] = (_register_build, _register_search, _register_info)


def _register_unavailable(subparsers: Any, name: str, module: str, exc: BaseException) -> None:
    reason = _one_line(exc)

    def unavailable(args: argparse.Namespace) -> int:
        raise CommandError(f"'nndex {name}' is unavailable: {module} failed to load: {reason}")

    # No option prefix: whatever follows the command name lands in `rest`, and the handler explains.
    parser = subparsers.add_parser(name, help=f"(unavailable: {reason})", add_help=False, prefix_chars="\0")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=unavailable)


def _register_plugins(subparsers: Any) -> None:
    for name, module_name in PLUGINS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                continue  # the plugin is not part of this installation
            _register_unavailable(subparsers, name, module_name, exc)
            continue
        except Exception as exc:
            _register_unavailable(subparsers, name, module_name, exc)
            continue
        register = getattr(module, "register", None)
        if not callable(register):
            continue
        try:
            register(subparsers)
        except Exception as exc:
            if name not in subparsers.choices:
                _register_unavailable(subparsers, name, module_name, exc)


def build_parser(extra: Iterable[Registrar] = ()) -> argparse.ArgumentParser:
    """The ``nndex`` argument parser: built-in commands, installed plugins, then ``extra`` registrars."""
    import nndex

    parser = argparse.ArgumentParser(
        prog="nndex",
        description="Build, search and inspect nndex nearest-neighbour indexes.",
    )
    parser.add_argument("--version", action="version", version=f"nndex {nndex.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    for register in BUILTIN_COMMANDS:
        register(subparsers)
    _register_plugins(subparsers)
    for register in extra:
        register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None, extra: Iterable[Registrar] = ()) -> int:
    """Runs the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("NNDEX_DEBUG"):
            raise
        _error(_describe(exc))
        return 1
    return int(status or 0)


def _describe(exc: BaseException) -> str:
    """The text after ``nndex: error: ``: one program name (native messages may carry their own
    ``nndex: `` prefix, removed here) and the file named once."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        reason = _without_prefix(" ".join(str(exc.strerror).split()))
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes, os.PathLike)) else str(exc.filename)
        return reason if name in reason else f"'{name}': {reason}"
    if isinstance(exc, (CommandError, ValueError, OSError)):
        return _without_prefix(_one_line(exc))
    return f"{type(exc).__name__}: {_without_prefix(_one_line(exc))}"


_PROGRAM_PREFIX = "nndex: "


def _without_prefix(text: str) -> str:
    while text.startswith(_PROGRAM_PREFIX):
        text = text[len(_PROGRAM_PREFIX) :]
    return text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _error(message: str) -> None:
    print(f"nndex: error: {message}", file=sys.stderr, flush=True)


def _note(message: str) -> None:
    print(f"nndex: {message}", file=sys.stderr, flush=True)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
