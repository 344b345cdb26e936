"""Segment criteria evaluated over a contact document."""

from __future__ import annotations

from typing import Any

import pytest

from polis_api.workflow.segments import criteria_match, resolve

CONTACT: dict[str, Any] = {
    "id": "c1",
    "data": {
        "profile": {"age": 42, "gender": "f", "languages": ["en", "es"], "birthdate": "1982-01-02"},
        "fields": {"score": "7", "a/b": "slash"},
        "notes": None,
    },
}


def clause(source: str, operator: str, value: Any) -> dict[str, Any]:
    return {"source": source, "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("item", "matches"),
    [
        (clause("1", "eq", "1"), True),  # Polis' Default Target: everyone
        (clause("/data/profile/age", "eq", 42), True),
        (clause("/data/profile/age", "eq", "42"), True),  # string clause value, numeric field
        (clause("/data/profile/age", "neq", 42), False),
        (clause("/data/profile/age", "gt", "41"), True),
        (clause("/data/profile/age", "gte", 42), True),
        (clause("/data/profile/age", "lt", 42), False),
        (clause("/data/profile/age", "lte", 42.0), True),
        (clause("/data/profile/age", "gt", "old"), False),  # no order between them
        (clause("/data/fields/score", "gte", 7), True),
        (clause("/data/profile/birthdate", "lt", "1990-01-01"), True),
        (clause("/data/profile/gender", "in", ["f", "n"]), True),
        (clause("/data/profile/gender", "in", ["m"]), False),
        (clause("/data/profile/gender", "in", "f"), False),  # in needs a list
        (clause("/data/profile/languages/1", "eq", "es"), True),
        (clause("/data/fields/a~1b", "eq", "slash"), True),
        (clause("/data/profile/missing", "neq", "x"), False),  # missing matches nothing
        (clause("/data/notes", "neq", "x"), False),  # null too
        (clause("/data/profile/languages/9", "eq", "en"), False),
        (clause("/data/profile/gender", "eq", True), False),
    ],
)
def test_one_clause(item: dict[str, Any], matches: bool) -> None:
    assert criteria_match(CONTACT, {"filter": "all", "clauses": [item]}) is matches


def test_all_needs_every_clause_and_any_one_of_them() -> None:
    clauses = [clause("/data/profile/age", "gt", 40), clause("/data/profile/gender", "eq", "m")]
    assert criteria_match(CONTACT, {"filter": "all", "clauses": clauses}) is False
    assert criteria_match(CONTACT, {"filter": "any", "clauses": clauses}) is True


def test_a_literal_source_is_its_own_value() -> None:
    assert resolve(CONTACT, "1") == "1"
    assert resolve(CONTACT, "/id") == "c1"
