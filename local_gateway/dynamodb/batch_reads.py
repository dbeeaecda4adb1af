"""The item engine's BatchGetItem (local_gateway/dynamodb/item_engine.py): each table's keys read from moto's tables
as GetItem reads one, under the same rules: the request's every parameter understood, each key exactly the table's,
a projection within the engine's grammar, its placeholders defined and used; else None, and moto answers.

It refuses what DynamoDB refuses before it reads an item, with DynamoDB's messages (moto's, which quote it): more
than 100 keys for one table or in all, the same key twice for one table, an empty attribute name behind a
placeholder. Its answer is DynamoDB's: `Responses` by table, in the order of the keys (DynamoDB keeps no order),
`UnprocessedKeys` empty, and no `ConsumedCapacity` unasked (moto always tells one). A reply that could pass
DynamoDB's 16 MB is moto's to answer: it is the one that leaves keys unprocessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.answers import DUPLICATES, Answer, empty_names, refused
from local_gateway.dynamodb.expressions import Unsupported, placeholders_valid
from local_gateway.dynamodb.moto_items import MAX_ITEM_BYTES, answer_attributes, item_at, key_of
from local_gateway.dynamodb.updates import compile_expressions

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

Projection = tuple[str, ...] | None  # None: every attribute
MAX_KEYS = 100
MAX_REPLY_BYTES = 16 * 1024 * 1024
_SURELY_SMALL = MAX_REPLY_BYTES // MAX_ITEM_BYTES  # this many items of at most 400 KB cannot pass 16 MB
_TABLE_PARAMETERS = {"Keys", "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"}
TOO_MANY_FOR_TABLE = (
    "1 validation error detected: Value at 'requestItems.{}.member.keys' failed to satisfy constraint: "
    "Member must have length less than or equal to 100"
)
TOO_MANY = "Too many items requested for the BatchGetItem call"


def batch_get(request: dict[str, Any], backend: DynamoDBBackend) -> Answer | None:
    """DynamoDB's answer to a BatchGetItem, or None for moto. It writes nothing."""
    if not request.keys() <= {"RequestItems", "ReturnConsumedCapacity"}:
        return None
    if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
        return None  # moto's figures are not DynamoDB's either: left to it
    batches: dict[str, Any] = request["RequestItems"]
    refusals = [TOO_MANY_FOR_TABLE.format(name) for name, batch in batches.items() if len(batch["Keys"]) > MAX_KEYS]
    if not refusals and sum(len(batch["Keys"]) for batch in batches.values()) > MAX_KEYS:
        refusals.append(TOO_MANY)
    if refusals:  # DynamoDB looks no further (nor does moto)
        return refused(refusals[:1])
    reads = []
    for name, batch in batches.items():
        read = _table_read(batch, backend.tables.get(name))
        if read is None:
            return None
        reads.append((name, *read))
    refusals = [refusal for _, _, _, table_refusals in reads for refusal in table_refusals]
    if refusals:
        return refused(refusals)
    responses = {
        name: [answer_attributes(item.attrs, projection) for item in items] for name, items, projection, _ in reads
    }
    return 200, {"Responses": responses, "UnprocessedKeys": {}}


def _table_read(batch: dict[str, Any], table: Table | None) -> tuple[list[Item], Projection, list[str]] | None:
    """One table's items in the order of its keys (missing ones left out), its projection and DynamoDB's refusals
    of its part of the request; None for moto."""
    if table is None or not batch.keys() <= _TABLE_PARAMETERS:
        return None
    names = batch.get("ExpressionAttributeNames")
    named = tuple(sorted((names or {}).items()))
    expressions = compile_expressions(None, None, batch.get("ProjectionExpression"), named)
    if expressions is None or not placeholders_valid(names, None, expressions.names_used, expressions.values_used):
        return None
    seen: set[tuple[Any, Any]] = set()
    items: list[Item] = []
    for key in batch["Keys"]:
        hash_key, range_key = key_of(table, key)  # Unsupported: not the table's key, moto answers
        seen.add((hash_key.value, None if range_key is None else range_key.value))
        item = item_at(table, hash_key, range_key)
        if item is not None:
            items.append(item)
    if len(batch["Keys"]) > _SURELY_SMALL and sum(item.size() for item in items) > MAX_REPLY_BYTES:
        raise Unsupported("a reply DynamoDB would cut at 16 MB")
    refusals = [DUPLICATES] if len(seen) != len(batch["Keys"]) else []
    refusals += empty_names(names)
    return items, expressions.projection, refusals
