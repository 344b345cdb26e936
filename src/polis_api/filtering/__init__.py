"""The filter language (docs/api.md, Lists): text → AST (``parser``) → SQL text (``to_sql``)."""

from polis_api.filtering.ast import And, ArrayLiteral, Compare, Literal, Node, Not, Or, Path, Range
from polis_api.filtering.parser import equality_filter, parse_filter, parse_path
from polis_api.filtering.to_sql import (
    ANY_DATA_PATH,
    FieldPolicy,
    Params,
    compile_filter,
    compile_sort,
    resolve_path,
)

__all__ = [
    "ANY_DATA_PATH",
    "And",
    "ArrayLiteral",
    "Compare",
    "FieldPolicy",
    "Literal",
    "Node",
    "Not",
    "Or",
    "Params",
    "Path",
    "Range",
    "compile_filter",
    "compile_sort",
    "equality_filter",
    "parse_filter",
    "parse_path",
    "resolve_path",
]
