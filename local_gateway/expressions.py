"""DynamoDB's condition expressions, and the parser its update and projection expressions share
(local_gateway/updates.py): each text parsed once into Python closures.

The subset the product's requests use, and a little more: top-level attribute names and `#name` placeholders;
comparisons (= <> < <= > >=), AND, OR, NOT and parentheses; attribute_exists, attribute_not_exists,
begins_with, contains and size(); SET with `+`, `-` and if_not_exists, REMOVE, ADD and DELETE. Anything else
(nested paths, BETWEEN, IN, list_append, a reserved word, a malformed text) raises Unsupported, and so does a
value the closures are not sure DynamoDB would judge as they do (numbers that are not plain integers, binary
values, mixed types): the engine (local_gateway/item_engine.py) then leaves the whole request to moto.

An attribute value is a pair (type, value): ("S", "text"), ("N", "12"), ("SS", [...]), as moto's DynamoType
holds it at the top level of an item. An item is a mapping of names to such pairs; a missing attribute is None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Value = tuple[str, Any]
Item = Mapping[str, Value]
Values = Mapping[str, Value]
Operand = Callable[[Item, Values], Value | None]
Condition = Callable[[Item, Values], bool]

MAX_DIGITS = 38  # DynamoDB's precision for numbers
_INTEGER = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)\Z")  # as DynamoDB writes integers back
_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><>|<=|>=|[=<>(),+\-]))"
)
_COMPARISONS = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Unsupported(Exception):
    """Not for this engine: moto answers the request instead (its result or its error is DynamoDB's model)."""


def integer(value: Value) -> int:
    kind, text = value
    if kind != "N" or not isinstance(text, str) or not _INTEGER.match(text) or len(text.lstrip("-")) > MAX_DIGITS:
        raise Unsupported("not a plain integer")
    return int(text)


def number_value(number: int) -> Value:
    if len(str(abs(number))) > MAX_DIGITS:
        raise Unsupported("beyond DynamoDB's precision")
    return ("N", str(number))


def _scalar(value: Value) -> Any:
    """What two values of the same scalar type compare by."""
    if value[0] == "N":
        return integer(value)
    if value[0] == "S" and isinstance(value[1], str):
        return value[1]
    raise Unsupported(f"comparing {value[0]}")


@cache
def reserved_words() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())


@dataclass
class Parser:
    """Recursive descent over one expression's tokens, noting the placeholders it uses."""

    text: str
    names: Mapping[str, str]
    tokens: list[tuple[str, str]] = field(default_factory=list)
    position: int = 0
    names_used: set[str] = field(default_factory=set)
    values_used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        end, text = 0, self.text.rstrip()
        while end < len(text):
            match = _TOKEN.match(text, end)
            if match is None or match.end() == end:
                raise Unsupported(f"cannot read {text[end:]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            end = match.end()

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (expected is not None and token[1] != expected):
            raise Unsupported(f"expected {expected or 'more'} at {token[1]!r}")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.upper() == word:
            self.position += 1
            return True
        return False

    def done(self) -> None:
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")

    # -- paths and operands ----------------------------------------------------------------
    def path(self) -> str:
        kind, text = self.take()
        if kind == "name":
            if text not in self.names:
                raise Unsupported(f"undefined name {text}")
            self.names_used.add(text)
            name = self.names[text]
        elif kind == "word" and text.upper() not in reserved_words():
            name = text
        else:
            raise Unsupported(f"not an attribute name: {text!r}")
        if self.peek()[1] in (".", "["):
            raise Unsupported("nested paths")
        return name

    def operand(self) -> Operand:
        kind, text = self.peek()
        if kind == "value":
            self.position += 1
            self.values_used.add(text)
            return lambda item, values: values[text]
        if kind == "word" and text == "size" and self.peek(1)[1] == "(":
            self.position += 2
            name = self.path()
            self.take(")")
            return lambda item, values: _size(item.get(name))
        name = self.path()
        return lambda item, values: item.get(name)

    # -- conditions ------------------------------------------------------------------------
    def condition(self) -> Condition:
        left = self.conjunction()
        while self.keyword("OR"):
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.keyword("AND"):
            left = _both(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.keyword("NOT"):
            inner = self.negation()
            return lambda item, values: not inner(item, values)
        return self.primary()

    def primary(self) -> Condition:
        kind, text = self.peek()
        if text == "(":
            self.position += 1
            inner = self.condition()
            self.take(")")
            return inner
        if kind == "word" and self.peek(1)[1] == "(" and text in _FUNCTIONS:
            self.position += 2
            name = self.path()
            argument = None
            if text in ("begins_with", "contains"):
                self.take(",")
                argument = self.operand()
            self.take(")")
            return _FUNCTIONS[text](name, argument)
        left = self.operand()
        operator = self.take()[1]
        if operator not in _COMPARISONS:
            raise Unsupported(f"operator {operator!r}")
        right = self.operand()
        return _comparison(_COMPARISONS[operator], left, right, equality=operator in ("=", "<>"))


def _either(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) or second(item, values)


def _both(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) and second(item, values)


def _size(value: Value | None) -> Value | None:
    if value is None:
        return None
    kind, content = value
    if kind == "S" and content.isascii():  # beyond ASCII, DynamoDB's "length" and moto's may differ
        return number_value(len(content))
    if kind in ("SS", "NS", "L", "M"):
        return number_value(len(content))
    raise Unsupported(f"size of {kind}")


def _comparison(compare: Callable[[Any, Any], bool], left: Operand, right: Operand, equality: bool) -> Condition:
    def check(item: Item, values: Values) -> bool:
        a, b = left(item, values), right(item, values)
        if a is None or b is None:
            if equality and compare is _COMPARISONS["<>"]:
                raise Unsupported("<> with a missing attribute")
            return False  # a comparison with an attribute the item lacks is false
        if a[0] != b[0]:
            if equality:
                return compare(0, 1)  # values of different types are never equal
            raise Unsupported("ordering values of different types")
        return bool(compare(_scalar(a), _scalar(b)))

    return check


def _exists(name: str, _: Operand | None) -> Condition:
    return lambda item, values: name in item


def _not_exists(name: str, _: Operand | None) -> Condition:
    return lambda item, values: name not in item


def _begins_with(name: str, prefix: Operand | None) -> Condition:
    assert prefix is not None

    def check(item: Item, values: Values) -> bool:
        value, start = item.get(name), prefix(item, values)
        if value is None or start is None:
            return False
        if value[0] != "S" or start[0] != "S":
            raise Unsupported("begins_with on other than strings")
        return bool(value[1].startswith(start[1]))

    return check


def _contains(name: str, member: Operand | None) -> Condition:
    assert member is not None

    def check(item: Item, values: Values) -> bool:
        value, wanted = item.get(name), member(item, values)
        if value is None or wanted is None:
            return False
        kind, content = value
        if kind == "S" and wanted[0] == "S":
            return bool(wanted[1] in content)
        if kind in ("SS", "NS") and wanted[0] == kind[0]:
            return any(_scalar((wanted[0], element)) == _scalar(wanted) for element in content)
        if kind == "L" and wanted[0] in ("S", "N"):
            return any(
                element.type == wanted[0] and _scalar((element.type, element.value)) == _scalar(wanted)
                for element in content
            )
        raise Unsupported(f"contains on {kind}")

    return check


_FUNCTIONS: dict[str, Callable[[str, Operand | None], Condition]] = {
    "attribute_exists": _exists,
    "attribute_not_exists": _not_exists,
    "begins_with": _begins_with,
    "contains": _contains,
}
