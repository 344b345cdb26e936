"""List paths (FieldPolicy.list_paths): `eq` means "the list holds it", compiled to a
jsonb containment a GIN index serves; ordering comparisons are refused."""

from __future__ import annotations

import pytest

from polis_api.errors import BadFilter
from polis_api.filtering.parser import equality_filter, parse_filter
from polis_api.filtering.to_sql import FieldPolicy, Params, compile_filter

FLAGS = "(data -> 'flags')"
POLICY = FieldPolicy(
    frozenset({"/data/flags", "/data/name"}), list_paths=frozenset({"/data/flags"})
)
ANY_PATH_WITH_LIST = FieldPolicy(list_paths=frozenset({"/data/flags"}))
NIL = f"({FLAGS} IS NULL OR {FLAGS} = 'null'::jsonb)"


def compile_text(text: str, policy: FieldPolicy = POLICY) -> tuple[str, list[object]]:
    params = Params()
    return compile_filter(parse_filter(text), policy, params), params.values


CASES = [
    ('/data/flags eq "burst"', f"{FLAGS} @> $1::jsonb", [["burst"]]),
    ("/data/flags eq 3", f"{FLAGS} @> $1::jsonb", [[3]]),
    ("/data/flags eq true", f"{FLAGS} @> $1::jsonb", [[True]]),
    ('/data/flags neq "burst"', f"(({FLAGS} @> $1::jsonb) IS NOT TRUE)", [["burst"]]),
    (
        '/data/flags in ["a", "b"]',
        f"({FLAGS} @> $1::jsonb OR {FLAGS} @> $2::jsonb)",
        [["a"], ["b"]],
    ),
    (
        '/data/flags nin ["a", "b"]',
        f"((({FLAGS} @> $1::jsonb OR {FLAGS} @> $2::jsonb)) IS NOT TRUE)",
        [["a"], ["b"]],
    ),
    ('/data/flags in ["a", nil]', f"({NIL} OR {FLAGS} @> $1::jsonb)", [["a"]]),
    ("/data/flags in []", "FALSE", []),
    ("/data/flags nin []", "TRUE", []),
    ("/data/flags eq nil", NIL, []),
    ("/data/flags neq nil", f"({FLAGS} IS NOT NULL AND {FLAGS} <> 'null'::jsonb)", []),
    # Other paths keep their shapes (and their expression indexes).
    ('/data/name eq "x"', "(data ->> 'name') = $1", ["x"]),
]


@pytest.mark.parametrize(("text", "sql", "values"), CASES, ids=[text for text, _, _ in CASES])
def test_a_list_path_compiles_to_containment(text: str, sql: str, values: list[object]) -> None:
    assert compile_text(text) == (sql, values)
    assert compile_text(text, ANY_PATH_WITH_LIST) == (sql, values)


def test_the_bracket_form_means_holds_too() -> None:
    params = Params()
    sql = compile_filter(equality_filter("/data/flags", "burst"), POLICY, params)
    assert (sql, params.values) == (f"{FLAGS} @> $1::jsonb", [["burst"]])


@pytest.mark.parametrize(
    "text",
    [
        '/data/flags gt "a"',
        "/data/flags lte 3",
        '/data/flags like "b*"',
        '/data/flags between "a","b"',
        "/data/flags eq /data/name",
        "/data/flags in /data/name",
    ],
)
def test_ordering_or_matching_a_list_is_refused(text: str) -> None:
    with pytest.raises(BadFilter, match="is a list: use eq, neq, in or nin"):
        compile_text(text)


def test_a_list_path_must_be_an_allowed_path() -> None:
    with pytest.raises(ValueError, match="not allowed data paths"):
        FieldPolicy(frozenset({"/data/name"}), list_paths=frozenset({"/data/flags"}))


def test_a_malformed_list_path_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed data path"):
        FieldPolicy(list_paths=frozenset({"flags"}))
