"""RFC 6902 conformance of the patch engine.

Two tables. The project's own (``rfc6902_cases.py``) always runs. The public
json-patch-tests suite runs as well when a checkout of it sits beside the repository at
``../shared/conformance/json-patch-tests/`` (a maintainer's workspace); in a plain clone
it is skipped with a reason that ``pytest -ra`` shows, so its absence never stops the run.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from polis_api.documents.patch import apply_patch, parse_operations
from polis_api.errors import ApiError, InvalidPatch, PatchTestFailed
from tests.documents.rfc6902_cases import CASES, Applies, Fails

REPOSITORY = Path(__file__).resolve().parents[2]
PUBLIC_SUITE = REPOSITORY.parent / "shared" / "conformance" / "json-patch-tests"
PUBLIC_SUITE_FILES = {"tests.json": 95, "spec_tests.json": 17}
PUBLIC_SUITE_ABSENT = (
    f"the public json-patch-tests suite is not beside this checkout ({PUBLIC_SUITE}); "
    "the project's own RFC 6902 table in rfc6902_cases.py ran instead"
)


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


def test_the_helper_tells_booleans_from_numbers() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal(True, 1)
    assert not json_equal([0], [False])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


# --- the project's own table ---------------------------------------------------------


def _own(kind: type[Applies] | type[Fails]) -> list[Any]:
    return [pytest.param(case, id=_slug(case.comment)) for case in CASES if isinstance(case, kind)]


def test_the_own_table_names_each_case_once() -> None:
    comments = [case.comment for case in CASES]
    assert len(comments) == len(set(comments))


def test_the_own_table_has_every_appendix_a_example() -> None:
    examples = {case.comment.split(" ")[0] for case in CASES if case.comment.startswith("A.")}
    assert examples == {f"A.{number}" for number in range(1, 17)}


def test_the_own_table_covers_every_operation() -> None:
    operations = {
        operation.get("op")
        for case in CASES
        if isinstance(case.patch, list)
        for operation in case.patch
        if isinstance(operation, dict)
    }
    assert {"add", "remove", "replace", "move", "copy", "test"} <= operations


@pytest.mark.parametrize("case", _own(Applies))
def test_a_patch_applies(case: Applies) -> None:
    document = copy.deepcopy(case.doc)
    result = apply_patch(document, parse_operations(case.patch))
    assert json_equal(result, case.expected), case.comment
    assert json_equal(document, case.doc), "the input document was changed"


@pytest.mark.parametrize("case", _own(Fails))
def test_a_patch_is_refused(case: Fails) -> None:
    document = copy.deepcopy(case.doc)
    with pytest.raises(ApiError) as caught:
        apply_patch(document, parse_operations(case.patch))
    error = caught.value
    assert (error.code, error.errors[0].path) == (case.code, case.at), case.comment
    assert error.status == (409 if case.code == PatchTestFailed.code else 400)
    assert json_equal(document, case.doc), "the input document was changed"


# --- the public suite, when it is beside the repository -----------------------------


def _public_cases() -> list[Any]:
    if not PUBLIC_SUITE.is_dir():
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=PUBLIC_SUITE_ABSENT))]
    cases = []
    for name in PUBLIC_SUITE_FILES:
        stem = name.removesuffix(".json")
        records = json.loads((PUBLIC_SUITE / name).read_text(encoding="utf-8"))
        for index, record in enumerate(records):
            marks = (
                [pytest.mark.skip(reason="disabled in the suite")] if record.get("disabled") else []
            )
            case_id = f"{stem}-{index:03d}-{_slug(record.get('comment', ''))[:50]}".rstrip("-")
            cases.append(pytest.param(record, id=case_id, marks=marks))
    return cases


@pytest.mark.skipif(not PUBLIC_SUITE.is_dir(), reason=PUBLIC_SUITE_ABSENT)
def test_the_public_suite_is_complete() -> None:
    # When the folder is there, a truncated copy must fail loudly, not run fewer cases
    counts = {
        name: len(json.loads((PUBLIC_SUITE / name).read_text(encoding="utf-8")))
        for name in PUBLIC_SUITE_FILES
    }
    assert counts == PUBLIC_SUITE_FILES


@pytest.mark.parametrize("record", _public_cases())
def test_the_public_suite(record: dict[str, Any]) -> None:
    document = record["doc"]
    original = copy.deepcopy(document)
    if "expected" in record:
        result = apply_patch(document, parse_operations(record["patch"]))
        assert json_equal(result, record["expected"]), record.get("comment")
    else:
        with pytest.raises((InvalidPatch, PatchTestFailed)):
            apply_patch(document, parse_operations(record["patch"]))
    assert json_equal(document, original), "the input document was mutated"
