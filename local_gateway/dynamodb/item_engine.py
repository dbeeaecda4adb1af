"""The embedded DynamoDB's fast lane: GetItem, BatchGetItem and Query (local_gateway/dynamodb/batch_reads.py,
queries.py), PutItem, UpdateItem, DeleteItem and BatchWriteItem's deletes and puts (batch_writes.py) on moto's own
tables, with each request's expressions compiled once per text (local_gateway/dynamodb/expressions.py,
conditions.py, updates.py).

moto answers one product request in 2 to 4 ms here, most of it parsing the same expressions again on every call
(twice for a condition). This engine reads and writes the items in moto's tables directly
(local_gateway/dynamodb/moto_items.py), so every way in (moto's HTTP server, the wire transport) sees what it wrote, and
answers only what it is sure of: the request's every parameter understood, every value a plain one (strings, numbers as
DynamoDB writes them, booleans, string and number sets, lists and maps of them), every placeholder defined and
used, no index key of another type than its definition's. Anything else, and every error but a condition that
does not hold (or a refusal moto would not give, below), it leaves to moto by answering None: it decides before
it writes anything, and moto then answers the same request from the same state, with its own result or its own
error. The write itself comes last and is never turned into a refusal.

Where moto answers otherwise than DynamoDB, the engine answers as DynamoDB does (the list, and why, in
docs/embedded-dynamodb.md): UPDATED_OLD and UPDATED_NEW list every attribute the update names; UpdateItem tells
no ConsumedCapacity unasked; what DynamoDB refuses before it reads an item (an operand of the wrong type or the
same attribute on both sides anywhere in a condition, an empty attribute name) is its ValidationException even
where moto would evaluate or store it; a REMOVE or DELETE alone creates no item. tests/test_item_engine.py (cases)
and tests/test_engine_fuzz.py (requests hypothesis draws) run requests through the engine and through moto alone
and require the same answers (but for those) and the same items.

An exception the engine did not foresee is logged at ERROR (the tests fail on it) and the request left to moto.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.answers import Answer, empty_names, refused
from local_gateway.dynamodb.batch_reads import batch_get
from local_gateway.dynamodb.batch_writes import batch_write
from local_gateway.dynamodb.expressions import Unsupported, Value, placeholders_valid
from local_gateway.dynamodb.moto_items import (
    answer_attributes,
    check_index_keys,
    item_at,
    item_to_put,
    key_names,
    key_of,
    make_item,
    request_value,
    stored_value,
    write_item,
)
from local_gateway.dynamodb.queries import query
from local_gateway.dynamodb.updates import Expressions, compile_expressions

OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
_READS = {"BatchGetItem": batch_get, "Query": query}  # local_gateway/dynamodb/batch_reads.py, queries.py
_COMMON = {"TableName", "ExpressionAttributeNames", "ExpressionAttributeValues"}
_WRITES = {"ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"}
_ALLOWED = {
    "GetItem": _COMMON | {"Key", "ProjectionExpression", "ConsistentRead"},
    "PutItem": _COMMON | _WRITES | {"Item"},
    "DeleteItem": _COMMON | _WRITES | {"Key"},
    "UpdateItem": _COMMON | _WRITES | {"Key", "UpdateExpression"},
}
_RETURN_VALUES = {
    "PutItem": {"NONE", "ALL_OLD"},
    "DeleteItem": {"NONE", "ALL_OLD"},
    "UpdateItem": {"NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"},
}
CONDITION_FAILED = "ConditionalCheckFailedException"
EMPTY_ITEM_NAME = "One or more parameter values were invalid: Empty attribute name"  # DynamoDB's is not confirmed
Write = Callable[[], None]
logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table


class ItemEngine:
    """Answers item requests on moto's tables, or None to leave them to moto; counts both, by operation."""

    def __init__(self) -> None:
        self.served: Counter[str] = Counter()
        self.declined: Counter[str] = Counter()

    def answer(self, operation: str, request: dict[str, Any], backend: DynamoDBBackend) -> Answer | None:
        try:
            decided = self._decide(operation, request, backend)
        except Unsupported:
            decided = None  # beyond the engine: nothing was written, moto says what it makes of it
        except Exception:  # a bug here, not the request's fault: said loudly, and moto still answers
            logger.exception("the item engine failed on %s; left to moto", operation)
            decided = None
        if decided is None:
            self.declined[operation] += 1
            return None
        answer, write = decided
        if write is not None:
            write()  # decided: whatever happens now is the request's, not a reason to hand it to moto
        self.served[operation] += 1
        return answer

    def _decide(
        self, operation: str, request: dict[str, Any], backend: DynamoDBBackend
    ) -> tuple[Answer, Write | None] | None:
        """The answer, and the write that makes it true (None: nothing to write), or None for moto."""
        if operation in _READS:
            read = _READS[operation](request, backend)
            return None if read is None else (read, None)
        if operation == "BatchWriteItem":
            return batch_write(request, backend)
        if operation not in OPERATIONS or not request.keys() <= _ALLOWED[operation]:
            return None
        if request.get("ReturnValues", "NONE") not in _RETURN_VALUES.get(operation, {"NONE"}):
            return None
        if request.get("ReturnValuesOnConditionCheckFailure", "NONE") not in ("NONE", "ALL_OLD"):
            return None
        table = backend.tables.get(request["TableName"])
        expressions = _expressions(operation, request)
        if table is None or expressions is None:
            return None
        values = {name: request_value(value) for name, value in request.get("ExpressionAttributeValues", {}).items()}
        # DynamoDB's refusals of the request itself, found before any item is read, where moto answers otherwise.
        refusal = expressions.refusal(values)
        refusals = empty_names(request.get("ExpressionAttributeNames")) + ([refusal] if refusal else [])
        new: Item | None
        if operation == "PutItem":
            hash_key, range_key, new, put = item_to_put(table, request["Item"])  # its index keys checked too
            if "" in put:
                refusals.append(EMPTY_ITEM_NAME)
        else:
            hash_key, range_key = key_of(table, request["Key"])
        old = item_at(table, hash_key, range_key)
        if operation == "GetItem":
            if refusals:
                return _refusal(refusals)
            return (200, {} if old is None else {"Item": answer_attributes(old.attrs, expressions.projection)}), None
        current = {} if old is None else {name: (value.type, value.value) for name, value in old.attrs.items()}
        if operation == "UpdateItem":
            assert expressions.changes is not None
            if expressions.changes.keys() & set(key_names(table)):
                return None  # DynamoDB refuses to update a key attribute, whatever the condition
            if old is None and expressions.reads & set(key_names(table)):
                return None  # whether DynamoDB reads the key of the item an update creates is unsure
            # Computed before the condition is judged: an update DynamoDB would refuse is refused before that.
            written = {name: change(current, values) for name, change in expressions.changes.items()}
            check_index_keys(table, written)
        if refusals:
            return _refusal(refusals)
        if expressions.condition is not None and not expressions.condition(current, values):
            return _condition_failed(request, old), None
        if operation == "DeleteItem":
            return (200, _returned(request, old, None, {})), _write(table, hash_key, range_key, old, None)
        changed: dict[str, Value | None] = {}
        if operation == "UpdateItem":
            changed = written
            # DynamoDB: a REMOVE or DELETE alone on a missing item creates nothing (moto creates the key alone)
            removals_only = old is None and all(value is None for value in changed.values())
            new = None if removals_only else _updated(table, hash_key, range_key, old, changed)
        return (200, _returned(request, old, new, changed)), _write(table, hash_key, range_key, old, new)


