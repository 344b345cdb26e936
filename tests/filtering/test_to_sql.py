"""AST → SQL text + bound parameters: exact shapes, hostile values, policies, sorting."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from polis_api.errors import BadFilter
from polis_api.filtering.ast import And, Compare, Literal, Not, Or, Path, Range
from polis_api.filtering.parser import parse_filter
from polis_api.filtering.to_sql import (
    ANY_DATA_PATH,
    FieldPolicy,
    Params,
    compile_filter,
    compile_sort,
    equality_filter,
)

U1 = "7d3f2b9e-1c2a-4b5d-9e8f-0a1b2c3d4e5f"
U2 = "00000000-0000-4000-8000-000000000001"
T1 = "2018-09-18T20:12:46.771Z"
T1_VALUE = datetime(2018, 9, 18, 20, 12, 46, 771000, tzinfo=UTC)

INTERACTIONS = FieldPolicy(
    frozenset(
        {"/data/campaignId", "/data/contactId", "/data/contactHouseholdId", "/data/householdId"}
    )
)

S = "(data ->> 's')"  # the text form of /data/s
S_JSONB = "(data -> 's')"  # its jsonb form
N = "(data -> 'n')"  # the jsonb form of /data/n
NUMBER = f"jsonb_typeof({N}) = 'number'"


def compile_text(text: str, policy: FieldPolicy = ANY_DATA_PATH) -> tuple[str, list[object]]:
    params = Params()
    sql = compile_filter(parse_filter(text), policy, params)
    return sql, params.values


CASES: list[tuple[str, str, list[object]]] = [
    # strings on data paths compare as text
    ('/data/s eq "x"', f"{S} = $1", ["x"]),
    ('data/s neq "x"', f"(({S} = $1) IS NOT TRUE)", ["x"]),
    ('/data/s gt "x"', f"{S} > $1", ["x"]),
    ('/data/s gte "x"', f"{S} >= $1", ["x"]),
    ('/data/s lt "x"', f"{S} < $1", ["x"]),
    ('/data/s lte "x"', f"{S} <= $1", ["x"]),
    ('/data/a/b/c eq "x"', "(data -> 'a' -> 'b' ->> 'c') = $1", ["x"]),
    # a numeric segment indexes an array (and still finds an object key "0")
    ('/data/a/0 eq "x"', """(data #>> '{"a","0"}') = $1""", ["x"]),
    (
        "/data/a/0/b eq nil",
        """((data #> '{"a","0","b"}') IS NULL OR (data #> '{"a","0","b"}') = 'null'::jsonb)""",
        [],
    ),
    # numbers compare as jsonb numbers only
    ("/data/n eq 5", f"({NUMBER} AND {N} = $1::jsonb)", [5]),
    ("/data/n gt 1.5", f"({NUMBER} AND {N} > $1::jsonb)", [1.5]),
    ("/data/n gte -2", f"({NUMBER} AND {N} >= $1::jsonb)", [-2]),
    ("/data/n lt 1e2", f"({NUMBER} AND {N} < $1::jsonb)", [100.0]),
    ("/data/n lte 0", f"({NUMBER} AND {N} <= $1::jsonb)", [0]),
    ("/data/n neq 5", f"((({NUMBER} AND {N} = $1::jsonb)) IS NOT TRUE)", [5]),
    # booleans: eq / neq only
    ("/data/n eq true", f"{N} = $1::jsonb", [True]),
    ("/data/n neq false", f"(({N} = $1::jsonb) IS NOT TRUE)", [False]),
    # nil / null: absent or JSON null
    ("/data/n eq nil", f"({N} IS NULL OR {N} = 'null'::jsonb)", []),
    ("/data/n eq null", f"({N} IS NULL OR {N} = 'null'::jsonb)", []),
    ("/data/n neq nil", f"({N} IS NOT NULL AND {N} <> 'null'::jsonb)", []),
    ("/meta/modifiedBy eq nil", "modified_by IS NULL", []),
    ("/meta/modifiedBy neq null", "modified_by IS NOT NULL", []),
    # like: * and ? are wildcards; %, _ and \ are literal
    ('/data/s like "Sm*th?"', f"{S} LIKE $1", ["Sm%th_"]),
    (r'/data/s like "100%_a\\b"', f"{S} LIKE $1", ["100\\%\\_a\\\\b"]),
    ('/id like "7d3f*"', "id::text LIKE $1", ["7d3f%"]),
    ('/customerId like "*"', "customer_id::text LIKE $1", ["%"]),
    # in / nin with arrays
    ('/data/s in ["a", "b"]', f"{S} IN ($1, $2)", ["a", "b"]),
    ('/data/s nin ["a"]', f"(({S} IN ($1)) IS NOT TRUE)", ["a"]),
    ('/data/n in [1, "b", true]', f"{N} IN ($1::jsonb, $2::jsonb, $3::jsonb)", [1, "b", True]),
    ("/data/n in []", "FALSE", []),
    ("/data/n nin []", "TRUE", []),
    ("/data/n in [nil]", f"({N} IS NULL OR {N} = 'null'::jsonb)", []),
    (
        '/data/s in ["a", nil]',
        f"(({S_JSONB} IS NULL OR {S_JSONB} = 'null'::jsonb) OR {S} IN ($1))",
        ["a"],
    ),
    (f'/id in ["{U1}", "{U2}"]', "id IN ($1::uuid, $2::uuid)", [uuid.UUID(U1), uuid.UUID(U2)]),
    (f'/id nin ["{U1}"]', "((id IN ($1::uuid)) IS NOT TRUE)", [uuid.UUID(U1)]),
    (f'/meta/created in ["{T1}"]', "created IN ($1::timestamptz)", [T1_VALUE]),
    # in / nin with a path: membership in an array of the same document
    (
        "/data/tag in /data/tags",
        "(CASE WHEN jsonb_typeof((data -> 'tags')) = 'array' THEN EXISTS (SELECT 1 FROM "
        "jsonb_array_elements((data -> 'tags')) AS e(v) WHERE e.v = (data -> 'tag')) "
        "ELSE FALSE END)",
        [],
    ),
    (
        "/id nin /data/ids",
        "(((CASE WHEN jsonb_typeof((data -> 'ids')) = 'array' THEN EXISTS (SELECT 1 FROM "
        "jsonb_array_elements((data -> 'ids')) AS e(v) WHERE e.v = to_jsonb(id)) "
        "ELSE FALSE END)) IS NOT TRUE)",
        [],
    ),
    # path against path
    ("/data/a eq /data/b", "(data -> 'a') = (data -> 'b')", []),
    ("/data/a gt data/b", "(data -> 'a') > (data -> 'b')", []),
    ("/data/a neq /data/b", "(((data -> 'a') = (data -> 'b')) IS NOT TRUE)", []),
    ("/data/ownerId eq /meta/createdBy", "(data -> 'ownerId') = to_jsonb(created_by)", []),
    ("/meta/created lt /meta/modified", "created < modified", []),
    # a timestamp column meets data in the wire format clients see (…46.771Z)
    (
        "/data/ended eq /meta/modified",
        "(data -> 'ended') = to_jsonb(to_char(modified AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\'))',
        [],
    ),
    # between
    (
        "/data/n between 1,5",
        f"(({NUMBER} AND {N} >= $1::jsonb) AND ({NUMBER} AND {N} <= $2::jsonb))",
        [1, 5],
    ),
    ('/data/s between "a","m"', f"({S} >= $1 AND {S} <= $2)", ["a", "m"]),
    (
        f'/meta/modified between "{T1}","2019-01-01T00:00:00+02:00"',
        "(modified >= $1::timestamptz AND modified <= $2::timestamptz)",
        [T1_VALUE, datetime(2019, 1, 1, tzinfo=timezone(timedelta(hours=2)))],
    ),
    # uuid columns bind uuid.UUID
    (f'/id eq "{U1}"', "id = $1::uuid", [uuid.UUID(U1)]),
    (f'/customerId eq "{U1}"', "customer_id = $1::uuid", [uuid.UUID(U1)]),
    (
        f'/securityGroupId neq "{U1}"',
        "((security_group_id = $1::uuid) IS NOT TRUE)",
        [uuid.UUID(U1)],
    ),
    (f'/meta/createdBy eq "{U1.upper()}"', "created_by = $1::uuid", [uuid.UUID(U1)]),
    (f'/id gt "{U1}"', "id > $1::uuid", [uuid.UUID(U1)]),
    # timestamp columns bind aware datetimes; no offset means UTC
    (f'/meta/modified gt "{T1}"', "modified > $1::timestamptz", [T1_VALUE]),
    ('/meta/created lte "2018-09-18T20:12:46.771"', "created <= $1::timestamptz", [T1_VALUE]),
    (
        '/meta/created gte "2018-09-18"',
        "created >= $1::timestamptz",
        [datetime(2018, 9, 18, tzinfo=UTC)],
    ),
    # boolean structure
    ('/data/s eq "x" and /data/n gt 1', f"({S} = $1 AND ({NUMBER} AND {N} > $2::jsonb))", ["x", 1]),
    ('/data/s eq "x" or /data/s eq "y"', f"({S} = $1 OR {S} = $2)", ["x", "y"]),
    ('not /data/s eq "x"', f"(({S} = $1) IS NOT TRUE)", ["x"]),
    (
        'not (/data/s eq "x" or /data/s eq "y") and /id eq nil',
        f"(((({S} = $1 OR {S} = $2)) IS NOT TRUE) AND id IS NULL)",
        ["x", "y"],
    ),
]


