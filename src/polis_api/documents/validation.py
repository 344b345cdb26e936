"""Turn pydantic validation failures into the API's 400 problem (docs/api.md, Errors)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from polis_api.errors import FieldError, ValidationFailed

# Tags pydantic inserts into a location for union members (JsonValue and friends);
# they are not part of the client's document.
_UNION_TAGS = frozenset({"dict", "list", "str", "int", "float", "bool", "function-after"})
_WHERE = {"body": "", "query": "query", "path": "path", "header": "header"}


def _is_union_tag(part: int | str) -> bool:
    # e.g. "str", "constrained-str", "function-after[_not_blank(), str]"
    text = str(part)
    return isinstance(part, str) and (
        text in _UNION_TAGS
        or text.startswith(("constrained-", "function-", "lax-or-strict"))
        or ("[" in text and text.endswith("]"))
    )


def pointer(location: Sequence[int | str]) -> str:
    """A pydantic location as a JSON Pointer: ``("data", "lists", 0)`` → ``/data/lists/0``."""
    parts = [str(part) for part in location if not _is_union_tag(part)]
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "/" + "/".join(escaped) if parts else ""


def field_errors(errors: Iterable[Any], prefix: Sequence[str] = ()) -> list[FieldError]:
    items = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        where = _WHERE.get(str(location[0])) if location else None
        if where is not None:
            location = location[1:]
        path = pointer((*prefix, *location))
        if where:
            path = f"{where}:{path.lstrip('/')}"
        items.append(
            FieldError(
                path=path or "/",
                message=_message(error),
                received=_received(error),
            )
        )
    return items


def _message(error: Any) -> str:
    message = str(error.get("msg", "is not valid"))
    if error.get("type") == "extra_forbidden":
        return "is not a known field"
    if error.get("type") == "missing":
        return "is required"
    return message


def _received(error: Any) -> str | None:
    if error.get("type") in {"missing", "extra_forbidden"} or "input" not in error:
        return None
    text = repr(error["input"])
    return text if len(text) <= 120 else text[:117] + "..."


def validation_failed(errors: list[FieldError], what: str = "The request") -> ValidationFailed:
    first = errors[0] if errors else None
    detail = f"{what} is not valid" + (f": {first.path} {first.message}." if first else ".")
    if len(errors) > 1:
        detail += f" ({len(errors) - 1} more in 'errors')"
    return ValidationFailed(detail, errors=errors)


def validate_data(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """Validate ``data`` against a resource model and return its stored JSON form."""
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(field_errors(exc.errors(), prefix=("data",))) from exc
    return dump_data(instance)


def dump_data(instance: BaseModel) -> dict[str, Any]:
    # exclude_unset: store what the client said, not every optional field as null.
    dumped: dict[str, Any] = instance.model_dump(mode="json", by_alias=True, exclude_unset=True)
    nul = _first_nul(dumped, "/data")
    if nul is not None:
        raise validation_failed(
            [FieldError(path=nul, message="must not contain the NUL character (\\u0000)")]
        )
    return dumped


def _first_nul(value: Any, path: str) -> str | None:
    """Where a NUL character hides in a JSON value: PostgreSQL cannot store one in jsonb."""
    # Every write passes here: one C-speed encoding answers "none" for almost all of
    # them (NUL is always written escaped), and only a hit pays for the walk. A false
    # hit (a string holding a backslash, then "u0000") just walks and finds nothing.
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return None
    except orjson.JSONEncodeError:
        pass  # e.g. an integer beyond 64 bits: walk instead
    return _nul_path(value, path)


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            escaped = key.replace("~", "~0").replace("/", "~1")
            found = f"{path}/{escaped}" if "\x00" in key else _nul_path(item, f"{path}/{escaped}")
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}/{index}")
            if found is not None:
                return found
    return None
