"""Finding the source files of a tree: a sorted recursive walk that honours .gitignore files.

Skipped: hidden entries (names starting with "."), version-control and cache folders, virtual
environments (any folder holding a ``pyvenv.cfg``), the index folder ``.nndex``, paths ignored by a
``.gitignore`` at any level (negation included, matched by ``pathspec``'s gitignore rules) or by
``.git/info/exclude``, symbolic links to folders, binaries (by extension, or by a NUL byte in the
first 8 KiB), files that cannot be read, and files larger than ``max_bytes``. When the root lies
inside a git work tree, the ``.gitignore`` files of the folders above it (up to the work tree's top)
apply too, as they would for git.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from nndex.code.errors import CodeSearchError

INDEX_DIR_NAME = ".nndex"

#: Folder names never descended into (hidden ones are skipped anyway).
SKIP_DIR_NAMES = frozenset(
    {
        "node_modules",
        "__pycache__",
        "__pypackages__",
        "bower_components",
        "site-packages",
    }
)

#: Extensions of files that are binary (or not worth reading as text), lower case without the dot.
BINARY_EXTENSIONS = frozenset(
    """
    png jpg jpeg gif bmp tif tiff ico icns webp avif heic psd xcf svgz
    mp3 wav flac ogg oga opus m4a aac wma aiff mid midi
    mp4 m4v mkv mov avi wmv webm flv mpg mpeg 3gp
    zip tar gz tgz bz2 tbz xz txz lz lzma zst 7z rar jar war ear whl egg apk ipa deb rpm dmg iso img cab msi
    exe dll so dylib a lib o obj ko elf bin out class pyc pyo pyd wasm
    pdf doc docx xls xlsx ppt pptx odt ods odp rtf epub mobi
    ttf otf woff woff2 eot
    sqlite sqlite3 db mdb accdb dbf
    parquet arrow feather orc avro npy npz pkl pickle joblib h5 hdf5 nc mat
    safetensors gguf ggml onnx pt pth ckpt tflite pb caffemodel
    nndex
    """.split()
)

#: Bytes read from the start of each file to detect binaries.
SNIFF_BYTES = 8192

#: Files larger than this are skipped by default (generated data, bundles, dumps).
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def _require_pathspec() -> Any:
    try:
        import pathspec
    except ImportError:
        raise CodeSearchError(
            "nndex code needs the 'pathspec' package for .gitignore rules: pip install 'nndex[code]'"
        ) from None
    return pathspec


@dataclass(frozen=True)
class _IgnoreRules:
    """The patterns of one ignore file, anchored at the folder ``base`` (posix, relative to the root; '' for the root)."""

    base: str
    patterns: tuple[Any, ...]
    prefix: str = ""  # for an ignore file above the root: the root's path below that file's folder, with "/"

    def decide(self, rel: str, is_dir: bool) -> bool | None:
        """True (ignored), False (re-included by a ``!`` pattern) or None (no pattern matches); the last match wins."""
        if self.base:
            base = self.base + "/"
            if not rel.startswith(base):
                return None
            rel = rel[len(base) :]
        candidate = self.prefix + rel + ("/" if is_dir else "")
        verdict = None
        for pattern in self.patterns:
            if pattern.include is not None and pattern.match_file(candidate) is not None:
                verdict = bool(pattern.include)
        return verdict


def _read_rules(path: Path, base: str, prefix: str = "") -> _IgnoreRules | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    pathspec = _require_pathspec()
    spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
    patterns = tuple(p for p in spec.patterns if p.include is not None)
    return _IgnoreRules(base, patterns, prefix) if patterns else None


def _enclosing_rules(root: Path) -> list[_IgnoreRules]:
    """When ``root`` lies inside a git work tree: the ignore files of the folders from the work tree's
    top down to root's parent, and the work tree's .git/info/exclude, outermost first."""
    try:
        resolved = root.resolve()
    except OSError:
        return []
    chain = [resolved, *resolved.parents]
    top = next((d for d in chain if (d / ".git").exists()), None)
    if top is None:
        return []
    rules: list[_IgnoreRules] = []
    exclude = top / ".git" / "info" / "exclude"
    below_top = resolved.relative_to(top).as_posix()
    prefix_of = lambda d: (resolved.relative_to(d).as_posix() + "/") if d != resolved else ""  # noqa: E731
    if exclude.is_file():
        found = _read_rules(exclude, "", prefix_of(top) if below_top != "." else "")
        if found:
            rules.append(found)
    for folder in reversed(chain[1 : chain.index(top) + 1]):
        gitignore = folder / ".gitignore"
        if gitignore.is_file():
            found = _read_rules(gitignore, "", prefix_of(folder))
            if found:
                rules.append(found)
    return rules


def _ignored(rules: list[_IgnoreRules], rel: str, is_dir: bool) -> bool:
    # Deeper ignore files take precedence over shallower ones (as in git).
    for rule in reversed(rules):
        verdict = rule.decide(rel, is_dir)
        if verdict is not None:
            return verdict
    return False


def is_binary_name(name: str) -> bool:
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in BINARY_EXTENSIONS


def looks_binary(head: bytes) -> bool:
    """A NUL byte in the first bytes marks a binary (UTF-16 text counts as binary too)."""
    return b"\x00" in head[:SNIFF_BYTES]


def is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


@dataclass
class DiscoveryReport:
    """What a walk found, and how many entries it skipped for which reason."""

    files: list[str] = field(default_factory=list)  # posix paths relative to the root, sorted
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _scandir_sorted(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return []
    entries.sort(key=lambda e: e.name)
    return entries


def discover(root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> DiscoveryReport:
    """Walks ``root`` and returns the text files worth indexing, as sorted posix paths relative to it.

    The order is the sorted order of full relative paths (``a/b.py`` before ``a_c.py``), so results do
    not depend on the file system's listing order.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise CodeSearchError(f"not a directory: {root}")
    report = DiscoveryReport()
    rules = _enclosing_rules(root_path)
    for rel in _walk(root_path, "", rules, report, max_bytes):
        report.files.append(rel)
    report.files.sort()
    return report


