"""DynamoDB's update expressions (SET with `+`, `-` and if_not_exists; REMOVE; ADD; DELETE), and a request's
expressions compiled together, once per text. Beyond that subset, Unsupported (see
local_gateway/dynamodb/expressions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from local_gateway.dynamodb.conditions import Condition, parse_condition, refusal
from local_gateway.dynamodb.expressions import (
    Check,
    Item,
    Operand,
    Parser,
    Unsupported,
    Value,
    Values,
    integer,
    number_value,
)

Change = Callable[[Item, Values], Value | None]  # an attribute's new value (None: removed), from the old item
_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")


def _update(parser: Parser) -> dict[str, Change]:
    changes: dict[str, Change] = {}
    seen: set[str] = set()
    while parser.peek()[0] != "end":
        clause = parser.take()[1].upper()
        if clause not in _CLAUSES or clause in seen:
            raise Unsupported(f"clause {clause!r}")  # DynamoDB allows each clause once
        seen.add(clause)
        while True:
            name = parser.path()
            if name in changes:
                raise Unsupported("two actions on one attribute")  # DynamoDB: overlapping paths
            changes[name] = _ACTIONS[clause](parser, name)
            if parser.peek()[1] != ",":
                break
            parser.position += 1
    if not changes:
        raise Unsupported("no action")
    return changes


def _set(parser: Parser, name: str) -> Change:
    parser.take("=")
    left = _set_operand(parser).read
    sign = parser.peek()[1]
    if sign not in ("+", "-"):

        def assignment(item: Item, values: Values) -> Value:
            value = left(item, values)
            if value is None:  # DynamoDB: the expression refers to an attribute that does not exist
                raise Unsupported("SET from a missing attribute")
            return value

        return assignment
    parser.position += 1
    right, direction = _set_operand(parser).read, 1 if sign == "+" else -1

    def arithmetic(item: Item, values: Values) -> Value:
        a, b = left(item, values), right(item, values)
        if a is None or b is None:
            raise Unsupported("arithmetic on a missing attribute")  # DynamoDB's ValidationException
        return number_value(integer(a) + direction * integer(b))

    return arithmetic


def _set_operand(parser: Parser) -> Operand:
    kind, text = parser.peek()
    if kind == "word" and text == "if_not_exists" and parser.peek(1)[1] == "(":
        parser.position += 2
        name = parser.path()
        parser.reads.add(name)
        parser.take(",")
        default = _set_operand(parser).read
        parser.take(")")
        return Operand(lambda item, values: item[name] if name in item else default(item, values))
    if kind == "word" and parser.peek(1)[1] == "(":
        raise Unsupported(f"function {text}")
    operand = parser.operand()
    if operand.path is not None:
        parser.reads.add(operand.path)
    return operand


def _remove(parser: Parser, name: str) -> Change:
    return lambda item, values: None


def _add(parser: Parser, name: str) -> Change:
    operand = parser.value().read

    def add(item: Item, values: Values) -> Value:
        current, addition = item.get(name), operand(item, values)
        assert addition is not None
        if addition[0] == "N":
            return number_value((0 if current is None else integer(current)) + integer(addition))
        if addition[0] not in ("SS", "NS") or (current is not None and current[0] != addition[0]):
            raise Unsupported(f"ADD of {addition[0]}")
        elements = [] if current is None else _elements(current)
        return (addition[0], elements + [element for element in addition[1] if element not in elements])

    return add


def _delete(parser: Parser, name: str) -> Change:
    operand = parser.value().read

    def delete(item: Item, values: Values) -> Value | None:
        current, removal = item.get(name), operand(item, values)
        assert removal is not None
        if removal[0] not in ("SS", "NS") or (current is not None and current[0] != removal[0]):
            raise Unsupported(f"DELETE of {removal[0]}")
        if current is None:
            return None
        left = [element for element in _elements(current) if element not in _elements(removal)]
        return (current[0], left) if left else None  # DynamoDB keeps no empty set

    return delete


def _elements(value: Value) -> list[str]:
    """A set's elements, compared as text: for a number set, only when each is an integer as DynamoDB writes it."""
    if value[0] == "NS":
        for element in value[1]:
            integer(("N", element))
    return list(value[1])


_ACTIONS: dict[str, Callable[[Parser, str], Change]] = {"SET": _set, "REMOVE": _remove, "ADD": _add, "DELETE": _delete}


# -- a request's expressions, compiled once per text ---------------------------------------------------
@dataclass(frozen=True)
class Expressions:
    condition: Condition | None
    changes: dict[str, Change] | None
    projection: tuple[str, ...] | None
    names_used: frozenset[str]
    values_used: frozenset[str]
    checks: tuple[Check, ...] = ()  # the condition's, on the whole text (local_gateway/dynamodb/conditions.py)
    reads: frozenset[str] = frozenset()  # what SET reads on its right
    condition_reads: frozenset[str] = frozenset()  # the attributes the condition names

    def refusal(self, values: Values) -> str | None:
        """DynamoDB's ValidationException message for these expressions with these values, or None."""
        return refusal(self.checks, values) if self.checks else None


@lru_cache(maxsize=4096)
def compile_expressions(
    condition: str | None, update: str | None, projection: str | None, names: tuple[tuple[str, str], ...]
) -> Expressions | None:
    """The request's expressions, or None when any is beyond this engine (cached either way)."""
    try:
        return _compile(condition, update, projection, dict(names))
    except (Unsupported, RecursionError):
        return None


def _compile(condition: str | None, update: str | None, projection: str | None, names: dict[str, str]) -> Expressions:
    names_used: set[str] = set()
    values_used: set[str] = set()
    checks: list[Check] = []
    reads: frozenset[str] = frozenset()
    condition_reads: frozenset[str] = frozenset()
    compiled_condition = compiled_changes = projected = None
    if condition is not None:
        parser = Parser(condition, names)
        compiled_condition = parse_condition(parser)
        parser.done()
        names_used |= parser.names_used
        values_used |= parser.values_used
        checks = parser.checks
        condition_reads = frozenset(parser.paths)
    if update is not None:
        parser = Parser(update, names)
        compiled_changes = _update(parser)
        names_used |= parser.names_used
        values_used |= parser.values_used
        reads = frozenset(parser.reads)
    if projection is not None:
        parser = Parser(projection, names)
        attributes = [parser.path()]
        while parser.peek()[1] == ",":
            parser.position += 1
            attributes.append(parser.path())
        parser.done()
        names_used |= parser.names_used
        if len(set(attributes)) != len(attributes):
            raise Unsupported("an attribute projected twice")  # DynamoDB: overlapping paths
        projected = tuple(attributes)
    return Expressions(
        compiled_condition,
        compiled_changes,
        projected,
        frozenset(names_used),
        frozenset(values_used),
        tuple(checks),
        reads,
        condition_reads,
    )
