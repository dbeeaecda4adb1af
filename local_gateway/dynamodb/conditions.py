"""DynamoDB's condition expressions as Python closures (the subset local_gateway/dynamodb/expressions.py describes).

DynamoDB validates the whole expression before it reads anything: an ordering of a boolean, begins_with of a
number (or of size(), always a number), or the same attribute on both sides of a comparison or a function is its
ValidationException even in a branch that AND or OR would never evaluate. The parser notes those checks for the
whole text (Parser.checks, run on the request's values before any item is read: local_gateway/dynamodb/updates.py),
never in the closures, which short-circuit. moto checks them only where it evaluates, if at all; the messages are
DynamoDB's (docs/embedded-dynamodb.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_gateway.dynamodb.expressions import Check, Item, Operand, Parser, Unsupported, Value, Values, scalar

Condition = Callable[[Item, Values], bool]
_ORDERED = ("N", "S")
_ORDERABLE = ("N", "S", "B")  # what an ordering's operand may be, as the request states it
_PREFIXES = ("S", "B")  # what begins_with's operands may be
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_INVALID = "Invalid ConditionExpression: "


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
        start = parser.position
        inner = parse_condition(parser)
        if parser.tokens[start][1] == "(" and parser.closing(start) == parser.position - 1:
            # `((...))`: DynamoDB's ValidationException before any other, which moto answers as DynamoDB does
            raise Unsupported("redundant parentheses")
        parser.take(")")
        return inner
    if kind == "word" and parser.peek(1)[1] == "(" and text in _FUNCTIONS:
        parser.position += 2
        name = parser.path()
        argument = None
        if text in ("begins_with", "contains"):
            parser.take(",")
            argument = parser.operand()
            _check_distinct(parser, text, name, argument)
            if text == "begins_with":
                _check_type(parser, text, argument, _PREFIXES)
        parser.take(")")
        return _FUNCTIONS[text](name, argument)
    left = parser.operand()
    operator = parser.take()[1]
    if operator not in _COMPARISONS:
        raise Unsupported(f"operator {operator!r}")
    right = parser.operand()
    _check_distinct(parser, operator, left.path, right)
    if operator not in ("=", "<>"):
        for side in (left, right):
            _check_type(parser, operator, side, _ORDERABLE)
    return _comparison(operator, left, right)


def _check_distinct(parser: Parser, operator: str, first: str | None, other: Operand) -> None:
    """DynamoDB refuses an operator or function whose two operands name the same attribute (`first`: the name
    the first operand gives, if it is a path)."""
    if first is not None and first == other.path:
        message = (
            f"{_INVALID}The first operand must be distinct from the remaining operands for this operator or "
            f"function; operator: {operator}, first operand: [{first}]"
        )
        parser.checks.append(lambda values: message)


def _check_type(parser: Parser, operator: str, operand: Operand, allowed: tuple[str, ...]) -> None:
    """DynamoDB refuses an operand whose type the request states (a value, size()) if the operator takes none
    of that type; an attribute's type is the item's, and only makes the comparison false."""
    if operand.placeholder is None and not operand.sized:
        return

    def check(values: Values) -> str | None:
        kind = operand.static_type(values)
        if kind in allowed:
            return None
        return (
            f"{_INVALID}Incorrect operand type for operator or function; "
            f"operator or function: {operator}, operand type: {kind}"
        )

    parser.checks.append(check)


def refusal(checks: tuple[Check, ...], values: Values) -> str | None:
    """The first of DynamoDB's refusals of an expression with these values, or None."""
    for check in checks:
        message = check(values)
        if message is not None:
            return message
    return None


def _either(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) or second(item, values)


def _both(first: Condition, second: Condition) -> Condition:
    return lambda item, values: first(item, values) and second(item, values)


def _comparison(operator: str, left: Operand, right: Operand) -> Condition:
    compare, ordering = _COMPARISONS[operator], operator not in ("=", "<>")
    read_left, read_right = left.read, right.read

    def check(item: Item, values: Values) -> bool:
        a, b = read_left(item, values), read_right(item, values)
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
    read = prefix.read

    def check(item: Item, values: Values) -> bool:
        value, start = item.get(name), read(item, values)
        if any(side is not None and side[0] != "S" for side in (value, start)):
            raise Unsupported("begins_with on other than strings")
        if value is None or start is None:
            return False
        return bool(value[1].startswith(start[1]))

    return check


def _contains(name: str, member: Operand | None) -> Condition:
    assert member is not None
    read = member.read

    def check(item: Item, values: Values) -> bool:
        value, wanted = item.get(name), read(item, values)
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
