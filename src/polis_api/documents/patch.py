"""RFC 6902 JSON Patch on a resource's ``data`` (docs/api.md, JSON Patch).

Two stages. ``parse_operations`` checks the shape of the patch document and reports
every problem at its place in the request body (``/data/2/op``). ``apply_patch`` then
applies the operations one by one to a deep copy, so a failure halfway leaves the
caller's document untouched.

Before each operation its locations are evaluated here as RFC 6901 §4 says (no
leading zeros, ``-`` only where an element may be added, no walking through scalars),
against the document as the earlier operations left it. A bad location therefore
becomes an ``InvalidPatch`` that names the operation, whatever jsonpatch version is
installed. jsonpatch then performs add, remove and replace. ``copy`` inserts a copy
made here (see below); ``move`` is the remove-then-add that RFC 6902 §4.4 defines it
as (jsonpatch removes, the detached value is put back here without copying it);
``test`` is evaluated here with JSON equality, in which ``true`` is not ``1``.

The work is bounded by ``PatchLimits``. A patch holds at most ``max_operations``
operations. ``copy`` is the only operation whose output can outgrow its input
(seventeen copies of the whole document into itself double it seventeen times), so
every copied value is measured before it is copied, and once the values copied by
one patch add up to more than ``max_bytes`` the patch is refused with a 413 — before
the copy that would cross the line, so no request spends seconds or hundreds of
megabytes getting there.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, cast

import jsonpatch
import jsonpointer
import orjson

from polis_api.config import Settings
from polis_api.errors import ApiError, FieldError, InvalidPatch, PatchTestFailed, PayloadTooLarge

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
# The operations arrive as the "data" array of the body ({"data": [...]}),
# so problems are reported at /data/<index>/<member>.
BODY_LOCATION = "/data"

_NEEDS_FROM = ("move", "copy")
_NEEDS_VALUE = ("add", "replace", "test")
_EXPECTED_OPS = "expected one of " + ", ".join(OPERATIONS)
_EXPECTED_POINTER = "expected a JSON Pointer such as '/name'"
# RFC 6901 §3: "~" may only appear as ~0 ("~") or ~1 ("/")
_BAD_ESCAPE = re.compile(r"~(?![01])")
# RFC 6901 §4: an array index is "0" or ASCII digits without a leading zero; int()
# alone would also accept "01", "+1", " 1", "1_0" and non-ASCII digits
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_END_OF_ARRAY = "-"
_SHOWN_CHARS = 80
# Integers up to this many bits are measured exactly, larger ones estimated
_EXACT_INT_BITS = 1024


@dataclass(frozen=True, slots=True)
class PatchLimits:
    """How much one patch may ask for (POLIS_MAX_PATCH_OPERATIONS, POLIS_MAX_BODY_BYTES)."""

    max_operations: int = Settings.model_fields["max_patch_operations"].default
    # the most bytes the copies of one patch may add up to; also the size a patched
    # document may have, so a patch cannot build what a create could not send
    max_bytes: int = Settings.model_fields["max_body_bytes"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> PatchLimits:
        return cls(settings.max_patch_operations, settings.max_body_bytes)


class _Unresolvable(Exception):
    """A location of an operation that RFC 6901 cannot evaluate in the document."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(reason)
        self.member = member  # "path" or "from": which member of the operation is at fault
        self.reason = reason


# --- stage 1: the shape of the patch document -------------------------------------