def _walk(
    directory: Path, rel_dir: str, rules: list[_IgnoreRules], report: DiscoveryReport, max_bytes: int
) -> Iterator[str]:
    pushed = False
    gitignore = directory / ".gitignore"
    if gitignore.is_file():
        found = _read_rules(gitignore, rel_dir)
        if found:
            rules.append(found)
            pushed = True
    try:
        for entry in _scandir_sorted(directory):
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name.startswith("."):
                report.skip("hidden")
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=not is_link)
                is_file = not is_dir and entry.is_file()
            except OSError:
                report.skip("unreadable")
                continue
            if is_dir:
                if is_link:
                    report.skip("symlinked folder")
                    continue
                if name in SKIP_DIR_NAMES or is_virtualenv(Path(entry.path)):
                    report.skip("excluded folder")
                    continue
                if _ignored(rules, rel, True):
                    report.skip("gitignored")
                    continue
                yield from _walk(Path(entry.path), rel, rules, report, max_bytes)
                continue
            if not is_file:
                report.skip("not a regular file")
                continue
            if _ignored(rules, rel, False):
                report.skip("gitignored")
                continue
            if is_binary_name(name):
                report.skip("binary")
                continue
            try:
                st = os.stat(entry.path)  # follows a symlinked file
            except OSError:
                report.skip("unreadable")
                continue
            if not stat.S_ISREG(st.st_mode):
                report.skip("not a regular file")
                continue
            if st.st_size > max_bytes:
                report.skip("too large")
                continue
            try:
                with open(entry.path, "rb") as fh:
                    head = fh.read(SNIFF_BYTES)
            except OSError:
                report.skip("unreadable")
                continue
            if looks_binary(head):
                report.skip("binary")
                continue
            yield rel
    finally:
        if pushed:
            rules.pop()
