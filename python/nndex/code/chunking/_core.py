"""What every chunker shares: options and chunks, reading text, and turning the units a language's
parser found into chunks within the size limits (the rules are in :mod:`nndex.code.chunking`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

#: Bumped whenever chunk boundaries or the embedded text change, so stored vectors are recomputed.
CHUNKER_VERSION = 4  # 4: names spelled out in the embedded header


@dataclass(frozen=True)
class ChunkOptions:
    max_chars: int = 1500  # most characters in one chunk (the model reads ~256 tokens anyway)
    max_lines: int = 80  # most lines in one chunk
    overlap_lines: int = 3  # lines shared by consecutive windows of one oversized block
    min_chars: int = 250  # blocks smaller than this are merged with a neighbour when they fit

    def __post_init__(self) -> None:
        if self.max_chars < 80:
            raise ValueError("max_chars must be at least 80")
        if self.max_lines < 4:
            raise ValueError("max_lines must be at least 4")
        if not 0 <= self.overlap_lines < self.max_lines // 2:
            raise ValueError("overlap_lines must be in [0, max_lines / 2)")


@dataclass(frozen=True)
class Chunk:
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    kind: str  # "function", "class", "method", "code", "section", "text", ...
    name: str  # qualified name of the definition(s), "" when none
    text: str  # exactly lines start_line..end_line (cut at max_chars for a single giant line)
    part: int = 0  # k of n when one definition was split into windows; 0 otherwise
    parts: int = 0

    preview: str = ""  # the first telling line, for display


_COMMENT_STARTS = ("#", "//", "/*", "*", "@", '"""', "'''", "--", ";", "<!--")


def make_preview(text: str, language: str = "text", width: int = 120, name: str = "") -> str:
    """The line that defines ``name`` when there is one, else the first line that says something (in
    code, comment-only lines and decorators are skipped)."""
    fallback = ""
    skip_comments = language not in ("markdown", "text")
    wanted = name.split(", ")[0].rsplit(".", 1)[-1] if name else ""
    if wanted and skip_comments:
        pattern = re.compile(r"(?<![\w$])" + re.escape(wanted) + r"(?![\w$])")
        for raw in text.split("\n"):
            line = raw.strip()
            if pattern.search(line) and not line.startswith(_COMMENT_STARTS):
                fallback = " ".join(line.split())
                return fallback if len(fallback) <= width else fallback[: width - 1] + "\u2026"
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if not fallback:
            fallback = line
        if skip_comments and line.startswith(_COMMENT_STARTS) and not line.startswith(("#define", "#include", "#[")):
            continue
        fallback = line
        break
    fallback = " ".join(fallback.split())
    return fallback if len(fallback) <= width else fallback[: width - 1] + "\u2026"


# ------------------------------------------------------------------------------------------------
# Reading text
# ------------------------------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: \\r\\n, \\r and \\n end a line; a final newline adds no line."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def decode(data: bytes) -> str:
    """UTF-8 (with a BOM removed), undecodable bytes replaced."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------
# Structure: units found by a language's parser
# ------------------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One top-level node (or member of a container): lines start..end, 1-based inclusive."""

    start: int
    end: int
    kind: str  # a definition kind, "code" for other statements, "comment" / "prefix" for attachable lines
    name: str = ""
    members: Callable[[], list[Unit]] | None = field(default=None, repr=False)  # inner units, for splitting
    member_kind: str = ""  # the kind given to member definitions ("method")

    @property
    def attachable(self) -> bool:
        return self.kind in ("comment", "prefix")

    @property
    def is_code(self) -> bool:
        return self.kind == "code"


@dataclass
class _Seg:
    start: int
    end: int
    kind: str
    name: str
    unit: Unit | None = None
    part: int = 0
    parts: int = 0


def _blank(lines: Sequence[str], i: int) -> bool:
    return not lines[i - 1].strip()


