"""What the queries that grew with the table cost: the scheduled tick's subscriber list (a Query of the sparse
index ByLiveKind with a filter), a published update's recipients (one room's members, filtered), the reconciler's
count (Select=COUNT on the index) and a connection's footprint (ByConnection), each through the embedded
DynamoDB's direct transport with the item engine on, then off (moto answers, as every such Query was before the
engine read indexes), on a table of CONNECTIONS connections and about five times as many other items.

    python -m bench.index_queries
    INDEX_QUERIES_CONNECTIONS=1000 INDEX_QUERIES_REPEAT=30 python -m bench.index_queries

Also: the first index read after a write moto answered (the engine builds the table's indexes again, once).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
from local_gateway.template import template

ROOMS = 50
ROOMS_PER_CONNECTION = 2
HISTORY_PER_ROOM = 60  # other items: each room's recent updates


def s(value: str) -> dict[str, str]:
    return {"S": value}


def fill(client: Any, table: str, connections: int, now: int) -> int:
    items: list[dict[str, Any]] = []
    for n in range(connections):
        key = s(f"CONN#c{n:06d}")
        rooms = [f"room{(n + k) % ROOMS}" for k in range(ROOMS_PER_CONNECTION)]
        items.append(
            {
                "PK": key,
                "SK": key,
                "live": s("LIVE"),
                "expiresAt": {"N": str(now + 600)},
                "protocol": s("sio"),
                "roomIds": {"SS": rooms},
            }
        )
        items += [
            {"PK": s(f"ROOM#{room}"), "SK": key, "expiresAt": {"N": str(now + 600)}, "protocol": s("sio")}
            for room in rooms
        ]
    for room in range(ROOMS):
        items.append(
            {"PK": s(f"ROOM#room{room}"), "SK": s(f"ROOM#room{room}"), "live": s("ROOM"), "members": {"N": "40"}}
        )
        items += [
            {"PK": s(f"HIST#room{room}"), "SK": s(f"SEQ#{seq:08d}"), "payload": s("x" * 200)}
            for seq in range(HISTORY_PER_ROOM)
        ]
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        client.batch_write_item(RequestItems={table: batch})
    return len(items)


def requests(now: int) -> dict[str, dict[str, Any]]:
    fresh = {":now": {"N": str(now)}}
    return {
        "tick's subscribers": {
            "IndexName": "ByLiveKind",
            "KeyConditionExpression": "live = :live",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":live": s("LIVE"), **fresh},
            "ProjectionExpression": "PK, protocol",
        },
        "publish's recipients": {
            "KeyConditionExpression": "PK = :room AND begins_with(SK, :conn)",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":room": s("ROOM#room7"), ":conn": s("CONN#"), **fresh},
            "ProjectionExpression": "SK, protocol, recovering, deliveredSeq",
            "ConsistentRead": True,
        },
        "reconciler's count": {
            "IndexName": "ByLiveKind",
            "KeyConditionExpression": "live = :live",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":live": s("LIVE"), **fresh},
            "Select": "COUNT",
        },
        "a connection's footprint": {
            "IndexName": "ByConnection",
            "KeyConditionExpression": "SK = :key",
            "ExpressionAttributeValues": {":key": s("CONN#c000007")},
        },
    }


def read_all(client: Any, table: str, request: dict[str, Any]) -> int:
    kwargs, total = {"TableName": table, **request}, 0
    while True:
        page = client.query(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def median_ms(client: Any, table: str, request: dict[str, Any], repeat: int) -> tuple[float, int]:
    timings, count = [], 0
    for _ in range(repeat):
        start = time.process_time()
        count = read_all(client, table, request)
        timings.append((time.process_time() - start) * 1000)
    return statistics.median(timings), count


def main() -> None:
    ensure_local_credentials()
    connections = int(os.environ.get("INDEX_QUERIES_CONNECTIONS", "1000"))
    repeat = int(os.environ.get("INDEX_QUERIES_REPEAT", "20"))
    now = int(time.time())
    fast, plain = EmbeddedDynamoDB().client(), EmbeddedDynamoDB(fast_path=False).client()
    table = f"index-bench-{uuid.uuid4().hex[:8]}"
    ensure_table(plain, table, template())
    items = fill(plain, table, connections, now)
    print(f"{items} items ({connections} connections); CPU ms per query, median of {repeat}")
    print(f"{'query':28} {'moto':>9} {'engine':>9} {'items':>6}")
    for name, request in requests(now).items():
        read_all(fast, table, request)  # the engine builds the indexes once
        moto_ms, moto_count = median_ms(plain, table, request, max(3, repeat // 4))
        engine_ms, engine_count = median_ms(fast, table, request, repeat)
        assert moto_count == engine_count, (name, moto_count, engine_count)
        print(f"{name:28} {moto_ms:9.2f} {engine_ms:9.2f} {engine_count:6}")
    rebuilds = []
    tick = requests(now)["tick's subscribers"]
    for _ in range(5):
        plain.update_item(
            TableName=table,
            Key={"PK": s("X"), "SK": s("X")},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
        rebuilds.append(median_ms(fast, table, tick, 1)[0])
    print(f"the tick's query after a write moto answered (indexes built again): {statistics.median(rebuilds):.2f} ms")


if __name__ == "__main__":
    main()