def parse_operations(body: object, limits: PatchLimits = PatchLimits()) -> list[dict[str, Any]]:
    """Return ``body`` as a list of operations, or raise ``InvalidPatch`` listing every
    problem by index (``/data/2/op``: ``unknown op 'frobnicate'; expected one of ...``)."""
    if isinstance(body, list) and len(body) > limits.max_operations:
        raise InvalidPatch(
            f"The JSON Patch has {len(body)} operations; at most {limits.max_operations} "
            "are allowed in one request.",
            errors=[
                FieldError(
                    BODY_LOCATION,
                    f"at most {limits.max_operations} operations",
                    expected=f"at most {limits.max_operations} operations",
                    received=f"{len(body)} operations",
                )
            ],
        )
    if not isinstance(body, list):
        raise _malformed(
            [
                FieldError(
                    BODY_LOCATION,
                    "a JSON Patch must be an array of operations",
                    expected="array",
                    received=_json_type(body),
                )
            ]
        )
    errors = [
        error
        for index, operation in enumerate(body)
        for error in _operation_errors(index, operation)
    ]
    if errors:
        raise _malformed(errors)
    return cast(list[dict[str, Any]], body)


def _operation_errors(index: int, operation: object) -> list[FieldError]:
    at = f"{BODY_LOCATION}/{index}"
    if not isinstance(operation, dict):
        return [
            FieldError(
                at,
                "an operation must be an object",
                expected="object",
                received=_json_type(operation),
            )
        ]
    op = operation.get("op")
    errors = _op_errors(at, operation)
    errors += _pointer_errors(at, operation, "path")
    if op in _NEEDS_FROM:
        errors += _pointer_errors(at, operation, "from")
    # RFC 6902 §4.1/4.3/4.6: "value" is required; null is a value, absence is not
    if op in _NEEDS_VALUE and "value" not in operation:
        errors.append(
            FieldError(f"{at}/value", f"missing 'value'; '{op}' needs one (null is allowed)")
        )
    return errors


def _op_errors(at: str, operation: dict[str, Any]) -> list[FieldError]:
    if "op" not in operation:
        return [FieldError(f"{at}/op", f"missing 'op'; {_EXPECTED_OPS}")]
    op = operation["op"]
    if not isinstance(op, str):
        message = f"'op' must be a string; {_EXPECTED_OPS}"
        return [FieldError(f"{at}/op", message, expected="string", received=_json_type(op))]
    if op not in OPERATIONS:
        return [FieldError(f"{at}/op", f"unknown op {_shorten(op)!r}; {_EXPECTED_OPS}")]
    return []


def _pointer_errors(at: str, operation: dict[str, Any], member: str) -> list[FieldError]:
    where = f"{at}/{member}"
    if member not in operation:
        return [FieldError(where, f"missing '{member}'; {_EXPECTED_POINTER}")]
    pointer = operation[member]
    if not isinstance(pointer, str):
        message = f"'{member}' must be a string; {_EXPECTED_POINTER}"
        return [FieldError(where, message, expected="string", received=_json_type(pointer))]
    problem = _pointer_syntax_problem(pointer)
    if problem is None:
        return []
    return [FieldError(where, f"{_shorten(pointer)!r} is not a JSON Pointer: {problem}")]


def _pointer_syntax_problem(pointer: str) -> str | None:
    # RFC 6901 §3: a pointer is "" (the whole document) or a sequence of "/" tokens
    if pointer and not pointer.startswith("/"):
        return "it must be empty (the whole document) or start with '/'"
    if _BAD_ESCAPE.search(pointer):
        return "write '~' as '~0' and a '/' inside a name as '~1'"
    return None


def _malformed(errors: list[FieldError]) -> InvalidPatch:
    first = errors[0]
    more = f" (and {len(errors) - 1} more, see errors)" if len(errors) > 1 else ""
    return InvalidPatch(
        f"The JSON Patch is malformed: {first.path}: {first.message}{more}.", errors=errors
    )


# --- stage 2: applying the operations ----------------------------------------------


def apply_patch(
    document: Any, operations: list[dict[str, Any]], limits: PatchLimits = PatchLimits()
) -> Any:
    """Apply ``operations`` to a deep copy of ``document`` and return the copy.

    The shape is checked again, so a caller that skipped ``parse_operations`` still gets
    an ``InvalidPatch`` rather than a ``KeyError``. The result may be a different type
    than ``document`` when an operation replaces the whole document (path ``""``).
    Copies beyond ``limits.max_bytes`` in all are a ``PayloadTooLarge`` (413).
    """
    parse_operations(operations, limits)
    # Patch a copy: the operations below may change it in place, and a
    # failure halfway must leave the caller's document as it was
    result = copy.deepcopy(document)
    budget = _CopyBudget(limits.max_bytes)
    for index, operation in enumerate(operations):
        result = _apply_operation(result, index, operation, budget)
    return result


