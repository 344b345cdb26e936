"""Filter text → AST: a table of good expressions, a table of bad ones, and the bounds."""

from __future__ import annotations

import pytest

from polis_api.errors import BadFilter
from polis_api.filtering.ast import (
    And,
    ArrayLiteral,
    Compare,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Range,
    Scalar,
)
from polis_api.filtering.parser import equality_filter, parse_filter, parse_path


def path(text: str, position: int = 1) -> Path:
    return Path(tuple(text.strip("/").split("/")), position)


def lit(value: Scalar, position: int) -> Literal:
    return Literal(value, position)


def eq(name: str, value: Scalar, position: int, value_position: int) -> Compare:
    return Compare(path(name, position), "eq", lit(value, value_position))


A1 = eq("a", 1, 1, 6)  # "a eq 1" at the start of the text

GOOD: list[tuple[str, Node]] = [
    # every operator
    ('/data/status eq "complete"', eq("data/status", "complete", 1, 17)),
    ('/id neq "x"', Compare(path("id"), "neq", lit("x", 9))),
    ("/data/age gt 30", Compare(path("data/age"), "gt", lit(30, 14))),
    ("/data/age gte -1.5", Compare(path("data/age"), "gte", lit(-1.5, 15))),
    ("/data/age lt 1e3", Compare(path("data/age"), "lt", lit(1000.0, 14))),
    ("/data/age lte 0", Compare(path("data/age"), "lte", lit(0, 15))),
    ('/data/name like "Sm*th?"', Compare(path("data/name"), "like", lit("Sm*th?", 17))),
    (
        '/data/status in ["a", "b"]',
        Compare(path("data/status"), "in", ArrayLiteral((lit("a", 18), lit("b", 23)), 17)),
    ),
    ("/data/status nin []", Compare(path("data/status"), "nin", ArrayLiteral((), 18))),
    (
        '/data/x in [1, true, nil, "s"]',
        Compare(
            path("data/x"),
            "in",
            ArrayLiteral((lit(1, 13), lit(True, 16), lit(None, 22), lit("s", 27)), 12),
        ),
    ),
    ("/data/tag in /data/tags", Compare(path("data/tag"), "in", path("data/tags", 14))),
    ("/data/tag nin data/tags", Compare(path("data/tag"), "nin", path("data/tags", 15))),
    (
        "/data/age between 18,65",
        Compare(path("data/age"), "between", Range(lit(18, 19), lit(65, 22))),
    ),
    (
        '/data/name between "a" , "m"',
        Compare(path("data/name"), "between", Range(lit("a", 20), lit("m", 26))),
    ),
    # nil / null / booleans, any case
    ("/data/x eq nil", eq("data/x", None, 1, 12)),
    ("/data/x eq null", eq("data/x", None, 1, 12)),
    ("/data/x neq NULL", Compare(path("data/x"), "neq", lit(None, 13))),
    ("/data/x eq Nil", eq("data/x", None, 1, 12)),
    ("/data/ok eq true", eq("data/ok", True, 1, 13)),
    ("/data/ok neq FALSE", Compare(path("data/ok"), "neq", lit(False, 14))),
    # meta and envelope paths, with and without the leading slash
    (
        '/meta/modified gt "2018-09-18T20:12:46.771Z"',
        Compare(path("meta/modified"), "gt", lit("2018-09-18T20:12:46.771Z", 19)),
    ),
    ('meta/createdBy eq "u"', eq("meta/createdBy", "u", 1, 19)),
    (
        "/customerId eq /securityGroupId",
        Compare(path("customerId"), "eq", path("securityGroupId", 16)),
    ),
    ("/data/x eq data/y", Compare(path("data/x"), "eq", path("data/y", 12))),
    ("/data/a-b_c/0 eq 1", eq("data/a-b_c/0", 1, 1, 18)),
    ("/data/and eq 1", eq("data/and", 1, 1, 14)),
    # and / or / not, precedence and parentheses
    ("a eq 1 and b eq 2", And((A1, eq("b", 2, 12, 17)))),
    ("a eq 1 or b eq 2", Or((A1, eq("b", 2, 11, 16)))),
    ("a eq 1 and b eq 2 and c eq 3", And((A1, eq("b", 2, 12, 17), eq("c", 3, 23, 28)))),
    ("a eq 1 or b eq 2 and c eq 3", Or((A1, And((eq("b", 2, 11, 16), eq("c", 3, 22, 27)))))),
    (
        "(a eq 1 or b eq 2) and c eq 3",
        And((Or((eq("a", 1, 2, 7), eq("b", 2, 12, 17))), eq("c", 3, 24, 29))),
    ),
    ("not a eq 1", Not(eq("a", 1, 5, 10))),
    ("not a eq 1 and b eq 2", And((Not(eq("a", 1, 5, 10)), eq("b", 2, 16, 21)))),
    ("NOT (a eq 1 OR b eq 2)", Not(Or((eq("a", 1, 6, 11), eq("b", 2, 16, 21))))),
    ("not not a eq 1", Not(Not(eq("a", 1, 9, 14)))),
    ("((a eq 1))", eq("a", 1, 3, 8)),
    ('a EQ 1 AnD b Like "x"', And((A1, Compare(path("b", 12), "like", lit("x", 19))))),
    # strings: escapes, keywords inside strings, no space before a quote or bracket
    (
        r'a eq "q\" b\\ s\/ t\t n\n r\r f\f b\b"',
        eq("a", 'q" b\\ s/ t\t n\n r\r f\f b\b', 1, 6),
    ),
    (r'a eq "\u00e9\ud83d\ude00"', eq("a", "é😀", 1, 6)),
    ('a eq "and or not"', eq("a", "and or not", 1, 6)),
    ('a eq"x"', eq("a", "x", 1, 5)),
    ("a in[1,2]", Compare(path("a"), "in", ArrayLiteral((lit(1, 6), lit(2, 8)), 5))),
    ('a eq ""', eq("a", "", 1, 6)),
    # numbers
    ("a eq -7", eq("a", -7, 1, 6)),
    ("a eq 12.50", eq("a", 12.5, 1, 6)),
    ("a eq 3E-2", eq("a", 0.03, 1, 6)),
    ("a eq 0", eq("a", 0, 1, 6)),
    # whitespace of any kind between tokens
    ("  a\teq\n1  ", eq("a", 1, 3, 8)),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[text for text, _ in GOOD])
