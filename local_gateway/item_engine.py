"""The embedded DynamoDB's fast lane: GetItem, PutItem, UpdateItem and DeleteItem on moto's own tables, with each
request's expressions compiled once per text (local_gateway/expressions.py).

moto answers one product request in 2 to 4 ms here, most of it parsing the same expressions again on every call
(twice for a condition). This engine reads and writes the items in moto's tables directly, so every door (moto's
HTTP server, the wire door) sees what it wrote, and answers only what it is sure of: the request's every parameter
understood, every value a plain one (strings, numbers as DynamoDB writes them, booleans, string and number sets,
lists and maps of them), every placeholder defined and used. Anything else, and every error but a condition that
does not hold, it leaves to moto by answering None before it has changed anything: moto then answers the same
request from the same state, with its own result or its own error.

One answer is DynamoDB's where moto's is not: UPDATED_OLD and UPDATED_NEW list every attribute the update names (as
AWS documents them), where moto lists only those whose value changed, plus the keys of an item the update creates.
tests/test_embedded_dynamodb.py runs the same requests through the engine and through moto alone and requires the
same answers (but for that one) and the same items.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from local_gateway.expressions import Unsupported, Value
from local_gateway.updates import Expressions, compile_expressions

MAX_DIGITS = 38
OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem"})
MAX_ITEM_BYTES = 400_000
KEY_LIMITS = (2048, 1024)  # bytes: a partition key, a sort key
_COMMON = {"TableName", "ExpressionAttributeNames", "ExpressionAttributeValues"}
_ALLOWED = {
    "GetItem": _COMMON | {"Key", "ProjectionExpression", "ConsistentRead"},
    "PutItem": _COMMON | {"Item", "ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"},
    "DeleteItem": _COMMON | {"Key", "ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"},
    "UpdateItem": _COMMON
    | {"Key", "UpdateExpression", "ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"},
}
_RETURN_VALUES = {
    "GetItem": {"NONE"},
    "PutItem": {"NONE", "ALL_OLD"},
    "DeleteItem": {"NONE", "ALL_OLD"},
    "UpdateItem": {"NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"},
}
CONDITION_FAILED = "ConditionalCheckFailedException"
# A number as DynamoDB writes it back: no exponent, no leading or trailing zero (compared or added to, only an
# integer will do: local_gateway/expressions.py)
_NUMBER = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?\Z")


class ItemEngine:
    """Answers item requests on moto's tables, or None to leave them to moto; counts both, by operation."""

    def __init__(self) -> None:
        self.served: Counter[str] = Counter()
        self.declined: Counter[str] = Counter()

    def answer(self, operation: str, request: dict[str, Any], backend: Any) -> tuple[int, dict[str, Any]] | None:
        """(HTTP status, the answer as botocore parses it, less ResponseMetadata), or None for moto to answer."""
        try:
            answer = self._answer(operation, request, backend)
        except (Unsupported, KeyError, TypeError, ValueError, AttributeError):
            answer = None  # malformed or unforeseen: nothing was changed, moto says what is wrong
        (self.declined if answer is None else self.served)[operation] += 1
        return answer

    def _answer(self, operation: str, request: dict[str, Any], backend: Any) -> tuple[int, dict[str, Any]] | None:
        if operation not in OPERATIONS or not request.keys() <= _ALLOWED[operation]:
            return None
        if request.get("ReturnValues", "NONE") not in _RETURN_VALUES[operation]:
            return None
        if request.get("ReturnValuesOnConditionCheckFailure", "NONE") not in ("NONE", "ALL_OLD"):
            return None
        table = backend.tables.get(request["TableName"])
        if table is None:
            return None
        expressions = self._expressions(operation, request)
        if expressions is None:
            return None
        values = {name: plain(value) for name, value in request.get("ExpressionAttributeValues", {}).items()}
        if operation == "PutItem":
            written = {name: plain(value) for name, value in request["Item"].items()}
            hash_key, range_key = key_of(table, {name: request["Item"].get(name) for name in key_names(table)})
        else:
            hash_key, range_key = key_of(table, request["Key"])
        old = stored(table, hash_key, range_key)
        current = {} if old is None else {name: (value.type, value.value) for name, value in old.attrs.items()}
        if operation == "GetItem":
            return 200, ({} if old is None else {"Item": parsed(old.attrs, expressions.projection)})
        if expressions.condition is not None and not expressions.condition(current, values):
            failure: dict[str, Any] = {
                "Error": {"Message": "The conditional request failed", "Code": CONDITION_FAILED},
                "message": "The conditional request failed",
            }
            if old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                failure["Item"] = parsed(old.attrs)
            return 400, failure
        if operation == "DeleteItem":
            answer = self._returned(request, old, None, {})  # before the change: nothing may fail after it
            if old is not None:
                replace(table, hash_key, range_key, old, None)
            return 200, answer
        if operation == "PutItem":
            new_attributes = {name: stored_value(value) for name, value in written.items()}
            changed: dict[str, Value | None] = {}
        else:
            assert expressions.changes is not None
            if expressions.changes.keys() & set(key_names(table)):
                return None  # DynamoDB refuses to update a key attribute
            changed = {name: change(current, values) for name, change in expressions.changes.items()}
            new_attributes = {name: value for name, value in (old.attrs.items() if old is not None else ())}
            new_attributes.update(
                {table.hash_key_attr: hash_key, **({table.range_key_attr: range_key} if range_key else {})}
            )
            for name, value in changed.items():
                if value is None:
                    new_attributes.pop(name, None)
                else:
                    new_attributes[name] = stored_value(value)
        new = make_item(hash_key, range_key, new_attributes)
        answer = self._returned(request, old, new, changed)
        replace(table, hash_key, range_key, old, new)
        return 200, answer

    @staticmethod
    def _expressions(operation: str, request: dict[str, Any]) -> Expressions | None:
        if operation == "UpdateItem" and "UpdateExpression" not in request:
            return None
        names = request.get("ExpressionAttributeNames")
        if names is not None and not names:
            return None  # DynamoDB: ExpressionAttributeNames must not be empty
        expressions = compile_expressions(
            request.get("ConditionExpression"),
            request.get("UpdateExpression"),
            request.get("ProjectionExpression"),
            tuple(sorted((names or {}).items())),
        )
        if expressions is None or expressions.names_used != set(names or ()):
            return None
        if expressions.values_used != set(request.get("ExpressionAttributeValues") or ()):
            return None
        if "ExpressionAttributeValues" in request and not request["ExpressionAttributeValues"]:
            return None
        return expressions

    @staticmethod
    def _returned(request: dict[str, Any], old: Any, new: Any, changed: dict[str, Value | None]) -> dict[str, Any]:
        wanted = request.get("ReturnValues", "NONE")
        if wanted == "ALL_OLD" and old is not None:
            return {"Attributes": parsed(old.attrs)}
        if wanted == "ALL_NEW":
            return {"Attributes": parsed(new.attrs)}
        if wanted == "UPDATED_OLD" and old is not None:
            updated = {name: value for name, value in old.attrs.items() if name in changed}
            return {"Attributes": parsed(updated)} if updated else {}
        if wanted == "UPDATED_NEW":
            updated = {name: value for name, value in new.attrs.items() if name in changed}
            return {"Attributes": parsed(updated)} if updated else {}
        return {}


