"""The item engine's Query (local_gateway/dynamodb/item_engine.py): one partition of a table's own key, or of one of
its global secondary indexes (local_gateway/dynamodb/indexes.py), read in order without the whole table moto sorts
for every Query; its page made as moto makes it (local_gateway/dynamodb/query_pages.py).

It answers a Query whose KeyConditionExpression is `pk = :v`, alone or `AND` one sort key condition (`=`, `<`,
`<=`, `>`, `>=`, `begins_with`, `BETWEEN` with its bounds in order), on string keys, with `Limit`,
`ScanIndexForward`, `ConsistentRead`, `ExclusiveStartKey` (a key of that partition: on an index, the index's keys
and the table's), `Select=COUNT`, and a `FilterExpression` and a `ProjectionExpression` within the engine's grammar
(the filter on no key attribute, each attribute one the index projects); every placeholder defined and used, every
value of its key's type. `ConsistentRead` on a global secondary index is DynamoDB's refusal. Anything else is
moto's. Its pages are moto's: `LastEvaluatedKey` when `Limit` or 1 MB cut the page before the partition's last item
(DynamoDB's, when `Limit` is reached: the product follows it until there is none either way).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.expressions import Parser, Unsupported
from local_gateway.dynamodb.indexes import Index, Order, Partition, index_of
from local_gateway.dynamodb.item_sizes import size_bound
from local_gateway.dynamodb.moto_items import key_of, plain
from local_gateway.dynamodb.query_pages import SURELY_SMALL, Entry, Reading, page
from local_gateway.dynamodb.updates import Expressions, compile_expressions

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

Answer = tuple[int, dict[str, Any]]
CONSISTENT_INDEX = "Consistent reads are not supported on global secondary indexes"  # DynamoDB's, and moto's
_ANY = {"S": "-"}
_ALLOWED = {
    "TableName",
    "IndexName",
    "KeyConditionExpression",
    "FilterExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ProjectionExpression",
    "Select",
    "Limit",
    "ScanIndexForward",
    "ConsistentRead",
    "ExclusiveStartKey",
}
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


def query(request: dict[str, Any], backend: DynamoDBBackend) -> Answer | None:
    """moto's answer to a Query of one partition, or None for moto. It writes nothing."""
    if not request.keys() <= _ALLOWED or "KeyConditionExpression" not in request:
        return None
    table = backend.tables.get(request["TableName"])
    names, values = request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues")
    if table is None or table.range_key_type != "S" or (names is not None and not names) or not values:
        return None  # DynamoDB: names and values must not be empty, and a key condition needs a value
    named = tuple(sorted((names or {}).items()))
    condition = key_condition(request["KeyConditionExpression"], named)
    expressions = _expressions(request, named)
    if condition is None or expressions is None:
        return None
    names_used = condition.names_used | expressions.names_used
    if names_used != set(names or ()) or "" in (names or {}).values():
        return None
    if condition.values_used | expressions.values_used != set(values):
        return None
    typed = {placeholder: plain(value) for placeholder, value in values.items()}
    if expressions.refusal(typed):
        return None  # DynamoDB's "Invalid FilterExpression: ...", moto's answer otherwise: moto's to answer
    sort_values = [typed[placeholder] for placeholder in condition.sort_values]
    bounds = [bound for _, bound in sort_values]
    if any(kind != "S" for kind, _ in sort_values) or (condition.comparison == "BETWEEN" and bounds[0] > bounds[1]):
        return None  # DynamoDB's refusals: moto's to answer
    if "IndexName" in request:
        index = index_of(table, request["IndexName"])
        found = None if index is None else _index_entries(request, table, index, condition, expressions, typed)
    else:
        found = _table_entries(request, table, condition, expressions)
    if found is None:
        return None
    entries, key_names, projected = found
    if "IndexName" in request and request.get("ConsistentRead"):
        return 400, {"Error": {"Message": CONSISTENT_INDEX, "Code": "ValidationException"}}
    reading = Reading(
        key_names,
        projected,
        expressions.condition,
        expressions.condition_reads,
        typed,
        expressions.projection,
        request.get("Select") == "COUNT",
    )
    return 200, page(entries, lambda text: _holds(condition, text, bounds), request.get("Limit"), reading)


