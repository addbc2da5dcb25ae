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

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

#: Bumped whenever chunk boundaries or the embedded text change, so stored vectors are recomputed.
CHUNKER_VERSION = 3


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


# ------------------------------------------------------------------------------------------------
# Python (ast)
# ------------------------------------------------------------------------------------------------

_PY_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _py_units(nodes: list[ast.stmt], lines: Sequence[str], lo: int, hi: int, in_class: bool) -> list[Unit]:
    units: list[Unit] = []
    covered: list[tuple[int, int]] = []
    for node in nodes:
        start = node.lineno
        if isinstance(node, _PY_DEFS) and node.decorator_list:
            start = min([start] + [d.lineno for d in node.decorator_list])
        end = getattr(node, "end_lineno", None) or node.lineno
        covered.append((start, end))
        if isinstance(node, ast.ClassDef):
            units.append(
                Unit(
                    start,
                    end,
                    "class",
                    node.name,
                    members=lambda node=node: _py_units(node.body, lines, node.lineno, node.end_lineno or node.lineno, True),
                    member_kind="method",
                )
            )
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            units.append(Unit(start, end, "method" if in_class else "function", node.name))
        elif end > start + 1 and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            units.append(Unit(start, end, "block", _py_stmt_name(node)))
        else:
            units.append(Unit(start, end, "code"))
    # comment-only lines outside every statement, as runs that can attach to the next definition
    covered.sort()
    inside = set()
    for a, b in covered:
        inside.update(range(a, b + 1))
    run_start = None
    for i in range(lo, hi + 2):
        is_comment = i <= hi and i not in inside and lines[i - 1].lstrip().startswith("#")
        if is_comment and run_start is None:
            run_start = i
        elif not is_comment and run_start is not None:
            units.append(Unit(run_start, i - 1, "comment"))
            run_start = None
    return units


def _py_stmt_name(node: ast.stmt) -> str:
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        return ", ".join(names)
    return ""


def python_units(text: str, lines: Sequence[str]) -> list[Unit] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return _py_units(tree.body, lines, 1, len(lines), False)


# ------------------------------------------------------------------------------------------------
# Markdown and regular-expression fallbacks
# ------------------------------------------------------------------------------------------------


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


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_units(lines: Sequence[str]) -> list[Unit]:
    starts: list[tuple[int, str, str]] = []
    fence = None
    for i, line in enumerate(lines, 1):
        m = _MD_FENCE.match(line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence:
            continue
        h = _MD_HEADING.match(line)
        if h:
            starts.append((i, "section", h.group(2)))
    return _boundary_units(lines, starts)


_IDENT = r"[A-Za-z_$][\w$]*"
_REGEX_DEFS: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "python": [(re.compile(rf"^(?:async\s+)?def\s+({_IDENT})"), "function"), (re.compile(rf"^class\s+({_IDENT})"), "class")],
    "javascript": [
        (re.compile(rf"^(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*({_IDENT})"), "function"),
        (re.compile(rf"^(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+({_IDENT})"), "class"),
        (re.compile(rf"^(?:export\s+)?(?:const|let|var)\s+({_IDENT})\s*=\s*(?:async\s*)?(?:function|\(|{_IDENT}\s*=>)"), "function"),
        (re.compile(rf"^(?:export\s+)?(?:declare\s+)?(?:interface|type|enum|namespace)\s+({_IDENT})"), "type"),
    ],
    "go": [
        (re.compile(rf"^func\s+(?:\([^)]*\)\s*)?({_IDENT})"), "function"),
        (re.compile(rf"^type\s+({_IDENT})"), "type"),
    ],
    "rust": [
        (re.compile(rf"^(?:pub(?:\([^)]*\))?\s+)?(?:const\s+|async\s+|unsafe\s+|extern\s+\"[^\"]*\"\s+)*fn\s+({_IDENT})"), "function"),
        (re.compile(rf"^(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|union|trait|mod|type)\s+({_IDENT})"), "type"),
        (re.compile(r"^(?:unsafe\s+)?impl\b(?:<[^>]*>)?\s*(.*?)\s*\{?\s*$"), "impl"),
        (re.compile(rf"^macro_rules!\s*({_IDENT})"), "macro"),
    ],
    "c": [
        (re.compile(rf"^(?:(?:static|inline|extern|virtual|constexpr|const|unsigned|signed|struct|enum)\s+)*[A-Za-z_][\w:<>,\s\*&]*?[\s\*&]({_IDENT}(?:::~?{_IDENT})*)\s*\([^;]*$"), "function"),
        (re.compile(rf"^(?:typedef\s+)?(?:struct|class|union|enum)\s+({_IDENT})[^;]*$"), "type"),
        (re.compile(rf"^namespace\s+({_IDENT})"), "namespace"),
    ],
    "java": [
        (re.compile(rf"^(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed)\s+)*(?:class|interface|enum|record|@interface)\s+({_IDENT})"), "class"),
        (re.compile(rf"^\s{{2,8}}(?:(?:public|protected|private|abstract|final|static|synchronized|native|default)\s+)+[\w<>\[\],\s]+?\s({_IDENT})\s*\("), "method"),
    ],
}


