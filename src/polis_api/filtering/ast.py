"""The filter expression as data: frozen nodes produced by the parser, read by ``to_sql``.

Positions are 1-based columns in the filter text, so a later stage (policy checks,
type checks) can still say *where* the problem is.
"""

from __future__ import annotations

from dataclasses import dataclass

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Path:
    """A pointer into the document, e.g. ``/data/status`` → ``("data", "status")``."""

    segments: tuple[str, ...]
    position: int

    @property
    def text(self) -> str:
        return "/" + "/".join(self.segments)


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar
    position: int


@dataclass(frozen=True, slots=True)
class ArrayLiteral:
    items: tuple[Literal, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Range:
    """The ``low,high`` operand of ``between`` (both ends inclusive)."""

    low: Literal
    high: Literal


@dataclass(frozen=True, slots=True)
class Compare:
    left: Path
    op: str
    right: Literal | ArrayLiteral | Path | Range


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Compare | And | Or | Not