def _expressions(request: dict[str, Any], named: tuple[tuple[str, str], ...]) -> Expressions | None:
    """The filter and the projection compiled (an empty Expressions without either), or None for moto."""
    filter_text, projection_text = request.get("FilterExpression"), request.get("ProjectionExpression")
    select = request.get("Select")
    if select not in (None, "COUNT") or (select == "COUNT" and projection_text is not None):
        return None
    return compile_expressions(filter_text, None, projection_text, named)


Found = tuple[list[Entry], tuple[str, ...], frozenset[str] | None]


def _table_entries(
    request: dict[str, Any], table: Table, condition: KeyCondition, expressions: Expressions
) -> Found | None:
    keys = (table.hash_key_attr, str(table.range_key_attr))
    if condition.partition != keys[0] or condition.sort not in (None, keys[1]):
        return None
    if expressions.condition_reads & set(keys):
        return None  # DynamoDB refuses a filter on a key attribute; moto evaluates it
    # the partition's DynamoType, checked as a key's part is (its sort part a stand-in)
    partition_value = request["ExpressionAttributeValues"][condition.partition_value]
    hash_key, _ = key_of(table, {keys[0]: partition_value, keys[1]: _ANY})
    partition: dict[DynamoType, Item] = table.items.get(hash_key, {})
    ordered = sorted((sort_key.value, sort_key) for sort_key in partition)
    forward = request.get("ScanIndexForward", True)
    if not forward:
        ordered.reverse()
    if "ExclusiveStartKey" in request:
        start_hash, start = key_of(table, request["ExclusiveStartKey"])
        if start_hash != hash_key or start is None:
            return None
        ordered = [(text, key) for text, key in ordered if (text > start.value if forward else text < start.value)]
    return [(text, partition[sort_key], None) for text, sort_key in ordered], keys, None


def _index_entries(
    request: dict[str, Any],
    table: Table,
    index: Index,
    condition: KeyCondition,
    expressions: Expressions,
    typed: dict[str, Any],
) -> Found | None:
    key_names = (*index.keys, index.hash_name, index.range_name)
    if condition.partition != index.hash_name or condition.sort not in (None, index.range_name):
        return None
    if expressions.condition_reads & set(key_names):
        return None  # DynamoDB refuses a filter on a key attribute; moto evaluates it
    if index.projected is not None and not (expressions.condition_reads | set(expressions.projection or ())) <= (
        index.projected
    ):
        return None  # an attribute the index does not project: DynamoDB's answer is unsure
    kind, value = typed[condition.partition_value]
    if kind != "S":
        return None
    partition = index.partitions.get(value)
    order = [] if partition is None else partition.order
    start, end = 0, len(order)
    forward = request.get("ScanIndexForward", True)
    if "ExclusiveStartKey" in request:
        after = _start_key(request["ExclusiveStartKey"], key_names, index, value)
        if after is None:
            return None
        start, end = (bisect.bisect_right(order, after), end) if forward else (0, bisect.bisect_left(order, after))
    places = order[start:end] if forward else order[start:end][::-1]
    entries = [] if partition is None else _entries(partition, places)
    return entries, tuple(dict.fromkeys(key_names)), index.projected


def _entries(partition: Partition, places: list[Order]) -> list[Entry]:
    """The items at these places, each with its size_bound (worked out once while the index keeps the item)."""
    if len(places) <= SURELY_SMALL:
        return [(place[0], *partition.items[place]) for place in places]
    entries: list[Entry] = []
    for place in places:
        item, bound = partition.items[place]
        if bound is None:
            bound = size_bound(item.attrs)
            partition.items[place] = (item, bound)
        entries.append((place[0], item, bound))
    return entries


def _start_key(key: dict[str, Any], key_names: tuple[str, ...], index: Index, value: str) -> tuple[str, ...] | None:
    """The place in the index just after which (before which, backwards) a page starts, or None for moto."""
    if set(key) != set(key_names):
        return None
    parts = {name: plain(part) for name, part in key.items()}
    if any(kind != "S" for kind, _ in parts.values()) or parts[index.hash_name][1] != value:
        return None
    return parts[index.range_name][1], parts[index.keys[0]][1], parts[index.keys[1]][1]


def _holds(condition: KeyCondition, text: str, bounds: list[Any]) -> bool:
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
