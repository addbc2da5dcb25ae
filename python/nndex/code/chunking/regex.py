"""C-like languages without their tree-sitter grammar (JavaScript/TypeScript, Go, Rust, C/C++, Java)
and Python that does not parse: definition starts found by careful regular expressions."""

from __future__ import annotations

import re
from typing import Sequence

from nndex.code.chunking._core import Unit, _boundary_units

# tree-sitter language key -> the regular-expression dialect used without its grammar
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
