"""The item engine's Query (local_gateway/dynamodb/item_engine.py): one partition of a table's own key, read from
moto's tables in the order of its string sort key, without the whole table moto sorts for every Query.

It answers a Query of the table itself (no IndexName, Select or FilterExpression) whose KeyConditionExpression
is `pk = :v`, alone or `AND` one sort key condition (`=`, `<`, `<=`, `>`, `>=`, `begins_with`, `BETWEEN` with its
bounds in order), on a table whose sort key is a string, with `Limit`, `ScanIndexForward`, `ConsistentRead`,
`ExclusiveStartKey` (a key of that partition) and a `ProjectionExpression` within the engine's grammar; every
placeholder defined and used, every value of its key's type. Anything else is moto's. Its pages are moto's:
`LastEvaluatedKey` when `Limit` or 1 MB cut the page before the partition's last item (DynamoDB's, when `Limit`
is reached: the product follows it until there is none either way).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.expressions import Parser, Unsupported
from local_gateway.dynamodb.moto_items import key_of, parsed, plain
from local_gateway.dynamodb.updates import compile_expressions

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

Answer = tuple[int, dict[str, Any]]
PAGE_BYTES = 1_000_000  # moto's cut of a page (DynamoDB's 1 MB)
_SURELY_SMALL = PAGE_BYTES // 400_000  # this many items of at most 400 KB fit in a page
_ANY = {"S": "-"}
_ALLOWED = {
    "TableName",
    "KeyConditionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ProjectionExpression",
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
    projection_text = request.get("ProjectionExpression")
    expressions = None if projection_text is None else compile_expressions(None, None, projection_text, named)
    if condition is None or (projection_text is not None and expressions is None):
        return None
    names_used = condition.names_used | (expressions.names_used if expressions is not None else set())
    if names_used != set(names or ()) or "" in (names or {}).values() or condition.values_used != set(values):
        return None
    if condition.partition != table.hash_key_attr or condition.sort not in (None, table.range_key_attr):
        return None
    # the partition's DynamoType, checked as a key's part is (its sort part a stand-in)
    hash_key, _ = key_of(
        table, {table.hash_key_attr: values[condition.partition_value], str(table.range_key_attr): _ANY}
    )
    typed = [plain(values[placeholder]) for placeholder in condition.sort_values]
    bounds = [bound for _, bound in typed]
    if any(kind != "S" for kind, _ in typed) or (condition.comparison == "BETWEEN" and bounds[0] > bounds[1]):
        return None  # DynamoDB's refusals: moto's to answer
    partition: dict[DynamoType, Item] = table.items.get(hash_key, {})
    keys = sorted((sort_key.value, sort_key) for sort_key in partition)
    forward = request.get("ScanIndexForward", True)
    if not forward:
        keys.reverse()
    if "ExclusiveStartKey" in request:
        start_hash, start = key_of(table, request["ExclusiveStartKey"])
        if start_hash != hash_key or start is None:
            return None
        keys = [(text, sort_key) for text, sort_key in keys if (text > start.value if forward else text < start.value)]
    candidates = [(_holds(condition, text, bounds), partition[sort_key]) for text, sort_key in keys]
    taken, cut = _taken(candidates, request.get("Limit"))
    projection = None if expressions is None else expressions.projection
    page: dict[str, Any] = {
        "Count": len(taken),
        "ScannedCount": len(taken),
        "Items": [parsed(item.attrs, projection) for item in taken],
    }
    if cut:
        page["LastEvaluatedKey"] = {
            table.hash_key_attr: taken[-1].hash_key.to_regular_json(),
            table.range_key_attr: taken[-1].range_key.to_regular_json(),  # type: ignore[union-attr]
        }
    return 200, page


def _taken(candidates: list[tuple[bool, Item]], limit: int | None) -> tuple[list[Item], bool]:
    """The matching items of a page as moto takes them, and whether it cut the page: it goes through the partition
    in order and stops at the next item, matching or not, once it holds `limit` or that item would pass 1 MB."""
    sized = len(candidates) > _SURELY_SMALL  # fewer items cannot pass 1 MB: their sizes are not worked out
    taken: list[Item] = []
    size = 0
    for matches, item in candidates:
        item_size = item.size() if sized else 0
        if len(taken) == limit or size + item_size > PAGE_BYTES:
            if not taken:
                raise Unsupported("a first item beyond a page")  # moto fails on it: its own answer
            return taken, True
        if matches:
            taken.append(item)
            size += item_size
    return taken, False


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
