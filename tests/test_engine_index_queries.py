"""The item engine's Query of a global secondary index (local_gateway/dynamodb/indexes.py, queries.py) and its
filters against moto alone: the same requests on two tables holding the same items, one through the engine and
one through moto, must give the same pages or the same error. Cases, writes the indexes must follow (the engine's
own and moto's), then requests hypothesis draws.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import strategies as st

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
from local_gateway.template import template
from tests.support.dynamodb import check_queries_against_moto, check_query_against_moto, compared_tables, query_outcome

SERVED, DECLINED = True, False
EXAMPLES = 200
NOW = 1000
CONNECTIONS = [f"CONN#{index}" for index in range(8)]
ROOMS = ["ROOM#a", "ROOM#b"]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _items() -> list[dict[str, Any]]:
    items = []
    for index, key in enumerate(CONNECTIONS):
        item = {
            "PK": s(key),
            "SK": s(key),
            "expiresAt": n(NOW - 2 + index),
            "protocol": s("sio" if index % 2 else "ws"),
        }
        if index % 4 != 3:  # the sparse index leaves some out
            item["live"] = s("LIVE" if index % 3 else "ROOM")
        item["other"] = s(f"o{index}")
        items.append(item)
        for room in ROOMS[: index % 3]:
            items.append({"PK": s(room), "SK": s(key), "expiresAt": n(NOW + 1 - index % 2)})
    return items


ITEMS = _items()


def live(value: str = "LIVE", **more: Any) -> dict[str, Any]:
    values = {":l": s(value), **more.pop("values", {})}
    return {
        "IndexName": "ByLiveKind",
        "KeyConditionExpression": "live = :l" + more.pop("condition", ""),
        "ExpressionAttributeValues": values,
        **more,
    }


def connection(key: str = "CONN#1", **more: Any) -> dict[str, Any]:
    return {
        "IndexName": "ByConnection",
        "KeyConditionExpression": "SK = :c",
        "ExpressionAttributeValues": {":c": s(key)},
        **more,
    }


FRESH = {"FilterExpression": "expiresAt > :now", "values": {":now": n(NOW)}}
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "the subscribers": (live(), SERVED),
    "the live subscribers, as the tick reads them": (live(**FRESH, ProjectionExpression="PK, protocol"), SERVED),
    "the rooms' counters": (live("ROOM"), SERVED),
    "a kind nobody has": (live("USER"), SERVED),
    "backwards, two at a time": (live(ScanIndexForward=False, Limit=2), SERVED),
    "from a key": (live(ExclusiveStartKey={"live": s("LIVE"), "PK": s("CONN#2"), "SK": s("CONN#2")}), SERVED),
    "backwards from a key": (
        live(ScanIndexForward=False, ExclusiveStartKey={"live": s("LIVE"), "PK": s("CONN#5"), "SK": s("CONN#5")}),
        SERVED,
    ),
    "from a key not in the index": (
        live(ExclusiveStartKey={"live": s("LIVE"), "PK": s("CONN#3"), "SK": s("x")}),
        SERVED,
    ),
    "counted, filtered, limited": (live(**FRESH, Select="COUNT", Limit=2), SERVED),
    "a filter after the limit": (live(**FRESH, Limit=3), SERVED),
    "a sort key condition": (live(condition=" AND begins_with(PK, :p)", values={":p": s("CONN#")}, Limit=3), SERVED),
    "a sort key range": (
        live(condition=" AND PK BETWEEN :a AND :b", values={":a": s("CONN#2"), ":b": s("CONN#6")}),
        SERVED,
    ),
    "consistent: DynamoDB's refusal": (live(ConsistentRead=True), SERVED),
    "not consistent": (live(ConsistentRead=False), SERVED),
    "an attribute the index does not project": (live(ProjectionExpression="PK, other"), DECLINED),
    "a filter on one it does not project": (live(FilterExpression="other > :o", values={":o": s("o")}), DECLINED),
    "a filter on the index's key": (live(FilterExpression="PK > :o", values={":o": s("C")}), DECLINED),
    "a filter on the table's sort key": (live(FilterExpression="SK > :o", values={":o": s("C")}), DECLINED),
    "a start key of another kind": (
        live(ExclusiveStartKey={"live": s("ROOM"), "PK": s("CONN#2"), "SK": s("CONN#2")}),
        DECLINED,
    ),
    "an index the table lacks": (live(IndexName="Nope"), DECLINED),
    "a connection's footprint": (connection(), SERVED),
    "a footprint a page at a time": (connection("CONN#5", Limit=1), SERVED),
    "a footprint from a key": (connection("CONN#5", ExclusiveStartKey={"SK": s("CONN#5"), "PK": s("ROOM#a")}), SERVED),
    "a footprint, keys only, projected": (connection(ProjectionExpression="PK"), SERVED),
    "a footprint's attribute it does not project": (connection(ProjectionExpression="expiresAt"), DECLINED),
    "a room's live members": (
        {
            "KeyConditionExpression": "PK = :r AND begins_with(SK, :c)",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":r": s("ROOM#a"), ":c": s("CONN#"), ":now": n(NOW)},
            "ProjectionExpression": "SK, protocol, deliveredSeq",
            "ConsistentRead": True,
        },
        SERVED,
    ),
}


@pytest.fixture(scope="module")
def clients(engine_dynamodb: EmbeddedDynamoDB) -> tuple[Any, Any, str, str]:
    """The engine's client, moto's, and a table for each holding ITEMS (set through moto)."""
    fast, plain, tables = compared_tables(engine_dynamodb, "index", 2, ITEMS)
    return fast, plain, tables[0], tables[1]


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_queries_an_index_as_moto_does(clients, engine_dynamodb, case):
    check_query_against_moto(clients, engine_dynamodb.item_engine, *CASES[case])


def test_the_engine_refuses_a_consistent_read_of_an_index_as_dynamodb_does(clients):
    fast, _, engine_table, _ = clients
    answer = query_outcome(fast, engine_table, live(ConsistentRead=True))
    assert answer == ("error", "ValidationException", "Consistent reads are not supported on global secondary indexes")


WRITES: list[tuple[str, dict[str, Any]]] = [
    ("put_item", {"Item": {"PK": s("CONN#9"), "SK": s("CONN#9"), "live": s("LIVE"), "expiresAt": n(NOW + 5)}}),
    ("update_item", {"Key": {"PK": s("CONN#1"), "SK": s("CONN#1")}, "UpdateExpression": "REMOVE live"}),
    (
        "update_item",
        {
            "Key": {"PK": s("CONN#3"), "SK": s("CONN#3")},
            "UpdateExpression": "SET live = :l, protocol = :p",
            "ExpressionAttributeValues": {":l": s("LIVE"), ":p": s("ws")},
        },
    ),
    ("delete_item", {"Key": {"PK": s("CONN#2"), "SK": s("CONN#2")}}),
    (  # answered by moto (the engine leaves ReturnConsumedCapacity to it), which writes its item in place
        "update_item",
        {
            "Key": {"PK": s("CONN#7"), "SK": s("CONN#7")},
            "UpdateExpression": "SET live = :l",
            "ExpressionAttributeValues": {":l": s("LIVE")},
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    (
        "update_item",
        {
            "Key": {"PK": s("CONN#4"), "SK": s("CONN#4")},
            "UpdateExpression": "SET live = :l",
            "ExpressionAttributeValues": {":l": s("ROOM")},
        },
    ),
    ("delete_item", {"Key": {"PK": s("CONN#9"), "SK": s("CONN#9")}}),
]


def test_an_index_follows_every_write_the_engine_and_moto_make(engine_dynamodb):
    fast, plain = engine_dynamodb.client(), EmbeddedDynamoDB(fast_path=False).client()
    tables = [f"writes-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for table in tables:
        ensure_table(plain, table, template())
        for item in ITEMS:
            plain.put_item(TableName=table, Item=item)
    reads = [live(), live("ROOM"), live(**FRESH, ProjectionExpression="PK, protocol"), connection("CONN#9")]
    for operation, write in WRITES:
        for client, table in ((fast, tables[0]), (plain, tables[1])):
            getattr(client, operation)(TableName=table, **write)
        for read in reads:
            assert query_outcome(fast, tables[0], read) == query_outcome(plain, tables[1], read), (
                operation,
                write,
                read,
            )


_KEYS = [*CONNECTIONS, "CONN#", "CONN#3x", "ROOM#a", "A", "Z"]
_PARTS = st.fixed_dictionaries(
    {
        "index": st.sampled_from(["ByLiveKind", "ByLiveKind", "ByConnection", None]),
        "partition": st.sampled_from(["LIVE", "LIVE", "ROOM", "USER", *CONNECTIONS[:3], *ROOMS]),
        "condition": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["=", "<", "<=", ">", ">=", "begins_with"]), st.sampled_from(_KEYS)),
        ),
        "filter": st.sampled_from(
            [
                None,
                "expiresAt > :f",
                "expiresAt <= :f OR attribute_not_exists(protocol)",
                "protocol = :p",
                "NOT protocol = :p AND expiresAt > :f",
                "attribute_exists(expiresAt)",
                "begins_with(protocol, :p)",
            ]
        ),
        "limit": st.one_of(st.none(), st.integers(1, 6)),
        "forward": st.one_of(st.none(), st.booleans()),
        "consistent": st.sampled_from([None, None, None, False, True]),
        "start": st.one_of(st.none(), st.sampled_from(ITEMS)),
        "projection": st.sampled_from([None, None, "PK", "PK, protocol", "SK, expiresAt"]),
        "count": st.sampled_from([False, False, False, True]),
    }
)


def drawn_request(parts: dict[str, Any]) -> dict[str, Any]:
    index = parts["index"]
    partition, sort = {"ByLiveKind": ("live", "PK"), "ByConnection": ("SK", "PK"), None: ("PK", "SK")}[index]
    values: dict[str, Any] = {":v": s(parts["partition"])}
    text = f"{partition} = :v"
    if parts["condition"] is not None:
        comparison, bound = parts["condition"]
        values[":b"] = s(bound)
        text += f" AND begins_with({sort}, :b)" if comparison == "begins_with" else f" AND {sort} {comparison} :b"
    request: dict[str, Any] = {"KeyConditionExpression": text}
    if index is not None:
        request["IndexName"] = index
    if parts["filter"] is not None:
        request["FilterExpression"] = parts["filter"]
        values.update(
            {
                placeholder: value
                for placeholder, value in ((":f", n(NOW)), (":p", s("s")))
                if placeholder in parts["filter"]
            }
        )
    if parts["count"]:
        request["Select"] = "COUNT"
    elif parts["projection"] is not None:
        request["ProjectionExpression"] = parts["projection"]
    for name, parameter in (("limit", "Limit"), ("forward", "ScanIndexForward"), ("consistent", "ConsistentRead")):
        if parts[name] is not None:
            request[parameter] = parts[name]
    start = parts["start"]
    if start is not None:
        names = {"PK", "SK", partition, sort}
        if all(name in start for name in names):
            request["ExclusiveStartKey"] = {name: start[name] for name in names}
    request["ExpressionAttributeValues"] = values
    return request


def test_the_engine_answers_drawn_index_queries_as_moto_does(clients, engine_dynamodb):
    check_queries_against_moto(clients, engine_dynamodb.item_engine, _PARTS, drawn_request, EXAMPLES)


def test_an_index_page_stops_at_1_mb_as_moto_s_does(engine_dynamodb):
    fast, plain = engine_dynamodb.client(), EmbeddedDynamoDB(fast_path=False).client()
    tables = [f"large-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for table in tables:
        ensure_table(plain, table, template())
        for index in range(7):
            key = s(f"CONN#{index}")
            item = {"PK": key, "SK": key, "live": s("LIVE"), "pad": s("x" * (150_000 + 20_000 * index))}
            plain.put_item(TableName=table, Item=item)
    served = engine_dynamodb.item_engine.served["Query"]
    for request in (live(), live(ScanIndexForward=False), live(Select="COUNT", Limit=6)):
        first = query_outcome(fast, tables[0], request)
        assert first == query_outcome(plain, tables[1], request)
        assert first[-1] is not None  # cut
    assert engine_dynamodb.item_engine.served["Query"] == served + 3
