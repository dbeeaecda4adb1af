"""The item engine's BatchWriteItem (local_gateway/dynamodb/batch_writes.py) against moto alone: each batch runs on
two pairs of tables holding the same items, one through the engine (fast path on) and one through moto (fast path
off), and must give the same answer or error (the tables' names aside) and leave the same items. DynamoDB sends
ConsumedCapacity and ItemCollectionMetrics only when asked; moto always does: the comparison leaves them out, and
one test holds the engine to DynamoDB's answer.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import given
from hypothesis import strategies as st

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB
from tests.support.dynamodb import compared_tables, differential

SERVED, DECLINED = True, False
EXAMPLES = 100
NAMES = ("a", "b", "c", "x")  # x: no item


def key(name: str) -> dict[str, Any]:
    return {"PK": {"S": f"ROOM#{name}"}, "SK": {"S": "CONN#c"}}


def delete(name: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": key(name)}}


def put(name: str) -> dict[str, Any]:
    return {"PutRequest": {"Item": {**key(name), "n": {"N": "1"}}}}


CASES: dict[str, tuple[dict[int, list[dict[str, Any]]], bool]] = {
    "two deletes": ({0: [delete("a"), delete("b")]}, SERVED),
    "a delete of no item": ({0: [delete("x")]}, SERVED),
    "25 deletes": ({0: [{"DeleteRequest": {"Key": key(str(n))}} for n in range(25)]}, SERVED),
    "the same key twice": ({0: [delete("a"), delete("b"), delete("a")]}, SERVED),
    "the same key in two tables": ({0: [delete("a")], 1: [delete("a")]}, DECLINED),
    "other keys in two tables": ({0: [delete("a")], 1: [delete("b"), delete("c")]}, SERVED),
    "26 deletes": ({0: [{"DeleteRequest": {"Key": key(str(n))}} for n in range(26)]}, DECLINED),
    "a put and a delete": ({0: [put("a"), delete("b")]}, SERVED),
    "puts of new items": ({0: [put("x"), put("y")]}, SERVED),
    "a put and a delete of one key": ({0: [put("a"), delete("a")]}, DECLINED),
    "a delete and a put of one key": ({0: [delete("a"), put("a")]}, DECLINED),
    "a put in each table": ({0: [put("a")], 1: [put("b")]}, SERVED),
    "a put of a half item": ({0: [{"PutRequest": {"Item": {"PK": {"S": "ROOM#a"}}}}]}, DECLINED),
    "a put with an empty string": ({0: [{"PutRequest": {"Item": {**key("a"), "e": {"S": ""}}}}]}, DECLINED),
    "a half key": ({0: [{"DeleteRequest": {"Key": {"PK": {"S": "ROOM#a"}}}}]}, DECLINED),
}


@pytest.fixture(scope="module")
def clients(engine_dynamodb: EmbeddedDynamoDB) -> tuple[Any, Any, list[str], list[str]]:
    fast, plain, tables = compared_tables(engine_dynamodb, "bw", 4)
    return fast, plain, tables[:2], tables[2:]


def outcome(client: Any, reader: Any, tables: list[str], request: dict[int, list[dict[str, Any]]]) -> tuple[Any, ...]:
    """The answer or error (tables named by index, less ConsumedCapacity and ItemCollectionMetrics) and the items
    left in each table, from tables holding the items a, b and c alone."""
    for table in tables:
        for item in reader.scan(TableName=table)["Items"]:
            reader.delete_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
        for name in NAMES[:3]:
            reader.put_item(TableName=table, Item=key(name))
    try:
        answer = client.batch_write_item(RequestItems={tables[index]: part for index, part in request.items()})
        result: tuple[Any, ...] = ("ok", answer["UnprocessedItems"])
    except ClientError as error:
        message = error.response["Error"]["Message"]
        for index, table in enumerate(tables):
            message = message.replace(table, f"table {index}")
        result = ("error", error.response["Error"]["Code"], message)
    except ParamValidationError as error:
        result = ("invalid", str(error))
    scans = [reader.scan(TableName=table)["Items"] for table in tables]
    left = [sorted(json.dumps(item, sort_keys=True) for item in items) for items in scans]
    return result, left


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_writes_a_batch_as_moto_does(clients, engine_dynamodb, case):
    fast, plain, engine_tables, moto_tables = clients
    request, expected = CASES[case]
    served = engine_dynamodb.item_engine.served
    before = served["BatchWriteItem"]
    through_engine = outcome(fast, plain, engine_tables, request)
    assert (served["BatchWriteItem"] > before) is expected
    assert through_engine == outcome(plain, plain, moto_tables, request)


def test_a_batch_write_tells_no_consumed_capacity_or_item_collection_metrics_unasked(clients):
    fast, _, (table, _), _ = clients
    answer = fast.batch_write_item(RequestItems={table: [delete("a")]})
    assert answer["UnprocessedItems"] == {}
    assert not answer.keys() & {"ConsumedCapacity", "ItemCollectionMetrics"}


_REQUESTS = st.lists(
    st.one_of(st.sampled_from(NAMES).map(delete), st.sampled_from(NAMES).map(delete), st.sampled_from(NAMES).map(put)),
    min_size=1,
    max_size=6,
)


def test_the_engine_writes_drawn_batches_as_moto_does(clients, engine_dynamodb):
    fast, plain, engine_tables, moto_tables = clients
    engine = engine_dynamodb.item_engine
    seen: Counter[str] = Counter()

    @differential(EXAMPLES)
    @given(tables=st.lists(_REQUESTS, min_size=1, max_size=2))
    def check(tables: list[list[dict[str, Any]]]) -> None:
        request = dict(enumerate(tables))
        before = engine.served["BatchWriteItem"]
        through_engine = outcome(fast, plain, engine_tables, request)
        seen["served" if engine.served["BatchWriteItem"] > before else "declined"] += 1
        assert through_engine == outcome(plain, plain, moto_tables, request), request

    check()
    assert seen["served"] >= EXAMPLES // 4, seen