def regex_units(lines: Sequence[str], language: str) -> list[Unit]:
    patterns = _REGEX_DEFS.get(language)
    if not patterns:
        return []
    starts: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines, 1):
        if not line or len(line) > 400 or (line[0].isspace() and language != "java"):
            continue
        for pattern, kind in patterns:
            m = pattern.match(line)
            if m:
                starts.append((i, kind, m.group(1).strip()))
                break
    # comments right above a definition start with it
    out = []
    for start, kind, name in starts:
        s = start
        while s > 1 and lines[s - 2].lstrip().startswith(("//", "/*", "*", "#[", "#", "@")) and (
            not out or s - 1 > out[-1][0]
        ):
            s -= 1
        out.append((s, kind, name))
    return _boundary_units(lines, out)


# ------------------------------------------------------------------------------------------------
# tree-sitter
# ------------------------------------------------------------------------------------------------

# extension -> (language key, grammar module, function returning the language pointer)
_TS_GRAMMARS: dict[str, tuple[str, str, str]] = {}
for _ext in ("js", "mjs", "cjs", "jsx"):
    _TS_GRAMMARS[_ext] = ("javascript", "tree_sitter_javascript", "language")
for _ext in ("ts", "mts", "cts"):
    _TS_GRAMMARS[_ext] = ("typescript", "tree_sitter_typescript", "language_typescript")
_TS_GRAMMARS["tsx"] = ("tsx", "tree_sitter_typescript", "language_tsx")
_TS_GRAMMARS["go"] = ("go", "tree_sitter_go", "language")
_TS_GRAMMARS["rs"] = ("rust", "tree_sitter_rust", "language")
_TS_GRAMMARS["c"] = ("c", "tree_sitter_c", "language")
for _ext in ("h", "cc", "cpp", "cxx", "c++", "hpp", "hh", "hxx", "h++", "ipp", "inl", "tpp", "cu", "cuh"):
    _TS_GRAMMARS[_ext] = ("cpp", "tree_sitter_cpp", "language")
_TS_GRAMMARS["java"] = ("java", "tree_sitter_java", "language")

_REGEX_LANGUAGE = {
    "javascript": "javascript",
    "typescript": "javascript",
    "tsx": "javascript",
    "go": "go",
    "rust": "rust",
    "c": "c",
    "cpp": "c",
    "java": "java",
}

