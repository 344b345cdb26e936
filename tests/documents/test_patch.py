"""The JSON Patch engine: shape checks, error reporting, JSON equality, the seed patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from polis_api.documents.patch import apply_patch, json_equal, parse_operations
from polis_api.errors import InvalidPatch, PatchTestFailed

EXPECTED_OPS = "expected one of add, remove, replace, move, copy, test"


def campaign_data() -> dict[str, Any]:
    """A campaign's data object as stored (SPEC §2: ``lists`` defaults to [])."""
    return {
        "name": "My Campaign",
        "status": "pending",
        "organizationId": "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319",
        "lists": [],
        "fields": [[{"type": "field", "path": "/data/title"}]],
    }


def patched(document: Any, *operations: dict[str, Any]) -> Any:
    return apply_patch(document, parse_operations(list(operations)))


def rejection(body: object) -> InvalidPatch:
    with pytest.raises(InvalidPatch) as caught:
        parse_operations(body)
    return caught.value


# --- parse_operations --------------------------------------------------------------


@pytest.mark.parametrize("body", [{"op": "add", "path": "/a", "value": 1}, "[]", None, 3])
def test_a_patch_must_be_an_array(body: object) -> None:
    error = rejection(body)
    assert [e.path for e in error.errors] == ["/data"]
    assert error.errors[0].expected == "array"


def test_an_operation_must_be_an_object() -> None:
    error = rejection([{"op": "remove", "path": "/a"}, "remove /a"])
    assert error.errors[0].path == "/data/1"
    assert error.errors[0].received == "string"


@pytest.mark.parametrize(
    ("operation", "path", "message"),
    [
        (
            {"op": "frobnicate", "path": "/a"},
            "/data/2/op",
            f"unknown op 'frobnicate'; {EXPECTED_OPS}",
        ),
        ({"path": "/a"}, "/data/2/op", f"missing 'op'; {EXPECTED_OPS}"),
        ({"op": 1, "path": "/a"}, "/data/2/op", f"'op' must be a string; {EXPECTED_OPS}"),
        ({"op": "remove"}, "/data/2/path", "missing 'path'"),
        ({"op": "remove", "path": None}, "/data/2/path", "'path' must be a string"),
        ({"op": "remove", "path": "a/b"}, "/data/2/path", "'a/b' is not a JSON Pointer"),
        ({"op": "remove", "path": "/~2"}, "/data/2/path", "'/~2' is not a JSON Pointer"),
        ({"op": "remove", "path": "/a~"}, "/data/2/path", "'/a~' is not a JSON Pointer"),
        ({"op": "move", "path": "/a"}, "/data/2/from", "missing 'from'"),
        ({"op": "copy", "path": "/a"}, "/data/2/from", "missing 'from'"),
        ({"op": "copy", "path": "/a", "from": "b"}, "/data/2/from", "'b' is not a JSON Pointer"),
        ({"op": "add", "path": "/a"}, "/data/2/value", "missing 'value'; 'add' needs one"),
        ({"op": "replace", "path": "/a"}, "/data/2/value", "missing 'value'; 'replace'"),
        ({"op": "test", "path": "/a"}, "/data/2/value", "missing 'value'; 'test'"),
    ],
)
def test_malformed_operations_are_reported_by_index(
    operation: dict[str, Any], path: str, message: str
) -> None:
    valid = {"op": "remove", "path": "/x"}
    error = rejection([valid, valid, operation])
    assert [(e.path, e.message[: len(message)]) for e in error.errors] == [(path, message)]
    assert path in error.detail


def test_every_problem_is_reported() -> None:
    error = rejection([{"op": "frobnicate"}, {"op": "add", "path": "x"}])
    assert [e.path for e in error.errors] == [
        "/data/0/op",
        "/data/0/path",
        "/data/1/path",
        "/data/1/value",
    ]
    assert "3 more" in error.detail


@pytest.mark.parametrize("path", ["", "/", "/a/0", "/a~0b~1c", "/-"])
def test_valid_pointers_and_a_null_value_are_accepted(path: str) -> None:
    operations = [{"op": "add", "path": path, "value": None}]
    assert parse_operations(operations) == operations


def test_apply_patch_checks_the_shape_itself() -> None:
    with pytest.raises(InvalidPatch):
        apply_patch({}, [{"op": "add", "path": "/a"}])


# --- apply_patch: failures ---------------------------------------------------------


def test_a_failing_patch_leaves_the_input_untouched() -> None:
    document = campaign_data()
    snapshot = copy.deepcopy(document)
    with pytest.raises(InvalidPatch):
        patched(
            document,
            {"op": "replace", "path": "/name", "value": "Changed"},
            {"op": "add", "path": "/lists/-", "value": {"listId": "x"}},
            {"op": "remove", "path": "/fields/0/0"},
            {"op": "move", "from": "/status", "path": "/state"},
            {"op": "remove", "path": "/missing"},
        )
    assert document == snapshot


def test_a_failing_test_leaves_the_input_untouched() -> None:
    document = campaign_data()
    snapshot = copy.deepcopy(document)
    with pytest.raises(PatchTestFailed):
        patched(
            document,
            {"op": "remove", "path": "/lists"},
            {"op": "test", "path": "/status", "value": "started"},
        )
    assert document == snapshot


def test_the_result_shares_nothing_with_the_patch_or_the_input() -> None:
    document = campaign_data()
    value = [{"listId": "a"}]
    result = patched(document, {"op": "replace", "path": "/lists", "value": value})
    value.append({"listId": "b"})
    result["fields"][0].clear()
    assert result["lists"] == [{"listId": "a"}]
    assert document["fields"][0] != []


