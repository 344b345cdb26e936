"""Does a contact fall in a segment? Criteria evaluated over the contact document.

A clause compares its ``source`` with its ``value``. A source that starts with ``/``
is a JSON Pointer into the contact's whole document (``/data/profile/age``); any
other source is taken as a literal, which is how Polis writes its "Default Target"
(``{"source": "1", "operator": "eq", "value": "1"}``, true for everyone).

Comparison rules, chosen so that Polis' string-typed clause values work against
typed contact fields:
- a number and a numeric string compare as numbers (``"18"`` equals ``18``);
- ``gt``/``gte``/``lt``/``lte`` compare two numbers, or two strings (ISO dates
  order correctly as text); any other pair does not match;
- ``in`` takes a list and matches when the source equals one of its items;
- a pointer that reaches nothing matches no clause, ``neq`` included (as SQL's
  NULL would): "age is not 30" says nothing about a contact without an age.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_MISSING = object()


def resolve(document: Mapping[str, Any], source: str) -> Any:
    """The value ``source`` names: a JSON Pointer into ``document`` or a literal."""
    if not source.startswith("/"):
        return source
    current: Any = document
    for raw in source[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return _MISSING
    return current


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """The pair as two numbers or two strings, or None when they do not compare."""
    if isinstance(left, int | float) or isinstance(right, int | float):
        a, b = _number(left), _number(right)
        return (a, b) if a is not None and b is not None else None
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def _equal(left: Any, right: Any) -> bool:
    pair = _comparable(left, right)
    if pair is not None:
        return bool(pair[0] == pair[1])
    return bool(left == right) and type(left) is type(right)


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        pair = _comparable(left, right)
        return pair is not None and test(*pair)

    return compare


def _among(left: Any, right: Any) -> bool:
    return isinstance(right, list) and any(_equal(left, item) for item in right)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "neq": lambda left, right: not _equal(left, right),
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "in": _among,
}


def clause_matches(document: Mapping[str, Any], clause: Mapping[str, Any]) -> bool:
    found = resolve(document, str(clause["source"]))
    if found is _MISSING or found is None:
        return False
    return OPERATORS[clause["operator"]](found, clause.get("value"))


def criteria_match(document: Mapping[str, Any], criteria: Mapping[str, Any]) -> bool:
    """``filter: all`` needs every clause to match, ``any`` at least one."""
    clauses: Sequence[Mapping[str, Any]] = criteria.get("clauses") or []
    results = (clause_matches(document, clause) for clause in clauses)
    return all(results) if criteria.get("filter") == "all" else any(results)
