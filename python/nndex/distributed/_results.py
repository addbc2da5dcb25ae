"""What a ``partial=True`` search returns: the usual (indices, similarities) and its coverage."""

from __future__ import annotations

from typing import Any


class Coverage:
    """What a ``partial=True`` search covered: the shards that answered and the live rows they hold."""

    __slots__ = ("answered", "missing", "rows", "total_rows")

    def __init__(self, answered: tuple[int, ...], missing: tuple[int, ...], rows: int, total_rows: int) -> None:
        self.answered = answered
        self.missing = missing
        self.rows = rows
        self.total_rows = total_rows

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def fraction(self) -> float:
        """Share of the index's live rows that were searched (1.0 for an empty index)."""
        return 1.0 if self.total_rows == 0 else self.rows / self.total_rows

    def __reduce__(self) -> Any:
        raise TypeError("a ShardedIndex cannot be pickled (its shards live in Ray actors); save() it and load() "
                        "the directory in the other process")

    def __repr__(self) -> str:
        return (f"Coverage(answered={list(self.answered)}, missing={list(self.missing)}, "
                f"rows={self.rows}/{self.total_rows})")


class PartialResult(tuple):
    """``(indices, similarities)`` as :meth:`ShardedIndex.search` returns them, with a ``coverage``
    attribute: unpacks like the plain result."""

    coverage: Coverage

    def __new__(cls, result: tuple[Any, Any], coverage: Coverage) -> PartialResult:
        self = super().__new__(cls, result)
        self.coverage = coverage
        return self