def test_parses(text: str, expected: Node) -> None:
    assert parse_filter(text) == expected


def test_numbers_keep_their_python_type() -> None:
    node = parse_filter("a eq 10")
    assert isinstance(node, Compare) and isinstance(node.right, Literal)
    assert type(node.right.value) is int
    node = parse_filter("a eq 1.0")
    assert isinstance(node, Compare) and isinstance(node.right, Literal)
    assert type(node.right.value) is float


BAD: list[tuple[str, int, str]] = [
    (
        "a equals 1",
        3,
        "expected an operator (eq, neq, gt, gte, lt, lte, like, in, nin, between), found 'equals'",
    ),
    ("a eq", 5, "found end of input"),
    ('a eq "abc', 6, "unterminated string"),
    (r'a eq "\q"', 7, "invalid escape '\\q'"),
    (r'a eq "\u12"', 7, "four hex digits"),
    (r'a eq "\ud800"', 6, "unpaired"),
    (r'a eq "\u0000"', 6, "\\u0000"),
    ("a eq 1 b", 8, "expected 'and', 'or' or end of input, found 'b'"),
    ("a eq true false", 11, "found 'false'"),
    ("a between 1", 12, "expected ',' then the upper bound"),
    ("a between 1 2", 13, "found '2'"),
    ("a between /b,/c", 11, "expected a literal"),
    ("a between 1,", 13, "found end of input"),
    ("a in 5", 6, "expected an array [...] or a path after 'in', found '5'"),
    ('a nin "x"', 7, "expected an array [...] or a path after 'nin'"),
    ("a like 5", 8, 'expected a "string" pattern'),
    ("a like /b", 8, "found '/b'"),
    ("(a eq 1", 8, "expected 'and', 'or' or ')', found end of input"),
    ("a eq 1)", 7, "found ')'"),
    ("a eq 1 and", 11, "expected a path such as /data/status, found end of input"),
    ("a eq 1 or", 10, "found end of input"),
    ("and eq 1", 1, "expected a path such as /data/status, found 'and'"),
    ("a eq 1 and and b eq 2", 12, "found 'and'"),
    ('"x" eq 1', 1, "found '\"x\"'"),
    ("not", 4, "found end of input"),
    ('a eq "x" and b', 15, "expected an operator"),
    ("a eq [1]", 6, "expected a value"),
    ("a in [1,]", 9, "expected a literal"),
    ("a in [1 2]", 9, "expected ',' or ']', found '2'"),
    ("a in [/b]", 7, "expected a literal"),
    ("a eq 01", 6, "expected a JSON number, found '01'"),
    ("a eq NaN", 6, "NaN and Infinity are not allowed"),
    ("a eq -Infinity", 6, "NaN and Infinity"),
    ("a eq 1e999", 6, "out of range"),
    ("a eq 'x'", 6, "double quotes"),
    ("/data/st$tus eq 1", 7, "path segment 'st$tus' is not allowed"),
    ("/data/stätus eq 1", 7, "path segment 'stätus'"),
    ("/data//x eq 1", 7, "empty segment"),
    ("/ eq 1", 2, "empty segment"),
    ("data/ eq 1", 6, "empty segment"),
    ("/data/" + "x" * 65 + " eq 1", 7, "segments are 1-64 letters"),
    ("a eq 1 , 2", 8, "found ','"),
]


