"""Reading an import's CSV and turning each row into the documents it stands for.

Pure: no database. A row that cannot be read or is not valid becomes a ``RowError``
naming its line and column; every other row becomes a ``ParsedRow`` whose household
and contact data have passed the resources' own models.

Lines are read one at a time from the spooled file, each at most
POLIS_IMPORT_MAX_ROW_BYTES, so memory stays bounded whatever the file holds. A line
that is too long or not UTF-8 is replaced by an empty one for the CSV parser and
fails the row it belongs to; the rows around it import as usual.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from pydantic import BaseModel, ValidationError

from polis_api.errors import FieldError, ValidationFailed
from polis_api.resources.contacts import NAME_PARTS, ContactData, age_on
from polis_api.resources.households import HouseholdData

BOM = b"\xef\xbb\xbf"
CONTACT, HOUSEHOLD, MEMBER = "contact", "household", "member"

# Each field a mapping may name: which document it fills, and where in its data
# (a list index is the first contact point of its kind).
FIELDS: dict[str, tuple[str, tuple[str | int, ...]]] = {
    "externalId": (CONTACT, ("externalId",)),
    **{part: (CONTACT, ("profile", "name", "anglican", part)) for part in NAME_PARTS},
    "email": (CONTACT, ("profile", "emails", 0, "email")),
    "phone": (CONTACT, ("profile", "phones", 0, "phone")),
    "phoneType": (CONTACT, ("profile", "phones", 0, "phoneType")),
    "gender": (CONTACT, ("profile", "gender")),
    "birthdate": (CONTACT, ("profile", "birthdate")),
    "householdExternalId": (HOUSEHOLD, ("externalId",)),
    "unitNum": (HOUSEHOLD, ("unitNum",)),
    **{
        part: (HOUSEHOLD, ("address", part))
        for part in ("number", "streetName", "city", "state", "postalCode", "country")
    },
    "lat": (HOUSEHOLD, ("address", "coords", "lat")),
    "lng": (HOUSEHOLD, ("address", "coords", "lng")),
    "listId": (MEMBER, ("listId",)),
}
REQUIRED = ("externalId",)
_COORDS = ("lat", "lng")


def parse_mapping(text: str | None) -> dict[str, str]:
    """``mapping`` (JSON: field → CSV column name), checked before the file is read."""
    if text is None:
        raise _bad_mapping("/mapping", "is required: a JSON object of field → CSV column")
    try:
        mapping = json.loads(text)
    except ValueError:
        raise _bad_mapping("/mapping", "is not JSON") from None
    if not isinstance(mapping, dict):
        raise _bad_mapping("/mapping", "must be a JSON object of field → CSV column")
    errors = [
        FieldError(f"/mapping/{field}", f"is not a field an import knows ({', '.join(FIELDS)})")
        for field in mapping
        if field not in FIELDS
    ]
    errors += [
        FieldError(f"/mapping/{field}", "must name a CSV column (a non-empty string)")
        for field, column in mapping.items()
        if field in FIELDS and not (isinstance(column, str) and column.strip())
    ]
    errors += [
        FieldError(f"/mapping/{field}", "is required") for field in REQUIRED if field not in mapping
    ]
    present = [field for field in _COORDS if field in mapping]
    if len(present) == 1:
        missing = next(field for field in _COORDS if field not in mapping)
        errors.append(FieldError(f"/mapping/{missing}", "is required when lat or lng is mapped"))
    if errors:
        raise ValidationFailed(
            f"The mapping is not valid: {errors[0].path} {errors[0].message}.", errors=errors
        )
    return {field: column.strip() for field, column in mapping.items()}


def _bad_mapping(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"The mapping is not valid: {path} {message}.", errors=[FieldError(path, message)]
    )


@dataclass(frozen=True, slots=True)
class Columns:
    """Which cell of a row each mapped field reads, and the header's width."""

    index: dict[str, int]
    names: dict[str, str]
    width: int