@pytest.mark.parametrize(
    ("document", "operation", "member", "reason"),
    [
        ({"a": 1}, {"op": "remove", "path": "/b"}, "path", "'/b' does not exist"),
        ({"a": 1}, {"op": "replace", "path": "/b", "value": 2}, "path", "'/b' does not exist"),
        ({"a": {}}, {"op": "add", "path": "/a/b/c", "value": 2}, "path", "'/a/b' does not exist"),
        ({"a": [1]}, {"op": "add", "path": "/a/2", "value": 2}, "path", "cannot add at '/a/2'"),
        ({"a": [1]}, {"op": "remove", "path": "/a/1"}, "path", "'/a/1' does not exist"),
        ({"a": [1, 2]}, {"op": "remove", "path": "/a/01"}, "path", "'/a/01': '01' is not"),
        ({"a": [1]}, {"op": "replace", "path": "/a/-", "value": 2}, "path", "'/a/-' does not"),
        ({"a": [1]}, {"op": "remove", "path": "/a/x"}, "path", "'/a/x': 'x' is not"),
        ({"a": "s"}, {"op": "remove", "path": "/a/0"}, "path", "'/a/0' does not exist: '/a' is"),
        ({"a": 1}, {"op": "test", "path": "/b", "value": None}, "path", "'/b' does not exist"),
        ({"a": 1}, {"op": "copy", "from": "/b", "path": "/c"}, "from", "'/b' does not exist"),
        ({"a": [1]}, {"op": "move", "from": "/a/-", "path": "/c"}, "from", "'/a/-' does not"),
        (
            {"a": {"b": {}}},
            {"op": "move", "from": "/a", "path": "/a/b/c"},
            "path",
            "cannot move '/a' into its own child '/a/b/c'",
        ),
        (
            # RFC 6902 §4.4: the target is evaluated after the value has been removed
            {"a": [1, 2]},
            {"op": "move", "from": "/a/0", "path": "/a/2"},
            "path",
            "cannot add at '/a/2': the array has 1 element",
        ),
    ],
)
def test_unresolvable_locations_name_the_operation_and_path(
    document: Any, operation: dict[str, Any], member: str, reason: str
) -> None:
    harmless = {"op": "test", "path": "", "value": document}
    with pytest.raises(InvalidPatch) as caught:
        patched(document, harmless, operation)
    error = caught.value
    assert error.status == 400
    assert error.detail.startswith(
        f"JSON Patch operation 1 ({operation['op']} '{operation['path']}') cannot be applied: "
    )
    assert reason in error.detail
    assert [e.path for e in error.errors] == [f"/data/1/{member}"]
    assert error.errors[0].message.startswith(reason)


def test_removing_the_whole_document_is_mapped_from_jsonpatch() -> None:
    with pytest.raises(InvalidPatch) as caught:
        patched({"a": 1}, {"op": "remove", "path": ""})
    assert isinstance(caught.value.__cause__, Exception)
    assert caught.value.detail.startswith("JSON Patch operation 0 (remove '')")


# --- the test operation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "tested"),
    [(1, True), (True, 1), (0, False), ([1], [True]), ({"a": 1}, {"a": True}), ("1", 1)],
)
def test_test_fails_on_a_different_json_type(actual: Any, tested: Any) -> None:
    with pytest.raises(PatchTestFailed) as caught:
        patched({"n": actual}, {"op": "test", "path": "/n", "value": tested})
    error = caught.value
    assert error.status == 409
    assert error.detail.startswith("JSON Patch operation 0 (test '/n') failed")
    assert error.errors[0].path == "/data/0/value"


def test_a_failed_test_shows_both_values() -> None:
    with pytest.raises(PatchTestFailed) as caught:
        patched(campaign_data(), {"op": "test", "path": "/status", "value": "started"})
    [item] = caught.value.errors
    assert (item.expected, item.received) == ('"started"', '"pending"')


@pytest.mark.parametrize(
    ("actual", "tested"),
    [(1, 1.0), (None, None), ({"a": [1, {"b": False}]}, {"a": [1.0, {"b": False}]})],
)
def test_test_passes_on_equal_json(actual: Any, tested: Any) -> None:
    assert patched({"n": actual}, {"op": "test", "path": "/n", "value": tested}) == {"n": actual}


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        (None, False, False),
        ("a", "a", True),
        ([1, 2], [2, 1], False),
        ({"x": 1, "y": 2}, {"y": 2, "x": 1}, True),
        ({"x": 1}, {"x": 1, "y": None}, False),
        ([], {}, False),
    ],
)
def test_json_equal(left: Any, right: Any, equal: bool) -> None:
    assert json_equal(left, right) is equal
    assert json_equal(right, left) is equal


# --- the seed -----------------------------------------------------------------------


def test_the_seed_000_campaign_patch() -> None:
    # seed 000, "Update a campaign"
    operations = parse_operations(
        [
            {"op": "replace", "path": "/name", "value": "My Campaign Changed"},
            {"op": "replace", "path": "/description", "value": "My Campaign Description"},
            {
                "op": "replace",
                "path": "/lists",
                "value": [{"listId": "ea19c3ab-3526-4709-b027-3e3c1d1851b2"}],
            },
        ]
    )
    document = campaign_data() | {"description": ""}
    assert apply_patch(document, operations) == campaign_data() | {
        "name": "My Campaign Changed",
        "description": "My Campaign Description",
        "lists": [{"listId": "ea19c3ab-3526-4709-b027-3e3c1d1851b2"}],
    }


def test_replacing_a_missing_description_is_a_400() -> None:
    # RFC 6902 §4.3: replace needs an existing target; "add" is the way to create one
    with pytest.raises(InvalidPatch) as caught:
        patched(campaign_data(), {"op": "replace", "path": "/description", "value": "x"})
    assert caught.value.errors[0].path == "/data/0/path"