@pytest.mark.parametrize(("text", "sql", "values"), CASES, ids=[text for text, _, _ in CASES])
def test_compiles(text: str, sql: str, values: list[object]) -> None:
    assert compile_text(text) == (sql, values)


def test_timestamp_params_are_aware() -> None:
    _, values = compile_text('/meta/created gt "2018-09-18T20:12:46"')
    assert isinstance(values[0], datetime) and values[0].tzinfo is not None


def test_numbering_continues_after_the_callers_params() -> None:
    params = Params(["tenant", 42])
    sql = compile_filter(parse_filter('/data/s in ["a", "b"]'), ANY_DATA_PATH, params)
    assert sql == f"{S} IN ($3, $4)"
    assert params.values == ["tenant", 42, "a", "b"]


def test_params_do_not_alias_the_start_list() -> None:
    start: list[object] = ["tenant"]
    Params(start).add("x")
    assert start == ["tenant"]


def test_empty_groups_are_identities() -> None:
    params = Params()
    assert compile_filter(And(()), ANY_DATA_PATH, params) == "TRUE"
    assert compile_filter(Or(()), ANY_DATA_PATH, params) == "FALSE"
    assert compile_filter(Not(And(())), ANY_DATA_PATH, params) == "((TRUE) IS NOT TRUE)"