_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_PREFIX_TYPES = frozenset({"attribute_item", "inner_attribute_item", "decorator", "marker_annotation", "annotation"})
_IMPORT_TYPES = frozenset(
    {
        "import_statement",
        "import_declaration",
        "use_declaration",
        "extern_crate_declaration",
        "package_clause",
        "package_declaration",
        "preproc_include",
        "using_declaration",
    }
)
_KINDS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "function_definition": "function",
    "function_item": "function",
    "function_signature_item": "function",
    "method_declaration": "method",
    "method_definition": "method",
    "constructor_declaration": "method",
    "class_declaration": "class",
    "abstract_class_declaration": "class",
    "class_specifier": "class",
    "class": "class",
    "struct_specifier": "struct",
    "struct_item": "struct",
    "union_specifier": "union",
    "union_item": "union",
    "enum_declaration": "enum",
    "enum_specifier": "enum",
    "enum_item": "enum",
    "interface_declaration": "interface",
    "record_declaration": "record",
    "annotation_type_declaration": "interface",
    "trait_item": "trait",
    "impl_item": "impl",
    "mod_item": "module",
    "namespace_definition": "namespace",
    "internal_module": "namespace",
    "module": "namespace",
    "type_alias_declaration": "type",
    "type_item": "type",
    "type_declaration": "type",
    "type_definition": "type",
    "macro_definition": "macro",
    "preproc_function_def": "macro",
}
# nodes whose inner nodes are split out when the whole is too large
_CONTAINERS = frozenset(
    {
        "class_declaration",
        "abstract_class_declaration",
        "class_specifier",
        "struct_specifier",
        "class",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "trait_item",
        "impl_item",
        "mod_item",
        "namespace_definition",
        "internal_module",
        "module",
        "linkage_specification",
        "export_statement",
        "ambient_declaration",
        "template_declaration",
        "preproc_ifdef",
        "preproc_if",
        "preproc_else",
        "preproc_elif",
        "declaration",
        "lexical_declaration",
        "type_definition",
    }
)
_BODY_TYPES = frozenset(
    {
        "class_body",
        "declaration_list",
        "field_declaration_list",
        "interface_body",
        "enum_body",
        "statement_block",
        "object_type",
        "enum_body_declarations",
    }
)

_PARSERS: dict[str, Any] = {}


def _ts_parser(language: str, module_name: str, function: str) -> Any:
    if language in _PARSERS:
        return _PARSERS[language]
    parser = None
    try:
        import importlib

        from tree_sitter import Language, Parser

        module = importlib.import_module(module_name)
        lang = Language(getattr(module, function)())
        parser = Parser(lang)
    except Exception:  # grammar missing or incompatible: fall back to regular expressions
        parser = None
    _PARSERS[language] = parser
    return parser


def tree_sitter_available(ext: str) -> bool:
    spec = _TS_GRAMMARS.get(ext.lower())
    return bool(spec) and _ts_parser(*spec) is not None


def _node_lines(node: Any) -> tuple[int, int]:
    start = node.start_point[0]
    end_row, end_col = node.end_point
    if end_col == 0 and end_row > start:
        end_row -= 1
    return start + 1, end_row + 1


def _text(node: Any) -> str:
    raw = node.text
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _ts_name(node: Any, depth: int = 0) -> str:
    if depth > 4 or node is None:
        return ""
    n = node.child_by_field_name("name")
    if n is not None:
        return " ".join(_text(n).split())
    if node.type == "impl_item":
        typ = node.child_by_field_name("type")
        trait = node.child_by_field_name("trait")
        if typ is not None:
            return f"{_text(trait)} for {_text(typ)}" if trait is not None else _text(typ)
    d = node.child_by_field_name("declarator")
    hops = 0
    while d is not None and hops < 6:
        if d.type in ("identifier", "field_identifier", "qualified_identifier", "operator_name", "destructor_name", "type_identifier"):
            return " ".join(_text(d).split())
        d = d.child_by_field_name("declarator") or d.child_by_field_name("name")
        hops += 1
    dec = node.child_by_field_name("declaration")
    if dec is not None:
        return _ts_name(dec, depth + 1)
    for c in node.named_children:
        if c.type in ("variable_declarator", "type_spec", "const_spec", "var_spec", "init_declarator", "type_alias"):
            return _ts_name(c, depth + 1)
        if node.type in ("template_declaration", "ambient_declaration", "export_statement", "type_definition") and (
            c.type in _KINDS or c.type in _CONTAINERS
        ):
            name = _ts_name(c, depth + 1)
            if name:
                return name
    return ""


