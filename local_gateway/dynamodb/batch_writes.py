"""The item engine's BatchWriteItem (local_gateway/dynamodb/item_engine.py): the deletes a connection's cleanup sends
(shared/table.py `batch_delete`) and the puts a new session sends (`batch_put`), on moto's tables, decided before
any is made.

It answers a batch of at most 25 `DeleteRequest`s and `PutRequest`s, each key exactly its table's and each put's
item made of plain values (as the engine's PutItem takes them): it refuses a key deleted twice in one table with
DynamoDB's (and moto's) `Provided list of item keys contains duplicates`, writes the others (a delete of a key
without an item does nothing) and answers `UnprocessedItems` empty, without the `ConsumedCapacity` and
`ItemCollectionMetrics` DynamoDB sends only when asked (moto always does). More than 25 requests, the same key in
two tables (a duplicate to moto; DynamoDB's answer is unsure), a key put and written again in one batch (moto
writes both, DynamoDB refuses a duplicate: moto's answer, as moto alone gives it), a value or an index key the
engine's PutItem would leave to moto, or anything else is moto's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.answers import DUPLICATES, Answer, validation_error
from local_gateway.dynamodb.expressions import Unsupported
from local_gateway.dynamodb.moto_items import item_at, item_to_put, key_of, write_item

if TYPE_CHECKING:
    from collections.abc import Callable

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

MAX_REQUESTS = 25


def batch_write(request: dict[str, Any], backend: DynamoDBBackend) -> tuple[Answer, Callable[[], None] | None] | None:
    """DynamoDB's answer to a batch of deletes and the write that makes it true, or None for moto."""
    if not request.keys() <= {"RequestItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}:
        return None
    if (
        request.get("ReturnConsumedCapacity", "NONE") != "NONE"
        or request.get("ReturnItemCollectionMetrics", "NONE") != "NONE"
    ):
        return None
    batches: dict[str, list[dict[str, Any]]] = request["RequestItems"]
    if sum(len(requests) for requests in batches.values()) > MAX_REQUESTS:
        return None  # DynamoDB refuses it; moto writes it: moto's answer
    writes: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []  # the item to put; None: delete
    duplicates = False
    everywhere: set[tuple[Any, Any]] = set()
    for name, requests in batches.items():
        table = backend.tables.get(name)
        if table is None:
            return None
        seen, puts = set(), set()
        for each in requests:
            if each.keys() == {"DeleteRequest"} and each["DeleteRequest"].keys() == {"Key"}:
                hash_key, range_key = key_of(table, each["DeleteRequest"]["Key"])  # Unsupported: moto answers
                new = None
            elif each.keys() == {"PutRequest"} and each["PutRequest"].keys() == {"Item"}:
                hash_key, range_key, new = _put(table, each["PutRequest"]["Item"])
            else:
                return None
            identity = (hash_key.value, None if range_key is None else range_key.value)
            if identity in seen and (new is not None or identity in puts):
                return None  # a key put and written again: moto takes it, DynamoDB refuses it (a duplicate)
            duplicates = duplicates or identity in seen
            seen.add(identity)
            if new is not None:
                puts.add(identity)
            writes.append((table, hash_key, range_key, new))
        if everywhere & seen:
            return None  # the same key in two tables: moto calls it a duplicate, DynamoDB's answer is unsure
        everywhere |= seen
    if duplicates:
        return validation_error(DUPLICATES), None

    def write() -> None:
        for table, hash_key, range_key, new in writes:
            old = item_at(table, hash_key, range_key)
            if old is not None or new is not None:
                write_item(table, hash_key, range_key, old, new)

    return (200, {"UnprocessedItems": {}}), write


def _put(table: Table, attributes: Any) -> tuple[DynamoType, DynamoType | None, Item]:
    """A put's key and the item it writes; Unsupported (moto answers) for anything the engine's PutItem leaves it."""
    hash_key, range_key, item, put = item_to_put(table, attributes)
    if "" in put:
        raise Unsupported("an empty attribute name")  # DynamoDB's refusal and moto's may differ: moto's
    return hash_key, range_key, item
