"""The item engine's BatchWriteItem (local_gateway/dynamodb/item_engine.py): the deletes a connection's cleanup sends
(shared/table.py `batch_delete`), on moto's tables, decided before any is made.

It answers a batch of at most 25 `DeleteRequest`s, each key exactly its table's: it refuses the same key twice in
one table with DynamoDB's (and moto's) `Provided list of item keys contains duplicates`, deletes the others
(nothing for a key without an item) and answers `UnprocessedItems` empty, without the `ConsumedCapacity` and
`ItemCollectionMetrics` DynamoDB sends only when asked (moto always does). A `PutRequest`, more than 25 requests,
the same key in two tables (a duplicate to moto; DynamoDB's answer is unsure) or anything else is moto's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.moto_items import item_at, key_of, write_item

if TYPE_CHECKING:
    from collections.abc import Callable

    from moto.dynamodb.models import DynamoDBBackend

Answer = tuple[int, dict[str, Any]]
MAX_REQUESTS = 25
DUPLICATES = "Provided list of item keys contains duplicates"


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
    deletes = []
    duplicates = False
    everywhere: set[tuple[Any, Any]] = set()
    for name, requests in batches.items():
        table = backend.tables.get(name)
        if table is None:
            return None
        seen = set()
        for each in requests:
            if each.keys() != {"DeleteRequest"} or each["DeleteRequest"].keys() != {"Key"}:
                return None
            hash_key, range_key = key_of(table, each["DeleteRequest"]["Key"])  # Unsupported: moto answers
            identity = (hash_key.value, None if range_key is None else range_key.value)
            duplicates = duplicates or identity in seen
            seen.add(identity)
            deletes.append((table, hash_key, range_key))
        if everywhere & seen:
            return None  # the same key in two tables: moto calls it a duplicate, DynamoDB's answer is unsure
        everywhere |= seen
    if duplicates:
        return (400, {"Error": {"Message": DUPLICATES, "Code": "ValidationException"}}), None

    def write() -> None:
        for table, hash_key, range_key in deletes:
            old = item_at(table, hash_key, range_key)
            if old is not None:
                write_item(table, hash_key, range_key, old, None)

    return (200, {"UnprocessedItems": {}}), write
