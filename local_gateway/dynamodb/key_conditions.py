"""A Query's KeyConditionExpression as the item engine reads it (local_gateway/dynamodb/queries.py): `pk = :v`,
alone or `AND` one sort key condition (`=`, `<`, `<=`, `>`, `>=`, `begins_with`, `BETWEEN`), parsed once per text."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from local_gateway.dynamodb.expressions import Parser, Unsupported

_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "begins_with": str.startswith,
}


@dataclass(frozen=True)
class KeyCondition:
    partition: str  # the attribute named on the left of `=`
    partition_value: str  # its `:placeholder`
    sort: str | None  # the sort key's attribute and its condition, when there is one
    comparison: str | None
    sort_values: tuple[str, ...]
    names_used: frozenset[str]
    values_used: frozenset[str]


def holds(condition: KeyCondition, bounds: tuple[str, ...], text: str) -> bool:
    """Whether the sort key's value `text` meets the condition, with its bounds from the request."""
    if condition.comparison is None:
        return True
    if condition.comparison == "BETWEEN":
        return bool(bounds[0] <= text <= bounds[1])
    return _COMPARISONS[condition.comparison](text, bounds[0])


@cache
def key_condition(text: str, names: tuple[tuple[str, str], ...]) -> KeyCondition | None:
    """`pk = :v [AND sort condition]` parsed once per text, or None when it is beyond the engine."""
    try:
        parser = Parser(text, dict(names))
        partition = parser.path()
        parser.take("=")
        partition_value = _placeholder(parser)
        sort, comparison, sort_values = None, None, tuple[str, ...]()
        if parser.keyword("AND"):
            if parser.peek() == ("word", "begins_with") and parser.peek(1)[1] == "(":
                parser.position += 2
                sort, comparison = parser.path(), "begins_with"
                parser.take(",")
                sort_values = (_placeholder(parser),)
                parser.take(")")
            else:
                sort = parser.path()
                if parser.keyword("BETWEEN"):
                    low = _placeholder(parser)
                    if not parser.keyword("AND"):
                        raise Unsupported("BETWEEN without AND")
                    comparison, sort_values = "BETWEEN", (low, _placeholder(parser))
                else:
                    comparison = parser.take()[1]
                    if comparison not in _COMPARISONS:
                        raise Unsupported(f"{comparison} on a sort key")
                    sort_values = (_placeholder(parser),)
        parser.done()
    except (Unsupported, RecursionError):
        return None
    used = frozenset(parser.values_used)
    return KeyCondition(partition, partition_value, sort, comparison, sort_values, frozenset(parser.names_used), used)


def _placeholder(parser: Parser) -> str:
    placeholder = parser.value().placeholder
    assert placeholder is not None
    return placeholder
