"""Filter text → AST: a tokenizer, then a recursive-descent parser
(the grammar is in docs/api.md, Lists).

Every failure is a ``BadFilter`` whose detail starts with the 1-based column of the
offending token and says what was expected there. Length, clause count and nesting
depth are bounded *while* parsing, so hostile input is refused before it can recurse
deeply or run long.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

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

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "like", "in", "nin", "between")
LITERAL_WORDS: dict[str, Scalar] = {"true": True, "false": False, "nil": None, "null": None}
# Bare words that can never be a path without a leading "/", so `a eq 1 and and ...`
# reports the stray keyword instead of treating it as a field name.
RESERVED_WORDS = frozenset({"and", "or", "not", *OPERATORS, *LITERAL_WORDS})
NON_FINITE_WORDS = frozenset({"nan", "-nan", "infinity", "-infinity", "+infinity", "inf", "-inf"})

# The identifier allow-list: to_sql emits segments as SQL string literals, which is
# only safe because nothing but these characters can get through.
SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?")

_EXPECTED_OPERATOR = "an operator (" + ", ".join(OPERATORS) + ")"
_EXPECTED_VALUE = 'a value ("string", number, true, false, nil, null or a path)'
_EXPECTED_LITERAL = 'a literal ("string", number, true, false, nil or null)'
_EXPECTED_PATH = "a path such as /data/status"
_SIMPLE_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_SHOWN_TOKEN_CHARS = 40


class TokenKind(Enum):
    WORD = "word"  # a path, keyword, operator, number or true/false/nil/null
    STRING = "string"
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    END = "end of input"


_PUNCTUATION = {kind.value: kind for kind in TokenKind if len(kind.value) == 1}
_WORD_TERMINATORS = frozenset('()[],"')


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # the source text, quotes included for strings
    position: int  # 1-based column
    value: str = ""  # the decoded value of a string token


def fail(position: int, message: str) -> BadFilter:
    return BadFilter(f"column {position}: {message}")


def describe(token: Token) -> str:
    if token.kind is TokenKind.END:
        return "end of input"
    shown = token.text
    if len(shown) > _SHOWN_TOKEN_CHARS:
        shown = shown[:_SHOWN_TOKEN_CHARS] + "…"
    return f"'{shown}'"


def expected(what: str, token: Token) -> BadFilter:
    return fail(token.position, f"expected {what}, found {describe(token)}")


# --- tokenizer -------------------------------------------------------------------


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif char in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[char], char, index + 1))
            index += 1
        elif char == '"':
            token = read_string(text, index)
            tokens.append(token)
            index += len(token.text)
        else:
            end = index
            while end < len(text) and not _ends_word(text[end]):
                end += 1
            tokens.append(Token(TokenKind.WORD, text[index:end], index + 1))
            index = end
    tokens.append(Token(TokenKind.END, "", len(text) + 1))
    return tokens


def _ends_word(char: str) -> bool:
    return char.isspace() or char in _WORD_TERMINATORS


def read_string(text: str, start: int) -> Token:
    """Read the JSON string literal opening at ``text[start]`` (a double quote)."""
    units: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            raw = text[start : index + 1]
            return Token(TokenKind.STRING, raw, start + 1, storable("".join(units), start + 1))
        if char == "\\":
            decoded, index = _read_escape(text, index)
            units.append(decoded)
        else:
            units.append(char)
            index += 1
    raise fail(start + 1, "unterminated string: expected a closing '\"', found end of input")


def _read_escape(text: str, index: int) -> tuple[str, int]:
    """Decode the escape at ``text[index]`` (a backslash); return it and the next index."""
    letter = text[index + 1 : index + 2]
    if letter in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[letter], index + 2
    if letter == "u":
        digits = text[index + 2 : index + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return chr(int(digits, 16)), index + 6
        shown = text[index : index + 6]
        raise fail(index + 1, f"invalid escape '{shown}': \\u needs four hex digits")
    if not letter:
        raise fail(index + 1, "unterminated string: expected a closing '\"', found end of input")
    raise fail(
        index + 1,
        f"invalid escape '\\{letter}'; use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX",
    )


def storable(value: str, position: int) -> str:
    """``value`` ready to bind, or BadFilter where PostgreSQL would fail (a 500 later)."""
    # \uXXXX escapes are UTF-16 code units: pair the surrogates and refuse lone ones,
    # and NUL, which neither PostgreSQL text nor jsonb can hold.
    try:
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise fail(position, "string contains an unpaired \\uD800-\\uDFFF surrogate") from None
    if "\x00" in value:
        raise fail(position, "string contains \\u0000, which cannot be stored or compared")
    return value


# --- paths and literals ------------------------------------------------------------


def parse_path(text: str, position: int = 1) -> Path:
    """``/data/status`` or ``data/status`` → Path; each segment must pass the allow-list."""
    body = text.removeprefix("/")
    column = position + len(text) - len(body)
    segments = body.split("/")
    for segment in segments:
        if not segment:
            raise fail(column, f"path '{text}' has an empty segment")
        if not SEGMENT_RE.fullmatch(segment):
            raise fail(
                column,
                f"path segment '{segment}' is not allowed; "
                "segments are 1-64 letters, digits, '_' or '-'",
            )
        column += len(segment) + 1
    return Path(tuple(segments), position)


def word_literal(token: Token) -> Literal | None:
    """The literal a bare word spells (true/false/nil/null/number), or None for a path."""
    lowered = token.text.lower()
    if lowered in LITERAL_WORDS:
        return Literal(LITERAL_WORDS[lowered], token.position)
    if lowered in NON_FINITE_WORDS:
        raise fail(token.position, f"NaN and Infinity are not allowed, found {describe(token)}")
    match = NUMBER_RE.fullmatch(token.text)
    if match is None:
        if token.text[0] in "+-.0123456789" and "/" not in token.text:
            raise expected("a JSON number", token)
        return None
    if match["fraction"] is None and match["exponent"] is None:
        return Literal(int(token.text), token.position)
    number = float(token.text)
    if math.isinf(number):
        raise fail(token.position, f"number {describe(token)} is out of range")
    return Literal(number, token.position)


# --- parser ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    max_clauses: int
    max_depth: int


class _Parser:
    def __init__(self, tokens: list[Token], limits: Limits) -> None:
        self.tokens = tokens
        self.index = 0
        self.limits = limits
        self.depth = 0
        self.clauses = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.END:
            self.index += 1
        return token

    def at_keyword(self, keyword: str) -> bool:
        token = self.peek()
        return token.kind is TokenKind.WORD and token.text.lower() == keyword

    def expect(self, kind: TokenKind, what: str) -> Token:
        token = self.advance()
        if token.kind is not kind:
            raise expected(what, token)
        return token

    def document(self) -> Node:
        node = self.expression()
        token = self.peek()
        if token.kind is not TokenKind.END:
            raise expected("'and', 'or' or end of input", token)
        return node

    def expression(self) -> Node:
        items = [self.term()]
        while self.at_keyword("or"):
            self.advance()
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self) -> Node:
        items = [self.factor()]
        while self.at_keyword("and"):
            self.advance()
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self) -> Node:
        token = self.peek()
        if self.at_keyword("not"):
            self.descend(token)
            node: Node = Not(self.factor())
        elif token.kind is TokenKind.LPAREN:
            self.descend(token)
            node = self.expression()
            self.expect(TokenKind.RPAREN, "'and', 'or' or ')'")
        else:
            return self.comparison()
        self.depth -= 1
        return node

    def descend(self, token: Token) -> None:
        # Checked before recursing, so depth (and the Python stack) stays bounded.
        self.advance()
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise fail(
                token.position,
                f"filter nests deeper than {self.limits.max_depth} levels of parentheses and 'not'",
            )

    def comparison(self) -> Compare:
        path = self.path()
        self.clauses += 1
        if self.clauses > self.limits.max_clauses:
            raise fail(
                path.position,
                f"filter has more than {self.limits.max_clauses} comparisons; "
                f"the limit is {self.limits.max_clauses}",
            )
        token = self.advance()
        op = token.text.lower()
        if token.kind is not TokenKind.WORD or op not in OPERATORS:
            raise expected(_EXPECTED_OPERATOR, token)
        return Compare(path, op, self.operand(op))

    def path(self) -> Path:
        token = self.peek()
        if token.kind is not TokenKind.WORD or token.text.lower() in RESERVED_WORDS:
            raise expected(_EXPECTED_PATH, token)
        self.advance()
        return parse_path(token.text, token.position)

    def operand(self, op: str) -> Literal | ArrayLiteral | Path | Range:
        if op == "between":
            low = self.literal()
            self.expect(TokenKind.COMMA, "',' then the upper bound (between takes low,high)")
            return Range(low, self.literal())
        if op in ("in", "nin"):
            if self.peek().kind is TokenKind.LBRACKET:
                return self.array()
            return self.operand_path(f"an array [...] or a path after '{op}'")
        if op == "like":
            token = self.advance()
            if token.kind is not TokenKind.STRING:
                raise expected("a \"string\" pattern after 'like'", token)
            return Literal(token.value, token.position)
        return self.value()

    def operand_path(self, what: str) -> Path:
        token = self.peek()
        if token.kind is TokenKind.WORD and self.could_be_path(token):
            return self.path()
        raise expected(what, token)

    def value(self) -> Literal | Path:
        token = self.peek()
        if token.kind is TokenKind.STRING:
            self.advance()
            return Literal(token.value, token.position)
        if token.kind is TokenKind.WORD:
            literal = word_literal(token)
            if literal is not None:
                self.advance()
                return literal
            if token.text.startswith("'"):
                raise fail(token.position, f"strings take double quotes, found {describe(token)}")
            if self.could_be_path(token):
                return self.path()
        raise expected(_EXPECTED_VALUE, token)

    @staticmethod
    def could_be_path(token: Token) -> bool:
        return token.text.lower() not in RESERVED_WORDS and word_literal(token) is None

    def literal(self) -> Literal:
        token = self.advance()
        if token.kind is TokenKind.STRING:
            return Literal(token.value, token.position)
        literal = word_literal(token) if token.kind is TokenKind.WORD else None
        if literal is None:
            raise expected(_EXPECTED_LITERAL, token)
        return literal

    def array(self) -> ArrayLiteral:
        opening = self.advance()
        items: list[Literal] = []
        if self.peek().kind is TokenKind.RBRACKET:
            self.advance()
            return ArrayLiteral((), opening.position)
        items.append(self.literal())
        while self.peek().kind is TokenKind.COMMA:
            self.advance()
            items.append(self.literal())
        self.expect(TokenKind.RBRACKET, "',' or ']'")
        return ArrayLiteral(tuple(items), opening.position)


def equality_filter(path_text: str, raw_value: str, position: int = 1) -> Node:
    """The ``filter[/data/campaignId]=<value>`` form: equality with a string value.

    The value is taken as text (so ``5`` still matches a stored 5 via ``->>``), except
    that a JSON-quoted ``"x"`` is unquoted, as clients that quote everything expect.
    """
    path = parse_path(path_text, position)
    if len(raw_value) >= 2 and raw_value.startswith('"') and raw_value.endswith('"'):
        token = read_string(raw_value, 0)
        if len(token.text) != len(raw_value):
            raise fail(position, f"expected nothing after the closing '\"' in '{raw_value}'")
        return Compare(path, "eq", Literal(token.value, position))
    return Compare(path, "eq", Literal(storable(raw_value, position), position))


def parse_filter(
    text: str, *, max_length: int = 4096, max_clauses: int = 64, max_depth: int = 32
) -> Node:
    """Parse a filter expression; raise ``BadFilter`` on anything else."""
    if len(text) > max_length:
        raise BadFilter(f"filter is {len(text)} characters; the limit is {max_length}")
    if not text.strip():
        raise BadFilter('filter is empty; expected a comparison such as /data/status eq "x"')
    parser = _Parser(tokenize(text), Limits(max_clauses, max_depth))
    try:
        return parser.document()
    except RecursionError:
        # Only reachable if a caller raises max_depth past what the stack allows.
        raise BadFilter("filter nests too deeply") from None