def _size(lines: Sequence[str], start: int, end: int) -> int:
    return sum(len(lines[i - 1]) + 1 for i in range(start, end + 1))


def _segments(lines: Sequence[str], lo: int, hi: int, units: list[Unit]) -> list[_Seg]:
    """Definition segments (with their attached comments) and grouped code, covering lo..hi exactly."""
    units = sorted((u for u in units if u.end >= lo and u.start <= hi), key=lambda u: (u.start, u.end))
    segs: list[_Seg] = []
    pending: list[Unit] = []

    def flush_pending() -> None:
        for c in pending:
            _add_code(segs, max(c.start, lo), min(c.end, hi))
        pending.clear()

    for u in units:
        start, end = max(u.start, lo), min(u.end, hi)
        if u.attachable:
            pending.append(u)
            continue
        if u.is_code:
            flush_pending()
            _add_code(segs, start, end)
            continue
        # a definition: take the comments / attributes that end right above it
        take = 0
        edge = start
        for c in reversed(pending):
            if c.end >= edge - 1 and c.start >= lo:
                edge = min(edge, c.start)
                take += 1
            else:
                break
        if take:
            attached = pending[len(pending) - take :]
            del pending[len(pending) - take :]
            flush_pending()
            start = min(start, attached[0].start)
        else:
            flush_pending()
        if segs and segs[-1].end >= start:  # two nodes share a line: keep ranges ordered
            if segs[-1].kind == "code":
                segs[-1].end = start - 1
                if segs[-1].end < segs[-1].start:
                    segs.pop()
            else:
                start = segs[-1].end + 1
        if start <= end:
            segs.append(_Seg(start, end, u.kind, u.name, u))
    flush_pending()

    # fill the gaps: blank runs join the segment before them; anything else becomes code
    out: list[_Seg] = []
    cursor = lo
    for s in segs:
        if s.start > cursor:
            gap_blank = all(_blank(lines, i) for i in range(cursor, s.start))
            if gap_blank and out:
                out[-1].end = s.start - 1
            elif gap_blank:
                s.start = cursor
            else:
                out.append(_Seg(cursor, s.start - 1, "code", ""))
        out.append(s)
        cursor = s.end + 1
    if cursor <= hi:
        if out and all(_blank(lines, i) for i in range(cursor, hi + 1)):
            out[-1].end = hi
        else:
            out.append(_Seg(cursor, hi, "code", ""))
    return [s for s in out if s.start <= s.end]


def _add_code(segs: list[_Seg], start: int, end: int) -> None:
    if start > end:
        return
    if segs and segs[-1].kind == "code" and segs[-1].end >= start - 1:
        segs[-1].end = max(segs[-1].end, end)
        return
    if segs and segs[-1].end >= start:
        start = segs[-1].end + 1
        if start > end:
            return
    segs.append(_Seg(start, end, "code", ""))


def _fits(lines: Sequence[str], start: int, end: int, opts: ChunkOptions) -> bool:
    return end - start + 1 <= opts.max_lines and _size(lines, start, end) <= opts.max_chars


def _merge_small(lines: Sequence[str], segs: list[_Seg], opts: ChunkOptions) -> list[_Seg]:
    """Joins neighbouring code blocks, and any block smaller than min_chars, while the result fits."""
    out: list[_Seg] = []
    for s in segs:
        if out:
            prev = out[-1]
            small = _size(lines, prev.start, prev.end) < opts.min_chars or _size(lines, s.start, s.end) < opts.min_chars
            both_code = prev.kind == "code" and s.kind == "code"
            if (small or both_code) and prev.end + 1 >= s.start and _fits(lines, prev.start, s.end, opts):
                out[-1] = _join(prev, s)
                continue
        out.append(s)
    return out


def _join(a: _Seg, b: _Seg) -> _Seg:
    names = [n for n in (a.name, b.name) if n]
    if a.kind == "code":
        kind = b.kind
    elif b.kind == "code" or a.kind == b.kind:
        kind = a.kind
    else:
        kind = "definitions"
    return _Seg(a.start, max(a.end, b.end), kind, ", ".join(names))