def test_bracket_form_compiles_to_text_equality() -> None:
    params = Params()
    node = equality_filter("/data/campaignId", '"abc"')
    assert compile_filter(node, INTERACTIONS, params) == "(data ->> 'campaignId') = $1"
    assert params.values == ["abc"]


# --- type errors ----------------------------------------------------------------------------


TYPE_ERRORS: list[tuple[str, str]] = [
    ("/data/n gt true", "column 12: 'gt' cannot compare booleans"),
    ("/data/n lte false", "column 13: 'lte' cannot compare booleans"),
    ("/data/n gt nil", "column 12: 'gt' cannot compare with nil"),
    ('/data/n between 1,"x"', "column 19: between needs two strings or two numbers"),
    ("/data/n between true,false", "between needs two strings or two numbers"),
    ("/data/n between nil,nil", "between needs two strings or two numbers"),
    ("/id eq 5", "column 8: '/id' is a uuid; expected a quoted uuid"),
    ('/id eq "not-a-uuid"', 'found "not-a-uuid"'),
    ('/customerId in ["x"]', "column 17: '/customerId' is a uuid"),
    ("/meta/createdBy eq true", "'/meta/createdBy' is a uuid"),
    (
        '/meta/created eq "yesterday"',
        "column 18: '/meta/created' is a timestamp; expected an ISO 8601",
    ),
    ("/meta/modified gt 5", "'/meta/modified' is a timestamp"),
    ('/meta/modified like "2018*"', "column 1: '/meta/modified' is a timestamp; 'like' needs text"),
    ('/meta/modified in ["x"]', "'/meta/modified' is a timestamp"),
    # past year 9999 (or before year 1) once converted to UTC
    (
        '/meta/modified gt "9999-12-31T23:59:59-05:00"',
        "column 19: '/meta/modified': \"9999-12-31T23:59:59-05:00\" is out of range",
    ),
    ('/meta/created lt "0001-01-01T00:00:00+00:01"', '"0001-01-01T00:00:00+00:01" is out of range'),
    ('/meta/created in ["9999-12-31T23:00:00-01:00"]', "between years 1 and 9999"),
    ('/meta/created between "2018-01-01Z","9999-12-31T20:00:00-04:00"', "is out of range"),
]