def locate(mapping: dict[str, str], header: list[str]) -> Columns:
    """Finds each mapped column in the header: a 400 for one that is not there once."""
    names = [name.strip() for name in header]
    errors = []
    for field, column in mapping.items():
        found = names.count(column)
        if found != 1:
            problem = (
                "is not a column of the CSV header" if found == 0 else "is in the header twice"
            )
            errors.append(FieldError(f"/mapping/{field}", f"{column!r} {problem}"))
    if errors:
        raise ValidationFailed(
            f"The mapping does not fit the file: {errors[0].path} {errors[0].message}.",
            errors=errors,
        )
    return Columns(
        index={field: names.index(column) for field, column in mapping.items()},
        names=dict(mapping),
        width=len(header),
    )


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record: its cells, or why it could not be read. ``line`` is where it
    starts in the file (the header is line 1, as a spreadsheet numbers its rows)."""

    line: int
    cells: list[str] | None
    problem: str | None = None


class _Lines:
    """The file's lines as text for the CSV parser, each bounded and decoded alone."""

    def __init__(self, file: IO[bytes], max_bytes: int) -> None:
        self.file = file
        self.max_bytes = max_bytes
        self.line = 0
        self.problems: dict[int, str] = {}

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.file.readline(self.max_bytes + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        if self.line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if len(raw) > self.max_bytes:
            self._skip_rest_of_line(raw)
            self.problems[self.line] = (
                f"line {self.line} is longer than {self.max_bytes} bytes "
                "(POLIS_IMPORT_MAX_ROW_BYTES)"
            )
            return "\n"
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems[self.line] = (
                f"line {self.line} is not UTF-8 (byte {exc.start + 1} of the line); "
                "save the file as UTF-8"
            )
            return "\n"

    def _skip_rest_of_line(self, raw: bytes) -> None:
        while raw and not raw.endswith(b"\n"):
            raw = self.file.readline(self.max_bytes)

    def problem_until(self, line: int) -> str | None:
        """The first problem of the lines up to ``line`` (forgotten once asked)."""
        found = [self.problems.pop(n) for n in sorted(self.problems) if n <= line]
        return found[0] if found else None


def read_records(file: IO[bytes], max_line_bytes: int) -> Iterator[Record]:
    """Every record of the file, the header first; blank lines are skipped."""
    lines = _Lines(file, max_line_bytes)
    reader = csv.reader(lines, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            lines.problem_until(reader.line_num)
            # An unclosed quote runs on over the following lines: say which it took.
            span = f" (lines {start} to {reader.line_num})" if reader.line_num > start else ""
            yield Record(start, None, f"is not valid CSV{span}: {exc}")
            continue
        problem = lines.problem_until(reader.line_num)
        if problem is not None:
            yield Record(start, None, problem)
        elif cells:
            yield Record(start, cells)


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    household: dict[str, Any]  # valid household data (its externalId always set)
    contact: dict[str, Any]  # valid contact data, without primaryHouseholdId yet
    list_id: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.line, "column": self.column, "message": self.message}


class _RowInvalid(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_row(record: Record, columns: Columns, today: date) -> ParsedRow | RowError:
    """The documents one record stands for, or why it cannot be imported."""
    if record.cells is None:
        return RowError(record.line, None, record.problem or "could not be read")
    if len(record.cells) != columns.width:
        return RowError(
            record.line,
            None,
            f"has {len(record.cells)} columns; the header has {columns.width}",
        )
    try:
        return _documents(record, columns, today)
    except _RowInvalid as exc:
        column = columns.names.get(exc.field) if exc.field is not None else None
        if column is None and exc.field is not None:  # about a field the row left empty
            return RowError(record.line, None, f"{exc.field}: {exc.message}")
        return RowError(record.line, column, exc.message)


def _documents(record: Record, columns: Columns, today: date) -> ParsedRow:
    assert record.cells is not None
    values = {}
    for field, at in columns.index.items():
        value = record.cells[at].strip()
        if "\x00" in value:
            raise _RowInvalid(field, "must not contain the NUL character")
        if value:
            values[field] = value
    for field in REQUIRED:
        if field not in values:
            raise _RowInvalid(field, f"is empty; every row needs its {field}")
    built: dict[str, dict[str, Any]] = {CONTACT: {}, HOUSEHOLD: {}, MEMBER: {}}
    for field, value in values.items():
        document, path = FIELDS[field]
        _put(built[document], path, _typed(field, value))
    _check_coords(values)
    household = built[HOUSEHOLD]
    # Without a household column each row is its own door, keyed by the contact's id.
    household.setdefault("externalId", values["externalId"])
    contact = _valid(ContactData, built[CONTACT])
    birthdate = (contact.get("profile") or {}).get("birthdate")
    if birthdate is not None:
        contact["profile"]["age"] = age_on(birthdate, today)
    return ParsedRow(
        line=record.line,
        household=_valid(HouseholdData, household),
        contact=contact,
        list_id=built[MEMBER].get("listId"),
    )


def _typed(field: str, value: str) -> Any:
    if field in _COORDS:
        try:
            number = float(value)
        except ValueError:
            raise _RowInvalid(field, f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise _RowInvalid(field, f"{value!r} is not a finite number")
        return number
    if field == "listId":
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise _RowInvalid(field, f"{value!r} is not a list id (a UUID)") from None
    return value


def _check_coords(values: dict[str, str]) -> None:
    present = [field for field in _COORDS if field in values]
    if len(present) == 1:
        missing = next(field for field in _COORDS if field not in values)
        raise _RowInvalid(missing, "is empty, but lat and lng come together")


def _put(target: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    here: Any = target
    for part, following in itertools.pairwise(path):
        if isinstance(part, int):
            while len(here) <= part:
                here.append({})
            here = here[part]
        else:
            here = here.setdefault(part, [] if isinstance(following, int) else {})
    here[path[-1]] = value


def _valid(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` once the resource's model accepts it.

    Kept as built rather than dumped from the model: it holds only the strings and
    floats the model checked, which is what dumping would give back, at a third of the
    cost (NUL characters were refused cell by cell above).
    """
    try:
        model.model_validate(data)
        return data
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _RowInvalid(_field_at(model, error["loc"]), str(error["msg"])) from exc


def _field_at(model: type[BaseModel], location: tuple[int | str, ...]) -> str | None:
    """The mapped field a validation error is about (the nearest one by path)."""
    document = CONTACT if model is ContactData else HOUSEHOLD
    where = tuple(part for part in location if isinstance(part, str))
    best = None
    for field, (owner, path) in FIELDS.items():
        named = tuple(part for part in path if isinstance(part, str))
        near = owner == document and named[: len(where)] == where[: len(named)]
        if near and (best is None or named == where):
            best = field
    return best
