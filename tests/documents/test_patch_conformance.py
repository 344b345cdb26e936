"""Every record of the json-patch-tests suite (RFC 6902 conformance), both files.

The suite lives in the shared folder beside the repository (see its SOURCE.md);
records marked ``disabled`` by the suite itself are the only ones skipped.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from polis_api.documents.patch import apply_patch, parse_operations
from polis_api.errors import InvalidPatch, PatchTestFailed

SUITE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "json-patch-tests"
SUITE_FILES = ("tests.json", "spec_tests.json")


def _case_id(stem: str, index: int, record: dict[str, Any]) -> str:
    comment = re.sub(r"[^A-Za-z0-9]+", "-", record.get("comment", "")).strip("-").lower()
    return f"{stem}-{index:03d}" + (f"-{comment[:50]}" if comment else "")


def _cases() -> list[Any]:
    cases = []
    for name in SUITE_FILES:
        stem = name.removesuffix(".json")
        for index, record in enumerate(json.loads((SUITE / name).read_text(encoding="utf-8"))):
            marks = (
                [pytest.mark.skip(reason="disabled in the suite")] if record.get("disabled") else []
            )
            cases.append(pytest.param(record, id=_case_id(stem, index, record), marks=marks))
    return cases


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality, independent of the engine's: 1 equals 1.0, true is not 1."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


def test_the_suite_is_there() -> None:
    # A missing shared/ folder must fail loudly, not collect zero cases
    assert len(_cases()) == 95 + 17


@pytest.mark.parametrize("record", _cases())
def test_conformance(record: dict[str, Any]) -> None:
    document = record["doc"]
    original = copy.deepcopy(document)
    if "expected" in record:
        result = apply_patch(document, parse_operations(record["patch"]))
        assert json_equal(result, record["expected"]), record.get("comment")
    else:
        with pytest.raises((InvalidPatch, PatchTestFailed)):
            apply_patch(document, parse_operations(record["patch"]))
    assert json_equal(document, original), "the input document was mutated"


def test_the_helper_tells_booleans_from_numbers() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal(True, 1)
    assert not json_equal([0], [False])