@pytest.mark.parametrize(
    "text",
    [
        '/meta/modified gt "9999-12-31T23:59:59.999Z"',
        '/meta/modified gt "9999-12-31T23:59:59-00:00"',
        '/meta/modified gt "9999-12-31T22:59:59-01:00"',
        '/meta/created lt "0001-01-01T00:00:00Z"',
        '/meta/created lt "0001-01-01T00:01:00+00:01"',
    ],
)
def test_timestamps_at_the_ends_of_the_range_are_accepted(text: str) -> None:
    compile_text(text)


@pytest.mark.parametrize(("text", "message"), TYPE_ERRORS, ids=[text for text, _ in TYPE_ERRORS])
def test_type_errors(text: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        compile_text(text)
    assert message in caught.value.detail


def test_like_on_a_path_built_in_code_is_refused() -> None:
    node = Compare(Path(("data", "a"), 1), "like", Path(("data", "b"), 11))
    with pytest.raises(BadFilter, match="'like' cannot take that operand"):
        compile_filter(node, ANY_DATA_PATH, Params())


def test_between_without_a_range_is_refused() -> None:
    node = Compare(Path(("data", "a"), 1), "between", Literal(1, 17))
    with pytest.raises(BadFilter, match="'between' cannot take that operand"):
        compile_filter(node, ANY_DATA_PATH, Params())
    ok = Compare(Path(("data", "a"), 1), "between", Range(Literal(1, 17), Literal(2.5, 19)))
    assert "$2::jsonb" in compile_filter(ok, ANY_DATA_PATH, Params())


# --- policies and paths ---------------------------------------------------------------------


INTERACTIONS_ALLOWED = (
    "allowed: /id, /meta/created, /meta/modified, /data/campaignId, /data/contactHouseholdId, "
    "/data/contactId, /data/householdId"
)


@pytest.mark.parametrize(
    "text",
    [
        '/data/foo eq "x"',
        '/customerId eq "x"',
        '/securityGroupId eq "x"',
        "/meta/createdBy eq nil",
        '/data/campaignId/x eq "x"',
    ],
)
def test_restricted_policy_names_what_is_allowed(text: str) -> None:
    with pytest.raises(BadFilter) as caught:
        compile_text(text, INTERACTIONS)
    name = text.split()[0]
    assert (
        caught.value.detail
        == f"column 1: '{name}' cannot be filtered on here; {INTERACTIONS_ALLOWED}"
    )


def test_restricted_policy_checks_the_right_hand_path_too() -> None:
    with pytest.raises(BadFilter, match="column 21: '/data/other' cannot be filtered on here"):
        compile_text("/data/campaignId in /data/other", INTERACTIONS)


@pytest.mark.parametrize(
    "text",
    [
        '/data/campaignId eq "x"',
        '/data/contactId in ["a"]',
        f'/id eq "{U1}"',
        f'/meta/created gt "{T1}"',
        f'meta/modified lt "{T1}"',
    ],
)
def test_restricted_policy_allows_its_paths(text: str) -> None:
    sql, _ = compile_text(text, INTERACTIONS)
    assert "$1" in sql


def test_explicit_columns_override_the_default() -> None:
    policy = FieldPolicy(frozenset({"/data/a"}), frozenset({"/customerId"}))
    assert compile_text(f'/customerId eq "{U1}"', policy)[0] == "customer_id = $1::uuid"
    with pytest.raises(BadFilter) as caught:
        compile_text(f'/id eq "{U1}"', policy)
    assert caught.value.detail.endswith("allowed: /customerId, /data/a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/meta/etag eq 1", "column 1: '/meta/etag' is not a field; allowed: /id, /customerId"),
        ("/meta eq 1", "'/meta' is not a field"),
        ("/foo eq 1", "column 1: '/foo' is not a field; allowed:"),
        ("/data eq 1", "column 1: name a field under /data"),
        (
            "/data/status eq complete",
            "column 17: '/complete' is not a field (string values need double quotes: \"x\")",
        ),
    ],
)
def test_unknown_paths_are_named(text: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        compile_text(text)
    assert message in caught.value.detail


def test_any_data_path_lists_every_column() -> None:
    with pytest.raises(BadFilter) as caught:
        compile_text("/foo eq 1")
    assert caught.value.detail.endswith(
        "allowed: /id, /customerId, /securityGroupId, /meta/created, /meta/modified, "
        "/meta/createdBy, /meta/modifiedBy, /data/..."
    )


@pytest.mark.parametrize("segment", ["a'b", "a b", "a)--", "", "ü", "x" * 65, "a\\b", "$1"])
def test_segments_are_rechecked_before_reaching_sql(segment: str) -> None:
    # ASTs built in code bypass the parser; to_sql must still refuse to emit them.
    node = Compare(Path(("data", segment), 1), "eq", Literal("x", 20))
    with pytest.raises(BadFilter, match="is not allowed"):
        compile_filter(node, ANY_DATA_PATH, Params())


def test_an_empty_path_built_in_code_is_refused() -> None:
    node = Compare(Path((), 1), "eq", Literal("x", 5))
    with pytest.raises(BadFilter, match="the path is empty"):
        compile_filter(node, ANY_DATA_PATH, Params())


@pytest.mark.parametrize(
    "paths",
    [
        ["data/campaignId"],  # no leading slash
        ["/meta/created"],  # not under /data
        ["/data"],  # nothing under /data
        ["/data/it's"],  # fails the allow-list
    ],
)
def test_policy_refuses_malformed_declarations(paths: list[str]) -> None:
    with pytest.raises(ValueError, match="allowed data path"):
        FieldPolicy(frozenset(paths))


def test_policy_refuses_unknown_columns() -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        FieldPolicy(None, frozenset({"/meta/etag"}))


# --- hostile values never reach the SQL text --------------------------------------------------


HOSTILE = [
    "'; DROP TABLE x; --",
    "O'Brien",
    "\\'; SELECT 1; --",
    "$1 OR TRUE",
    "$$ evil $$",
    ") OR (1=1",
    '"quoted" \\"twice\\"',
    "E'\\x41'",
    "/* c */ --",
    "line\nbreak\r\ttab",
    "unicode ☃ 😀 é ﬁ",
    "%_*? wild \\",
    "' || pg_sleep(10) || '",
]
HOSTILE_FORMS = [
    "/data/s eq {v}",
    "/data/s neq {v}",
    "/data/s gt {v}",
    "/data/s lte {v}",
    "/data/s like {v}",
    "/id like {v}",
    "/data/s in [{v}, {v}]",
    "/data/s nin [{v}, 1]",
    "/data/s between {v},{v}",
    "not (/data/a/b eq {v} or /data/c in [{v}])",
]
BENIGN = "x"


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("form", HOSTILE_FORMS)
def test_hostile_values_only_travel_as_params(form: str, value: str) -> None:
    sql, values = compile_text(form.format(v=json.dumps(value)))
    assert value not in sql
    assert "DROP" not in sql and "pg_sleep" not in sql
    # The SQL depends on the shape of the filter only, never on the value in it.
    benign_sql, _ = compile_text(form.format(v=json.dumps(BENIGN)))
    assert sql == benign_sql
    assert any(isinstance(bound, str) and len(bound) >= len(value) - 4 for bound in values)


def test_random_hostile_expressions_only_travel_as_params() -> None:
    rng = random.Random(20240601)
    forms = [form for form in HOSTILE_FORMS if "{v}" in form]
    for _ in range(300):
        picks = [(rng.choice(forms), rng.choice(HOSTILE)) for _ in range(rng.randint(1, 5))]
        joiner = rng.choice([" and ", " or ", " and not "])
        text = joiner.join(f"({form.format(v=json.dumps(value))})" for form, value in picks)
        sql, values = compile_text(text)
        for _, value in picks:
            assert value not in sql
        benign = joiner.join(f"({form.format(v=json.dumps(BENIGN))})" for form, _ in picks)
        assert sql == compile_text(benign)[0]
        assert len(values) == sql.count("$")


def test_hostile_values_in_typed_columns_are_refused_not_spliced() -> None:
    for value, column in itertools.product(HOSTILE, ["/id", "/meta/created"]):
        with pytest.raises(BadFilter):
            compile_text(f"{column} eq {json.dumps(value)}")


# --- sorting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path_text", "direction", "sql"),
    [
        ("data/name", "ASC", "(data -> 'name') ASC"),
        ("/data/name", "desc", "(data -> 'name') DESC"),
        ("/data/a/b", "Asc", "(data -> 'a' -> 'b') ASC"),
        ("/data/id", "ASC", "id ASC"),  # Polis clients mean the document id
        ("data/id", "desc", "id DESC"),
        ("/id", "asc", "id ASC"),
        ("meta/modified", "DESC", "modified DESC"),
        ("/meta/created", "asc", "created ASC"),
        ("/customerId", "asc", "customer_id ASC"),
        ("/meta/modifiedBy", "asc", "modified_by ASC"),
    ],
)
def test_compile_sort(path_text: str, direction: str, sql: str) -> None:
    assert compile_sort(path_text, direction, ANY_DATA_PATH) == sql