def plain(value: Any) -> Value:
    """A request's attribute value as a (type, value) pair, if it is one this engine handles."""
    if not isinstance(value, dict) or len(value) != 1:
        raise Unsupported("not an attribute value")
    kind, content = next(iter(value.items()))
    if kind == "S" and isinstance(content, str) and content:
        return kind, content
    if kind == "N" and isinstance(content, str) and _NUMBER.match(content) and len(content) <= MAX_DIGITS:
        return kind, content  # written as DynamoDB writes numbers back, so moto's stored text is DynamoDB's too
    if (kind == "BOOL" and isinstance(content, bool)) or (kind == "NULL" and content is True):
        return kind, content
    if kind in ("SS", "NS") and isinstance(content, list) and content:
        elements = [plain({kind[0]: element})[1] for element in content]
        if len(set(elements)) == len(elements):
            return kind, elements
    if kind == "L" and isinstance(content, list):
        for element in content:
            plain(element)
        return kind, content
    if kind == "M" and isinstance(content, dict):
        for element in content.values():
            plain(element)
        return kind, content
    raise Unsupported(f"attribute value {kind}")


def key_names(table: Any) -> list[str]:
    return [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])


def key_of(table: Any, key: dict[str, Any]) -> tuple[Any, Any]:
    """moto's DynamoType for each part of a key the request gives exactly, with the table's types."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    names = key_names(table)
    if set(key) != set(names):
        raise Unsupported("not the table's key")
    parts = []
    for name, kind, limit in zip(names, (table.hash_key_type, table.range_key_type), KEY_LIMITS, strict=False):
        pair = plain(key[name])
        if pair[0] != kind or pair[0] not in ("S", "N") or len(str(pair[1]).encode()) > limit:
            raise Unsupported("a key DynamoDB would refuse")
        parts.append(DynamoType({pair[0]: pair[1]}))
    return parts[0], (parts[1] if len(parts) > 1 else None)


def stored(table: Any, hash_key: Any, range_key: Any) -> Any:
    """The item under the key, without adding the empty partition moto's defaultdict would."""
    if range_key is None:
        return table.items.get(hash_key)
    return table.items.get(hash_key, {}).get(range_key)


def stored_value(value: Value) -> Any:
    """A new DynamoType, sharing no list with any other: moto changes sets and lists in place."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    kind, content = value
    return DynamoType({kind: copy.deepcopy(content) if isinstance(content, (list, dict)) else content})


def make_item(hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> Any:
    from moto.dynamodb.models.dynamo_type import Item

    item = Item(hash_key, range_key, {})
    dict.update(item.attrs, attributes)  # moto's size check, once for the whole item below
    if item.size() > MAX_ITEM_BYTES:
        raise Unsupported("an item beyond 400 KB")
    return item


def replace(table: Any, hash_key: Any, range_key: Any, old: Any, new: Any) -> None:
    """Put `new` (None: delete) where `old` was, as moto's own writes do, streams included."""
    if range_key is None:
        partition = table.items
        key = hash_key
    else:
        partition = table.items[hash_key]
        key = range_key
    if new is None:
        partition.pop(key, None)
    else:
        partition[key] = new
    if table.stream_shard is not None:
        table.stream_shard.add(old, new)


def parsed(attributes: Any, projection: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Attributes as botocore hands them to the caller (binary as bytes)."""
    names = attributes.keys() if projection is None else [name for name in projection if name in attributes]
    return {name: attributes[name].to_regular_json() for name in names}