def _ts_kind(node: Any, depth: int = 0) -> str:
    kind = _KINDS.get(node.type)
    if kind:
        return kind
    if depth < 3 and node.type in ("export_statement", "template_declaration", "ambient_declaration", "declaration", "type_definition", "lexical_declaration"):
        for c in node.named_children:
            inner = _ts_kind(c, depth + 1)
            if inner != "block":
                return inner
        if node.type == "lexical_declaration":
            for c in node.named_children:
                value = c.child_by_field_name("value") if c.type == "variable_declarator" else None
                if value is not None and value.type in ("arrow_function", "function_expression", "function"):
                    return "function"
    if node.type in ("variable_declarator",):
        value = node.child_by_field_name("value")
        if value is not None:
            return _ts_kind(value, depth + 1)
    if node.type in ("arrow_function", "function_expression", "function"):
        return "function"
    if node.type == "class":
        return "class"
    return "block"


def _ts_members(node: Any) -> list[Any]:
    """The inner nodes a container is split along, or [] when it has none."""
    cur = node
    for _ in range(4):
        if cur.type.startswith("preproc_"):
            first = cur.start_point[0]
            return [c for c in cur.named_children if c.start_point[0] > first]
        body = cur.child_by_field_name("body")
        if body is not None and (body.type in _BODY_TYPES or cur.type in _CONTAINERS):
            if body.type in _BODY_TYPES or body.named_child_count > 1:
                return list(body.named_children)
            cur = body
            continue
        nxt = None
        for f in ("declaration", "value", "type"):
            c = cur.child_by_field_name(f)
            if c is not None and c.type in _CONTAINERS | _BODY_TYPES | {"class", "object", "enum_specifier"}:
                nxt = c
                break
        if nxt is None:
            for c in cur.named_children:
                if c.type in _CONTAINERS or c.type in _BODY_TYPES or c.type == "variable_declarator":
                    nxt = c
                    break
        if nxt is None:
            return []
        if nxt.type in _BODY_TYPES:
            return list(nxt.named_children)
        cur = nxt
    return []


def _ts_units(nodes: list[Any], in_container: bool) -> list[Unit]:
    units: list[Unit] = []
    for node in nodes:
        start, end = _node_lines(node)
        t = node.type
        if t in _COMMENT_TYPES:
            units.append(Unit(start, end, "comment"))
            continue
        if t in _PREFIX_TYPES:
            units.append(Unit(start, end, "prefix"))
            continue
        kind = _ts_kind(node)
        if t in _IMPORT_TYPES or (kind == "block" and end == start):
            units.append(Unit(start, end, "code"))
            continue
        if in_container and kind == "function":
            kind = "method"
        members = None
        if t in _CONTAINERS or kind in ("class", "struct", "interface", "trait", "impl", "module", "namespace", "enum"):
            members = lambda node=node: _ts_units(_ts_members(node), True)  # noqa: E731
        units.append(Unit(start, end, kind, _ts_name(node), members=members, member_kind="method"))
    return units


def tree_sitter_units(data: bytes, ext: str) -> list[Unit] | None:
    spec = _TS_GRAMMARS.get(ext.lower())
    if spec is None:
        return None
    parser = _ts_parser(*spec)
    if parser is None:
        return None
    try:
        tree = parser.parse(data)
    except Exception:
        return None
    root = tree.root_node
    children = list(root.named_children)
    # a header guard (#ifndef X ... #endif) around the whole file: look inside it
    if len(children) == 1 and children[0].type.startswith("preproc_if"):
        children = _ts_members(children[0]) or children
    return _ts_units(children, False)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------

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


def embedding_text(path: str, chunk: Chunk) -> str:
    """The text embedded for a chunk: where it is and what it defines, then the code itself."""
    header = path
    if chunk.name:
        label = chunk.kind if chunk.kind not in ("code", "block", "definitions") else ""
        header += f" | {label} {chunk.name}".replace("  ", " ")
    if chunk.parts:
        header += f" (part {chunk.part} of {chunk.parts})"
    return header + "\n" + chunk.text