class _CopyBudget:
    """The bytes one patch may still copy; spent before each copy is made."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.copied = 0

    def copy(self, index: int, operation: dict[str, Any], value: Any) -> Any:
        """A copy of ``value``, made only if its size fits what is left of the budget.

        The copy is read back from the JSON that measured it: two passes in C rather
        than ``copy.deepcopy``'s one in Python, which is many times slower.
        """
        try:
            written: bytes | None = orjson.dumps(value)
        except TypeError:  # an integer beyond 64 bits, which orjson refuses
            written = None
        size = len(written) if written is not None else _walked_json_size(value, self.max_bytes)
        self._spend(index, operation, size)
        return copy.deepcopy(value) if written is None else orjson.loads(written)

    def _spend(self, index: int, operation: dict[str, Any], size: int | None) -> None:
        if size is None or self.copied + size > self.max_bytes:
            raise PayloadTooLarge(
                f"JSON Patch operation {index} (copy {_describe(operation['from'])} to "
                f"{operation['path']!r}) would take the values this patch copies past "
                f"{self.max_bytes} bytes, the largest document this server accepts; "
                "nothing was written.",
                errors=[
                    FieldError(
                        f"{BODY_LOCATION}/{index}/from",
                        f"copies more than {self.max_bytes} bytes in all",
                    )
                ],
            )
        self.copied += size


def json_size(value: Any, limit: int) -> int | None:
    """The size of ``value`` written as compact JSON, or None when it passes ``limit``.

    orjson writes it in C, far faster than any walk here; the value is part of the
    document, so the bytes it takes for a moment are bounded like the document.
    """
    try:
        size = len(orjson.dumps(value))
    except TypeError:  # an integer beyond 64 bits, which orjson refuses
        return _walked_json_size(value, limit)
    return size if size <= limit else None


def _walked_json_size(value: Any, limit: int) -> int | None:
    """``json_size`` by walking the value, stopping once past ``limit``. Strings count
    their UTF-8 bytes and quotes (escapes are not counted: close enough for a bound)."""
    size = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            size += 2 + max(len(item) - 1, 0)  # braces and commas
            for key, member in item.items():
                size += len(key.encode()) + 3  # quotes and colon
                pending.append(member)
        elif isinstance(item, list):
            size += 2 + max(len(item) - 1, 0)
            pending.extend(item)
        elif isinstance(item, str):
            size += len(item.encode()) + 2
        elif item is None or isinstance(item, bool):
            size += 4 if item in (None, True) else 5
        elif isinstance(item, int) and item.bit_length() > _EXACT_INT_BITS:
            # digits from the bit length: str() of a huge integer is slow (and refused)
            size += item.bit_length() * 30103 // 100000 + 2
        else:
            size += len(repr(item))
        if size > limit:
            return None
    return size


def _apply_operation(
    document: Any, index: int, operation: dict[str, Any], budget: _CopyBudget
) -> Any:
    try:
        match operation["op"]:
            case "test":
                _test(document, index, operation)
                return document
            case "move":
                return _move(document, operation)
            case "copy":
                _check_locations(document, operation)
                value = _resolve(document, operation["from"], "from")
                return _insert(document, operation["path"], budget.copy(index, operation, value))
            case _:
                _check_locations(document, operation)
                return _jsonpatch_apply(document, operation)
    except _Unresolvable as exc:
        raise _cannot_apply(index, operation, exc.member, exc.reason) from exc
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _from_jsonpatch(index, operation, exc) from exc


def _test(document: Any, index: int, operation: dict[str, Any]) -> None:
    # RFC 6902 §4.6: the target location must exist (else the patch is in error, 400);
    # only a value that differs is a failed test (409)
    actual = _resolve(document, operation["path"], "path")
    if not json_equal(actual, operation["value"]):
        raise _test_failed(index, operation, actual)


def _move(document: Any, operation: dict[str, Any]) -> Any:
    source, target = operation["from"], operation["path"]
    source_tokens, target_tokens = _escaped_tokens(source), _escaped_tokens(target)
    # RFC 6902 §4.4: "from" must not be a proper prefix of "path"
    if (
        len(target_tokens) > len(source_tokens)
        and target_tokens[: len(source_tokens)] == source_tokens
    ):
        raise _Unresolvable(
            "path", f"cannot move {_describe(source)} into its own child {target!r}"
        )
    value = _resolve(document, source, "from")
    if source_tokens == target_tokens:
        return document  # the value is already where it should go
    # RFC 6902 §4.4: move is a remove at "from" followed by an add at "path", so "path" is
    # evaluated against the document without the value (array indexes may have shifted)
    document = _jsonpatch_apply(document, {"op": "remove", "path": source})
    _check_add_target(document, target)
    # The value is detached now, so it is put back as it is: a move costs the same
    # whatever the size of what it moves (jsonpatch's add would copy it)
    return _insert(document, target, value)


def _insert(document: Any, pointer: str, value: Any) -> Any:
    """Add ``value`` at ``pointer``, already checked by ``_check_add_target``."""
    if not pointer:
        return value
    parent_pointer, _, escaped = pointer.rpartition("/")
    parent = _resolve(document, parent_pointer, "path")
    token = jsonpointer.unescape(escaped)
    if isinstance(parent, list):
        parent.insert(_array_index(parent, token, pointer, "path", for_add=True), value)
    else:
        parent[token] = value
    return document


def _check_locations(document: Any, operation: dict[str, Any]) -> None:
    """Locations of add, remove, replace and copy, checked before jsonpatch runs them."""
    op = operation["op"]
    if op == "copy":
        _resolve(document, operation["from"], "from")
    if op in ("add", "copy"):
        _check_add_target(document, operation["path"])
    else:
        _resolve(document, operation["path"], "path")


def _jsonpatch_apply(document: Any, operation: dict[str, Any]) -> Any:
    # in_place: ``document`` is already our private copy; jsonpatch copies the values
    # it inserts, so the result never shares objects with the patch
    return jsonpatch.apply_patch(document, [operation], in_place=True)


# --- RFC 6901 evaluation -------------------------------------------------------------


def _escaped_tokens(pointer: str) -> list[str]:
    # RFC 6901 §3: "/" only separates tokens ("/" inside a name is written ~1), so
    # splitting the text is exact and keeps each token as the client wrote it
    return pointer.split("/")[1:]


def _resolve(document: Any, pointer: str, member: str) -> Any:
    """The value at ``pointer``; raise ``_Unresolvable`` naming the first missing step."""
    value = document
    parent = ""
    for escaped in _escaped_tokens(pointer):
        value = _child(value, jsonpointer.unescape(escaped), parent, member)
        parent = f"{parent}/{escaped}"
    return value


def _child(container: Any, token: str, parent: str, member: str) -> Any:
    location = f"{parent}/{jsonpointer.escape(token)}"
    if isinstance(container, dict):
        if token not in container:
            raise _Unresolvable(member, f"{location!r} does not exist")
        return container[token]
    if isinstance(container, list):
        return container[_array_index(container, token, location, member, for_add=False)]
    raise _Unresolvable(
        member,
        f"{location!r} does not exist: {_describe(parent)} is {_kind(container)}, "
        "not an object or array",
    )


def _check_add_target(document: Any, pointer: str) -> None:
    """RFC 6902 §4.1: the parent of an add target must exist and be a container; in an
    array the index may be at most its length, or "-" for the end."""
    if not pointer:
        return  # "" replaces the whole document
    parent_pointer, _, escaped = pointer.rpartition("/")
    parent = _resolve(document, parent_pointer, "path")
    if isinstance(parent, list):
        _array_index(parent, jsonpointer.unescape(escaped), pointer, "path", for_add=True)
    elif not isinstance(parent, dict):
        raise _Unresolvable(
            "path",
            f"cannot add {pointer!r}: {_describe(parent_pointer)} is {_kind(parent)}, "
            "not an object or array",
        )


def _array_index(array: list[Any], token: str, location: str, member: str, *, for_add: bool) -> int:
    if token == _END_OF_ARRAY:
        # RFC 6901 §4 / RFC 6902 §4.1: "-" is the nonexistent element after the last
        # one, so it names a position only for adding
        if for_add:
            return len(array)
        raise _Unresolvable(
            member,
            f"{location!r} does not exist: '-' is the position after the last element "
            "and can only be used to add",
        )
    if not _ARRAY_INDEX.fullmatch(token):
        raise _Unresolvable(
            member,
            f"{location!r}: {_shorten(token)!r} is not an array index "
            "(0, or digits without a leading zero; RFC 6901 §4)",
        )
    position = int(token)
    if position < len(array) or (for_add and position == len(array)):
        return position
    size = f"the array has {len(array)} element{'' if len(array) == 1 else 's'}"
    if for_add:
        raise _Unresolvable(member, f"cannot add at {location!r}: {size}; use '-' to append")
    raise _Unresolvable(member, f"{location!r} does not exist: {size}")


# --- JSON equality -------------------------------------------------------------------


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality as RFC 6902 §4.6 defines it for ``test``: numbers compare by value
    (``1`` equals ``1.0``), a boolean is never a number (``true`` is not ``1``, which
    Python's ``True == 1`` would say), objects ignore member order, arrays do not."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            json_equal(left[key], right[key]) for key in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- errors --------------------------------------------------------------------------


def _cannot_apply(index: int, operation: dict[str, Any], member: str, reason: str) -> InvalidPatch:
    return InvalidPatch(
        f"JSON Patch operation {index} ({operation['op']} {operation['path']!r}) "
        f"cannot be applied: {reason}.",
        errors=[FieldError(f"{BODY_LOCATION}/{index}/{member}", reason)],
    )


def _test_failed(index: int, operation: dict[str, Any], actual: Any) -> PatchTestFailed:
    path, tested = operation["path"], operation["value"]
    return PatchTestFailed(
        f"JSON Patch operation {index} (test {path!r}) failed: the value is "
        f"{_show(actual)}, not {_show(tested)}.",
        errors=[
            FieldError(
                f"{BODY_LOCATION}/{index}/value",
                f"the value at {path!r} is not the tested value",
                expected=_show(tested),
                received=_show(actual),
            )
        ],
    )


def _from_jsonpatch(
    index: int,
    operation: dict[str, Any],
    exc: jsonpatch.JsonPatchException | jsonpointer.JsonPointerException,
) -> ApiError:
    # The checks above leave jsonpatch little to refuse (removing the whole document),
    # but it stays the authority on applying an operation, so whatever it raises is
    # mapped here rather than escaping as a 500. JsonPatchTestFailed is an
    # AssertionError, which must never be mistaken for a bug either.
    if isinstance(exc, jsonpatch.JsonPatchTestFailed):
        return PatchTestFailed(
            f"JSON Patch operation {index} (test {operation['path']!r}) failed: {exc}.",
            errors=[FieldError(f"{BODY_LOCATION}/{index}/value", str(exc))],
        )
    return _cannot_apply(index, operation, "path", str(exc))


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


def _kind(value: object) -> str:
    kind = _json_type(value)
    if kind == "null":
        return kind
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _describe(pointer: str) -> str:
    return repr(pointer) if pointer else "the document"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return _shorten(text)


def _shorten(text: str) -> str:
    # Keep error bodies small whatever the client sent
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
