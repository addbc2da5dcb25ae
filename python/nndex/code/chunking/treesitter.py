"""JavaScript, TypeScript, Go, Rust, C, C++ and Java with tree-sitter, when the grammars are installed
(the ``code`` extra); :func:`tree_sitter_units` gives None otherwise and the regex chunker is used."""

from __future__ import annotations

from typing import Any, Callable

from nndex.code.chunking._core import Unit

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


def tree_sitter_available(ext: str, load_parser: Callable[[str, str, str], Any] = _ts_parser) -> bool:
    spec = _TS_GRAMMARS.get(ext.lower())
    return bool(spec) and load_parser(*spec) is not None


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


def tree_sitter_units(
    data: bytes, ext: str, load_parser: Callable[[str, str, str], Any] = _ts_parser
) -> list[Unit] | None:
    spec = _TS_GRAMMARS.get(ext.lower())
    if spec is None:
        return None
    parser = load_parser(*spec)
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
