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
from collections.abc import Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.answers import Answer, validation_error
from local_gateway.dynamodb.expressions import placeholders_valid
from local_gateway.dynamodb.indexes import Index, Order, Partition, index_of
from local_gateway.dynamodb.item_sizes import size_bound
from local_gateway.dynamodb.key_conditions import KeyCondition, holds, key_condition
from local_gateway.dynamodb.moto_items import key_of, request_value
from local_gateway.dynamodb.query_pages import SURELY_SMALL, Entry, Reading, page
from local_gateway.dynamodb.updates import Expressions, compile_expressions

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

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


def query(request: dict[str, Any], backend: DynamoDBBackend) -> Answer | None:
    """moto's answer to a Query of one partition, or None for moto. It writes nothing."""
    if not request.keys() <= _ALLOWED or "KeyConditionExpression" not in request:
        return None
    table = backend.tables.get(request["TableName"])
    names, values = request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues")
    if table is None or table.range_key_type != "S" or not values:
        return None  # a key condition needs a value
    named = tuple(sorted((names or {}).items()))
    condition = key_condition(request["KeyConditionExpression"], named)
    expressions = _expressions(request, named)
    if condition is None or expressions is None:
        return None
    names_used = condition.names_used | expressions.names_used
    values_used = condition.values_used | expressions.values_used
    if not placeholders_valid(names, values, names_used, values_used) or "" in (names or {}).values():
        return None
    typed = {placeholder: request_value(value) for placeholder, value in values.items()}
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
    entries, count, key_names, projected = found
    if "IndexName" in request and request.get("ConsistentRead"):
        return validation_error(CONSISTENT_INDEX)
    reading = Reading(
        key_names,
        projected,
        expressions.condition,
        expressions.condition_reads,
        typed,
        expressions.projection,
        request.get("Select") == "COUNT",
    )
    return 200, page(entries, count, partial(holds, condition, tuple(bounds)), request.get("Limit"), reading)


def _expressions(request: dict[str, Any], named: tuple[tuple[str, str], ...]) -> Expressions | None:
    """The filter and the projection compiled (an empty Expressions without either), or None for moto."""
    filter_text, projection_text = request.get("FilterExpression"), request.get("ProjectionExpression")
    select = request.get("Select")
    if select not in (None, "COUNT") or (select == "COUNT" and projection_text is not None):
        return None
    return compile_expressions(filter_text, None, projection_text, named)


# the partition's entries in order, how many, the LastEvaluatedKey's attributes, what the index projects
Found = tuple[Iterable[Entry], int, tuple[str, ...], frozenset[str] | None]


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
    return [(text, partition[sort_key], None) for text, sort_key in ordered], len(ordered), keys, None


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
    entries = iter(()) if partition is None else _entries(partition, places)
    return entries, len(places), tuple(dict.fromkeys(key_names)), index.projected


def _entries(partition: Partition, places: list[Order]) -> Iterator[Entry]:
    """The items at these places, as far as the page reads them, each with its size_bound (worked out once while
    the index keeps the item, when a page could pass 1 MB)."""
    sized = len(places) > SURELY_SMALL
    for place in places:
        item, bound = partition.items[place]
        if bound is None and sized:
            bound = size_bound(item.attrs)
            partition.items[place] = (item, bound)
        yield place[0], item, bound


def _start_key(key: dict[str, Any], key_names: tuple[str, ...], index: Index, value: str) -> tuple[str, ...] | None:
    """The place in the index just after which (before which, backwards) a page starts, or None for moto."""
    if set(key) != set(key_names):
        return None
    parts = {name: request_value(part) for name, part in key.items()}
    if any(kind != "S" for kind, _ in parts.values()) or parts[index.hash_name][1] != value:
        return None
    return parts[index.range_name][1], parts[index.keys[0]][1], parts[index.keys[1]][1]
