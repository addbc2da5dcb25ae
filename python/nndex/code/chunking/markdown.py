"""Markdown (and reStructuredText by extension): one unit per heading; lines inside fenced code never
start one."""

from __future__ import annotations

import re
from typing import Sequence

from nndex.code.chunking._core import Unit, _boundary_units

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