def _windows(lines: Sequence[str], lo: int, hi: int, opts: ChunkOptions) -> list[tuple[int, int]]:
    """Overlapping windows over lo..hi that respect the limits; cuts prefer blank lines."""
    spans: list[tuple[int, int]] = []
    s = lo
    while True:
        e = s
        chars = len(lines[s - 1]) + 1
        while e < hi and e - s + 1 < opts.max_lines and chars + len(lines[e]) + 1 <= opts.max_chars:
            chars += len(lines[e]) + 1
            e += 1
        if e < hi:
            # end at a blank line in the last third of the window when there is one
            floor = s + (e - s) * 2 // 3
            for b in range(e, floor, -1):
                if _blank(lines, b) and b > s:
                    e = b
                    break
        spans.append((s, e))
        if e >= hi:
            return spans
        nxt = e - opts.overlap_lines + 1
        # never restart inside the previous window's first half: guarantees progress
        s = max(nxt, s + 1, e + 1 if e - s + 1 <= 2 * opts.overlap_lines else nxt)


_MAX_DEPTH = 8  # containers nested deeper than this are cut into windows


def _chunk_range(
    lines: Sequence[str],
    lo: int,
    hi: int,
    units: list[Unit],
    opts: ChunkOptions,
    prefix: str,
    member_kind: str,
    depth: int,
) -> list[_Seg]:
    segs = _merge_small(lines, _segments(lines, lo, hi, units), opts)
    out: list[_Seg] = []
    for s in segs:
        if prefix and s.name:
            s.name = ", ".join(prefix + n for n in s.name.split(", "))
        if member_kind and s.kind not in ("code", "definitions") and s.unit is not None:
            if s.unit.kind in ("function", "method"):
                s.kind = member_kind
        if _fits(lines, s.start, s.end, opts):
            out.append(s)
            continue
        splittable = s.unit is not None and s.unit.members is not None and depth < _MAX_DEPTH
        inner = s.unit.members() if splittable else []
        inner = [u for u in inner if s.start <= u.start and u.end <= s.end]
        if any(not u.is_code and not u.attachable for u in inner):
            # split a container along its members; its header stays with its name
            head_name = s.name
            sub = _chunk_range(lines, s.start, s.end, inner, opts, head_name + ".", s.unit.member_kind, depth + 1)
            for t in sub:
                if t.kind == "code" and not t.name:
                    t.kind, t.name = s.kind, head_name
            out.extend(sub)
            continue
        spans = _windows(lines, s.start, s.end, opts)
        n = len(spans)
        for k, (a, b) in enumerate(spans, 1):
            out.append(_Seg(a, b, s.kind, s.name, None, k if n > 1 else 0, n if n > 1 else 0))
    return out


def chunk_lines(lines: Sequence[str], units: list[Unit], opts: ChunkOptions, language: str = "text") -> list[Chunk]:
    if not lines:
        return []
    segs = _chunk_range(lines, 1, len(lines), units, opts, "", "", 0)
    chunks = []
    for s in segs:
        text = "\n".join(lines[s.start - 1 : s.end])
        if len(text) > opts.max_chars:
            text = text[: opts.max_chars]
        chunks.append(Chunk(s.start, s.end, s.kind, s.name, text, s.part, s.parts, make_preview(text, language, name=s.name)))
    return chunks


def _boundary_units(lines: Sequence[str], starts: list[tuple[int, str, str]]) -> list[Unit]:
    """Units from definition start lines: each runs to the last non-blank line before the next start."""
    units = []
    for k, (start, kind, name) in enumerate(starts):
        nxt = starts[k + 1][0] if k + 1 < len(starts) else len(lines) + 1
        end = nxt - 1
        while end > start and _blank(lines, end):
            end -= 1
        units.append(Unit(start, end, kind, name))
    return units
