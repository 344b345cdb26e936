"""The pure half of CSV export: columns from a data model, and the cell rule."""

from __future__ import annotations

import csv
import io
import json

import pytest
from pydantic import BaseModel

from polis_api.documents.csv_columns import (
    Column,
    OpenCells,
    OpenPart,
    header_line,
    model_columns,
    text_cell,
)
from polis_api.resources.interactions import INTERACTIONS, InteractionData


class Coords(BaseModel):
    lat: float
    lng: float


class Address(BaseModel):
    line1: str
    coords: Coords | None = None


class Person(BaseModel):
    name: str
    address: Address
    tags: list[str] = []
    extra: dict[str, str] | None = None
    answers: dict[str, dict[str, str]] | None = None
    age: int | str | None = None


def test_nested_models_become_dotted_columns_in_field_order() -> None:
    names = [column.name for column in model_columns(Person)]

    assert names == [
        "name",
        "address.line1",
        "address.coords.lat",
        "address.coords.lng",
        "tags",
        "extra",
        "answers",
        "age",
    ]


def test_each_column_reads_the_path_its_name_spells() -> None:
    columns = {column.name: column for column in model_columns(Person)}

    assert columns["address.coords.lat"] == Column(
        "address.coords.lat", ("address", "coords", "lat")
    )


def test_a_declared_open_part_leaves_the_fixed_columns_its_keys_will_fill() -> None:
    names = [column.name for column in model_columns(Person, [OpenPart(("answers",), "a", 2)])]

    assert "answers" not in names
    assert "extra" in names  # not declared open: one column of JSON text


def test_an_open_keys_column_is_named_by_its_prefix_and_keys() -> None:
    part = OpenPart(("survey", "responses"), "survey", depth=3)

    deep = part.column(("q1", "fields", "dogliker"))
    shallow = part.column(("q1",))

    assert deep == Column(
        "survey.q1.fields.dogliker", ("survey", "responses", "q1", "fields", "dogliker")
    )
    assert not deep.expanded  # as deep as the part goes: an object here is JSON text
    assert shallow.expanded  # its deeper keys have columns: an object here is left empty


def test_interactions_list_survey_answers_only_through_their_open_part() -> None:
    names = [column.name for column in model_columns(InteractionData, INTERACTIONS.csv_open)]

    assert {"survey.surveyId", "survey.version", "location.lat", "qualityFlags"} <= set(names)
    assert "survey.responses" not in names


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', '"say ""hi"""'),
        ("a,b", '"a,b"'),
        ("two\nlines", '"two\nlines"'),
        ("=1+2", '"\'=1+2"'),
        ("+1", '"\'+1"'),
        ("-1", '"\'-1"'),
        ("@SUM(A1)", '"\'@SUM(A1)"'),
        ("\t=1", '"\'\t=1"'),
        ("\r=1", '"\'\r=1"'),
        (" =1", '" =1"'),  # only the first character starts a formula
        ("a=1", '"a=1"'),
        ("Ünïcödé ✓", '"Ünïcödé ✓"'),
    ],
)
def test_a_text_cell_is_quoted_and_a_formula_start_neutralised(text: str, cell: str) -> None:
    assert text_cell(text) == cell


def test_a_header_reads_back_as_its_names() -> None:
    names = ["id", "survey.q,1.optionId", 'say "x"', "=cmd"]

    line = header_line(names)

    assert line.endswith("\r\n")
    assert next(csv.reader(io.StringIO(line))) == ["id", "survey.q,1.optionId", 'say "x"', "'=cmd"]


def test_open_cells_put_each_leaf_in_its_column_and_leave_the_rest_empty() -> None:
    part = OpenPart(("survey", "responses"), "survey", depth=3)
    found = [
        part.column(("q1", "fields", "a")),
        part.column(("q1", "optionId")),
        part.column(("q2",)),
    ]
    leaves = json.dumps([[["q1", "optionId", None], '"x"'], [["q2", None, None], "7"]])

    line = OpenCells([part], found).line('"fixed"\x1f' + leaves)

    assert line == '"fixed",,"x",7\r\n'


def test_open_cells_find_their_part_from_the_right_whatever_the_fixed_cells_hold() -> None:
    fields = OpenPart(("fields",), "fields")
    found = [fields.column(("ward",))]
    fixed = '"a\x1fb"'  # a text cell holding the separator itself

    line = OpenCells([fields], found).line(fixed + "\x1f" + json.dumps([[["ward"], "3"]]))

    assert line == '"a\x1fb",3\r\n'