def _updated(
    table: Table, hash_key: DynamoType, range_key: DynamoType | None, old: Item | None, changed: dict[str, Value | None]
) -> Item:
    """The item after an update. (A REMOVE or DELETE alone on a missing item creates none: the caller's.)"""
    attributes = dict(old.attrs) if old is not None else {}
    attributes[table.hash_key_attr] = hash_key
    if range_key and table.range_key_attr is not None:  # a range key comes only with a table that has one
        attributes[table.range_key_attr] = range_key
    for name, value in changed.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = stored_value(value)
    return make_item(hash_key, range_key, attributes)


def _refusal(refusals: list[str]) -> tuple[Answer, None] | None:
    """DynamoDB's refusal, which writes nothing, or None for moto."""
    answer = refused(refusals)
    return None if answer is None else (answer, None)


def _write(
    table: Table, hash_key: DynamoType, range_key: DynamoType | None, old: Item | None, new: Item | None
) -> Write | None:
    if old is None and new is None:
        return None
    return lambda: write_item(table, hash_key, range_key, old, new)


def _expressions(operation: str, request: dict[str, Any]) -> Expressions | None:
    if operation == "UpdateItem" and "UpdateExpression" not in request:
        return None
    names, values = request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues")
    expressions = compile_expressions(
        request.get("ConditionExpression"),
        request.get("UpdateExpression"),
        request.get("ProjectionExpression"),
        tuple(sorted((names or {}).items())),
    )
    if expressions is None or not placeholders_valid(names, values, expressions.names_used, expressions.values_used):
        return None
    return expressions


def _condition_failed(request: dict[str, Any], old: Item | None) -> Answer:
    failure: dict[str, Any] = {
        "Error": {"Message": "The conditional request failed", "Code": CONDITION_FAILED},
        "message": "The conditional request failed",
    }
    if old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
        failure["Item"] = answer_attributes(old.attrs)
    return 400, failure


def _returned(
    request: dict[str, Any], old: Item | None, new: Item | None, changed: dict[str, Value | None]
) -> dict[str, Any]:
    wanted = request.get("ReturnValues", "NONE")
    if wanted == "ALL_OLD" and old is not None:
        return {"Attributes": answer_attributes(old.attrs)}
    if wanted == "ALL_NEW":
        return {"Attributes": answer_attributes(new.attrs)} if new is not None else {}
    if wanted in ("UPDATED_OLD", "UPDATED_NEW"):
        source = old if wanted == "UPDATED_OLD" else new
        updated = {} if source is None else {name: value for name, value in source.attrs.items() if name in changed}
        return {"Attributes": answer_attributes(updated)} if updated else {}
    return {}
