"""The parser DynamoDB's condition, update and projection expressions share (local_gateway/dynamodb/conditions.py,
local_gateway/dynamodb/updates.py): tokens, attribute names and operands, each text parsed once into Python closures.

The subset the product's requests use, and a little more: top-level attribute names and `#name` placeholders;
comparisons (= <> < <= > >=), AND, OR, NOT and parentheses; attribute_exists, attribute_not_exists,
begins_with, contains and size(); SET with `+`, `-` and if_not_exists, REMOVE, ADD and DELETE. Anything else
(nested paths, BETWEEN, IN, list_append, a reserved word, redundant parentheses, a malformed text) raises
Unsupported, and so does a value the closures are not sure DynamoDB would judge as they do (numbers that are not
plain integers, binary values, mixed types): the engine (local_gateway/dynamodb/item_engine.py) then leaves the whole
request to moto.

What DynamoDB checks of an expression before it reads any item (an operand of the wrong type, the same attribute
on both sides of a comparison) the parser notes as checks on the request's values, for the whole expression
(local_gateway/dynamodb/conditions.py): a failing one is DynamoDB's ValidationException, whichever branch an item takes.

An attribute value is a pair (type, value): ("S", "text"), ("N", "12"), ("SS", [...]), as moto's DynamoType
holds it at the top level of an item. An item is a mapping of names to such pairs; a missing attribute is None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Value = tuple[str, Any]
Item = Mapping[str, Value]
Values = Mapping[str, Value]
Read = Callable[[Item, Values], Value | None]
Check = Callable[[Values], str | None]  # DynamoDB's refusal of the expression with these values, or None

MAX_DIGITS = 38  # DynamoDB's precision for numbers
_INTEGER = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)\Z")  # as DynamoDB writes integers back
# An unquoted name starts with a letter (moto refuses `_x`); `.` and `[` (nested paths) are no token at all.
_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<word>[A-Za-z][A-Za-z0-9_]*)"
    r"|(?P<op><>|<=|>=|[=<>(),+\-]))"
)


class Unsupported(Exception):
    """Not for this engine: moto answers the request instead (its result or its error is DynamoDB's model)."""


@dataclass(frozen=True)
class Operand:
    """An operand: how it reads an item, and what is known of it before any item is read."""

    read: Read
    path: str | None = None  # an attribute named directly (or through a placeholder)
    placeholder: str | None = None  # a `:value`
    sized: bool = False  # size(path): a number, whatever the item holds

    def static_type(self, values: Values) -> str | None:
        """The operand's type as DynamoDB knows it from the request alone (None: only the item can tell)."""
        if self.sized:
            return "N"
        return values[self.placeholder][0] if self.placeholder is not None else None


def integer(value: Value) -> int:
    kind, text = value
    if kind != "N" or not isinstance(text, str) or not _INTEGER.match(text) or len(text.lstrip("-")) > MAX_DIGITS:
        raise Unsupported("not a plain integer")
    return int(text)


def number_value(number: int) -> Value:
    if len(str(abs(number))) > MAX_DIGITS:
        raise Unsupported("beyond DynamoDB's precision")
    return ("N", str(number))


def scalar(value: Value) -> Any:
    """What two values of the same scalar type compare by."""
    if value[0] == "N":
        return integer(value)
    if value[0] == "S" and isinstance(value[1], str):
        return value[1]
    raise Unsupported(f"comparing {value[0]}")


def placeholders_valid(
    names: Mapping[str, str] | None, values: Mapping[str, Any] | None, names_used: Set[str], values_used: Set[str]
) -> bool:
    """DynamoDB's validation of a request's placeholders: ExpressionAttributeNames and ExpressionAttributeValues
    not empty where given, every `#name` and `:value` its expressions use defined, and every one defined used."""
    if (names is not None and not names) or (values is not None and not values):
        return False
    return names_used == set(names or ()) and values_used == set(values or ())


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
    checks: list[Check] = field(default_factory=list)  # in the order DynamoDB reports them
    reads: set[str] = field(default_factory=set)  # the attributes SET reads on its right
    paths: set[str] = field(default_factory=set)  # every attribute named

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

    def closing(self, start: int) -> int:
        """The index of the `)` that closes the `(` at `start`."""
        depth = 0
        for index in range(start, len(self.tokens)):
            depth += {"(": 1, ")": -1}.get(self.tokens[index][1], 0)
            if depth == 0:
                return index
        return len(self.tokens)

    def done(self) -> None:
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")

    def path(self) -> str:
        """A top-level attribute's name, written out or as a `#name` placeholder."""
        kind, text = self.take()
        if kind == "name":
            if text not in self.names:
                raise Unsupported(f"undefined name {text}")
            self.names_used.add(text)
            self.paths.add(self.names[text])
            return self.names[text]
        if kind == "word" and text.upper() not in reserved_words():
            self.paths.add(text)
            return text
        raise Unsupported(f"not an attribute name: {text!r}")

    def value(self) -> Operand:
        kind, text = self.take()
        if kind != "value":
            raise Unsupported(f"not a value: {text!r}")
        self.values_used.add(text)
        return Operand(lambda item, values: values[text], placeholder=text)

    def operand(self) -> Operand:
        """A `:value`, size(path) or a path: its value, or None when the item lacks the attribute."""
        kind, text = self.peek()
        if kind == "value":
            return self.value()
        if kind == "word" and text == "size" and self.peek(1)[1] == "(":
            self.position += 2
            name = self.path()
            self.take(")")
            return Operand(lambda item, values: _size(item.get(name)), sized=True)
        name = self.path()
        return Operand(lambda item, values: item.get(name), path=name)


def _size(value: Value | None) -> Value | None:
    if value is None:
        return None
    kind, content = value
    if kind == "S" and content.isascii():  # beyond ASCII, DynamoDB's "length" and moto's may differ
        return number_value(len(content))
    if kind in ("SS", "NS", "L", "M"):
        return number_value(len(content))
    raise Unsupported(f"size of {kind}")
