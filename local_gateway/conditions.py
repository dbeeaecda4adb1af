"""DynamoDB's condition expressions as Python closures (the subset local_gateway/expressions.py describes).

A condition that depends on the types of its values checks them before it looks at the item, as DynamoDB
validates an expression before it reads anything: an ordering of a boolean, or begins_with of a number, is
Unsupported even when the attribute is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_gateway.expressions import Item, Operand, Parser, Unsupported, Value, Values, scalar

Condition = Callable[[Item, Values], bool]
_ORDERED = ("N", "S")
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def parse_condition(parser: Parser) -> Condition:
    """OR of ANDs of NOTs of comparisons, functions and parenthesized conditions: DynamoDB's precedence."""
    left = _conjunction(parser)
    while parser.keyword("OR"):
        left = _either(left, _conjunction(parser))
    return left


def _conjunction(parser: Parser) -> Condition:
    left = _negation(parser)
    while parser.keyword("AND"):
        left = _both(left, _negation(parser))
    return left


def _negation(parser: Parser) -> Condition:
    if parser.keyword("NOT"):
        inner = _negation(parser)
        return lambda item, values: not inner(item, values)
    return _primary(parser)


def _primary(parser: Parser) -> Condition:
    kind, text = parser.peek()
    if text == "(":
        parser.position += 1
        inner = parse_condition(parser)
        parser.take(")")
        return inner
    if kind == "word" and parser.peek(1)[1] == "(" and text in _FUNCTIONS:
        parser.position += 2
        name = parser.path()
        argument = None
        if text in ("begins_with", "contains"):
            parser.take(",")
            argument = parser.operand()
        parser.take(")")
        return _FUNCTIONS[text](name, argument)
    left = parser.operand()
    operator = parser.take()[1]
    if operator not in _COMPARISONS:
        raise Unsupported(f"operator {operator!r}")
    return _comparison(operator, left, parser.operand())


def _either(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) or second(item, values)


def _both(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) and second(item, values)


def _comparison(operator: str, left: Operand, right: Operand) -> Condition:
    compare, ordering = _COMPARISONS[operator], operator not in ("=", "<>")

    def check(item: Item, values: Values) -> bool:
        a, b = left(item, values), right(item, values)
        if ordering and any(side is not None and side[0] not in _ORDERED for side in (a, b)):
            raise Unsupported(f"{operator} on other than numbers and strings")
        if a is None or b is None:
            if operator == "<>":
                raise Unsupported("<> with a missing attribute")
            return False  # a comparison with an attribute the item lacks is false
        if a[0] != b[0]:
            if ordering:
                raise Unsupported("ordering values of different types")
            return operator == "<>"  # values of different types are never equal
        return compare(scalar(a), scalar(b))

    return check


def _exists(name: str, _: Operand | None) -> Condition:
    return lambda item, values: name in item


def _not_exists(name: str, _: Operand | None) -> Condition:
    return lambda item, values: name not in item


def _begins_with(name: str, prefix: Operand | None) -> Condition:
    assert prefix is not None

    def check(item: Item, values: Values) -> bool:
        value, start = item.get(name), prefix(item, values)
        if any(side is not None and side[0] != "S" for side in (value, start)):
            raise Unsupported("begins_with on other than strings")
        if value is None or start is None:
            return False
        return bool(value[1].startswith(start[1]))

    return check


def _contains(name: str, member: Operand | None) -> Condition:
    assert member is not None

    def check(item: Item, values: Values) -> bool:
        value, wanted = item.get(name), member(item, values)
        if wanted is not None and wanted[0] not in _ORDERED:
            raise Unsupported(f"contains of {wanted[0]}")
        if value is None or wanted is None:
            return False
        return _holds(value, wanted)

    return check


def _holds(value: Value, wanted: Value) -> bool:
    kind, content = value
    if kind == "S" and wanted[0] == "S":
        return bool(wanted[1] in content)
    if kind in ("SS", "NS") and wanted[0] == kind[0]:
        return any(scalar((wanted[0], element)) == scalar(wanted) for element in content)
    if kind == "L":
        return any(
            element.type == wanted[0] and scalar((element.type, element.value)) == scalar(wanted) for element in content
        )
    raise Unsupported(f"contains on {kind}")


_FUNCTIONS: dict[str, Callable[[str, Operand | None], Condition]] = {
    "attribute_exists": _exists,
    "attribute_not_exists": _not_exists,
    "begins_with": _begins_with,
    "contains": _contains,
}