@pytest.mark.parametrize(("text", "column", "message"), BAD, ids=[text for text, _, _ in BAD])
def test_rejects(text: str, column: int, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter(text)
    assert caught.value.detail.startswith(f"column {column}: ")
    assert message in caught.value.detail


@pytest.mark.parametrize("text", ["", " ", "\t\n  "])
def test_empty_filter_is_refused(text: str) -> None:
    with pytest.raises(BadFilter, match="empty"):
        parse_filter(text)


def test_long_tokens_are_shortened_in_messages() -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter("a " + "x" * 500)
    assert len(caught.value.detail) < 200


# --- bounds ---------------------------------------------------------------------------


def string_filter(length: int) -> str:
    return 'a eq "' + "x" * (length - 7) + '"'


def test_length_at_the_limit_is_accepted() -> None:
    text = string_filter(4096)
    assert len(text) == 4096
    assert parse_filter(text) == eq("a", "x" * 4089, 1, 6)


def test_length_past_the_limit_is_refused() -> None:
    with pytest.raises(BadFilter, match="filter is 4097 characters; the limit is 4096"):
        parse_filter(string_filter(4097))


def clauses(count: int) -> str:
    return " and ".join(["a eq 1"] * count)


def test_64_clauses_are_accepted() -> None:
    node = parse_filter(clauses(64))
    assert isinstance(node, And) and len(node.items) == 64


def test_65_clauses_are_refused() -> None:
    with pytest.raises(BadFilter) as caught:
        parse_filter(clauses(65))
    assert caught.value.detail == (
        f"column {64 * 11 + 1}: filter has more than 64 comparisons; the limit is 64"
    )


def test_clauses_count_across_or_and_not() -> None:
    text = " or ".join(["not (a eq 1 and b eq 2)"] * 33)  # 66 comparisons
    with pytest.raises(BadFilter, match="more than 64 comparisons"):
        parse_filter(text)


def parenthesised(depth: int) -> str:
    return "(" * depth + "a eq 1" + ")" * depth


def test_depth_32_is_accepted() -> None:
    assert parse_filter(parenthesised(32)) == eq("a", 1, 33, 38)
    node = parse_filter("not " * 32 + "a eq 1")
    for _ in range(32):
        assert isinstance(node, Not)
        node = node.item
    assert node == eq("a", 1, 129, 134)


def test_depth_33_is_refused() -> None:
    with pytest.raises(BadFilter, match=r"^column 33: filter nests deeper than 32 levels"):
        parse_filter(parenthesised(33))
    with pytest.raises(BadFilter, match=r"^column 129: filter nests deeper than 32"):
        parse_filter("not " * 33 + "a eq 1")


def test_parentheses_and_not_share_the_depth_budget() -> None:
    with pytest.raises(BadFilter, match="nests deeper"):
        parse_filter("not (" * 17 + "a eq 1" + ")" * 17)


def test_custom_limits_are_honoured() -> None:
    with pytest.raises(BadFilter, match="limit is 10"):
        parse_filter("a eq 1 and b eq 2", max_length=10)
    with pytest.raises(BadFilter, match="more than 1 comparisons"):
        parse_filter("a eq 1 and b eq 2", max_clauses=1)
    with pytest.raises(BadFilter, match="deeper than 1 levels"):
        parse_filter("((a eq 1))", max_depth=1)


@pytest.mark.parametrize(
    "text",
    ["(" * 200_000, "not " * 50_000, "(" * 200_000 + "a eq 1" + ")" * 200_000],
    ids=["200k-parens", "50k-nots", "200k-balanced"],
)
@pytest.mark.parametrize("max_length", [4096, 2_000_000], ids=["default-length", "huge-length"])
def test_hostile_nesting_is_refused_without_recursing(text: str, max_length: int) -> None:
    # Speed is the benchmark's business; here: a clean 400, never a RecursionError.
    with pytest.raises(BadFilter):
        parse_filter(text, max_length=max_length)


def test_no_recursion_error_even_with_a_huge_depth_limit() -> None:
    with pytest.raises(BadFilter, match="nests too deeply"):
        parse_filter("(" * 100_000, max_length=200_000, max_depth=1_000_000)


# --- paths and the bracket form -------------------------------------------------------------


def test_parse_path_with_and_without_leading_slash() -> None:
    assert parse_path("/data/status") == parse_path("data/status") == path("data/status")
    assert parse_path("meta/modified", 9) == Path(("meta", "modified"), 9)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("abc", "abc"),
        ("5", "5"),  # always text: the ->> comparison matches a stored 5 too
        ('"abc"', "abc"),
        ('"a\\"b"', 'a"b'),
        ('""', ""),
        ('"', '"'),
        ("true", "true"),
        ("it's", "it's"),
    ],
)
def test_equality_filter(raw: str, value: str) -> None:
    assert equality_filter("/data/campaignId", raw) == Compare(
        path("data/campaignId"), "eq", lit(value, 1)
    )


@pytest.mark.parametrize(
    ("path_text", "raw", "message"),
    [
        ("/data/campaignId", '"a"b"', "after the closing"),
        ("/data/campaignId", '"\\x"', "invalid escape"),
        ("/data/campaignId", "a\x00b", "\\u0000"),
        ("/data/camp aign", "x", "path segment 'camp aign'"),
    ],
)
def test_equality_filter_rejects(path_text: str, raw: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        equality_filter(path_text, raw)
    assert caught.value.detail.startswith("column ")
    assert message in caught.value.detail