def test_sort_with_a_restricted_policy() -> None:
    assert compile_sort("/data/id", "ASC", INTERACTIONS) == "id ASC"
    assert compile_sort("/data/campaignId", "DESC", INTERACTIONS) == "(data -> 'campaignId') DESC"
    with pytest.raises(BadFilter) as caught:
        compile_sort("/data/name", "ASC", INTERACTIONS)
    assert caught.value.detail == (
        f"sort path '/data/name': '/data/name' cannot be sorted by here; {INTERACTIONS_ALLOWED}"
    )


@pytest.mark.parametrize(
    ("path_text", "direction", "message"),
    [
        ("/data/name", "up", "sort direction must be ASC or DESC, found 'up'"),
        ("/data/name", "", "sort direction must be ASC or DESC"),
        ("/data/name", "ASC; DROP", "sort direction must be ASC or DESC"),
        ("", "ASC", "sort path is empty"),
        ("/data/na'me", "ASC", "sort path '/data/na'me': column 7: path segment 'na'me'"),
        ("/data", "ASC", "name a field under /data"),
        ("/foo", "ASC", "sort path '/foo': '/foo' is not a field"),
        ("/meta/etag", "ASC", "'/meta/etag' is not a field"),
    ],
)
def test_compile_sort_rejects(path_text: str, direction: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        compile_sort(path_text, direction, ANY_DATA_PATH)
    assert message in caught.value.detail
