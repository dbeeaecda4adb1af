"""Does a connect, a join or a leave get slower as the table grows? Each timed through the embedded DynamoDB's
direct transport, the gateway functions' own client (the item engine, then moto), or with TABLE_GROWTH_DOOR=mock_aws
against moto alone in-process (`moto.mock_aws`), on two tables: one empty, one with ITEMS items already in it.
The calls alternate between the two, so that whatever else the machine does weighs on both alike.

    python -m bench.table_growth
    TABLE_GROWTH_ITEMS=20000 TABLE_GROWTH_REPEAT=30 TABLE_GROWTH_DOOR=direct|mock_aws python -m bench.table_growth

The filler is the project's own item layout: connections (with `roomIds`) and their memberships, five items a
connection, written by BatchWriteItem. Each round trip is one call of Store.add_connection, Rooms.join_room or
Rooms.leave_room, with every DynamoDB call it makes (the counters included); the median is reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

EMPTY, FULL = "growth-empty", "growth-full"
ROOMS_PER_FILLER = 4  # a filler connection's item and its 4 memberships: 5 items
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
CALLS = ("connect", "join", "leave")


def fill(client: Any, table_name: str, items: int) -> None:
    """`items` items as the project writes them: filler connections, each in ROOMS_PER_FILLER dashboards."""
    expires = {"N": str(int(time.time()) + 3600)}
    requests: list[dict[str, Any]] = []
    for n in range(items // (1 + ROOMS_PER_FILLER)):
        conn = {"S": f"CONN#filler{n:07d}="}
        rooms = [f"room{(n + k) % 500}" for k in range(ROOMS_PER_FILLER)]
        requests.append({"PK": conn, "SK": conn, "expiresAt": expires, "roomIds": {"SS": rooms}})
        requests += [{"PK": {"S": f"ROOM#{room}"}, "SK": conn, "expiresAt": expires} for room in rooms]
    for start in range(0, len(requests), 25):
        batch = [{"PutRequest": {"Item": item}} for item in requests[start : start + 25]]
        pending: dict[str, Any] = {table_name: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def count(client: Any, table_name: str) -> int:
    """The table's items (a bench may scan; the product never does)."""
    total, kwargs = 0, {"TableName": table_name, "Select": "COUNT"}
    while True:
        page = client.scan(**kwargs)
        total += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def round_trips(tables: dict[str, tuple[Any, Any]], prefix: str, repeat: int) -> dict[str, dict[str, float]]:
    """The median milliseconds of each call on each table (name: (store, rooms)), over `repeat` fresh connections
    that connect, join and leave, one table after the other."""
    timings: dict[str, dict[str, list[float]]] = {name: {call: [] for call in CALLS} for name in tables}

    def timed(name: str, call: str, action: Callable[..., Any], *args: Any) -> None:
        started = time.perf_counter()
        action(*args)
        timings[name][call].append((time.perf_counter() - started) * 1000)

    for n in range(repeat):
        cid = f"{prefix}{n:07d}="
        for name, (store, _) in tables.items():
            timed(name, "connect", store.add_connection, cid, None)
        for name, (_, rooms) in tables.items():
            timed(name, "join", rooms.join_room, cid, "bench", 20)
        for name, (_, rooms) in tables.items():
            timed(name, "leave", rooms.leave_room, cid, "bench")
    return {
        name: {call: statistics.median(values) for call, values in by_call.items()} for name, by_call in timings.items()
    }


def measure(client: Any, items: int, repeat: int) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    from local_gateway.dynamodb.embedded import ensure_table
    from local_gateway.template import template
    from shared.rooms import Rooms
    from shared.store import Store
    from shared.table import Table

    tables = {}
    for name in (EMPTY, FULL):
        ensure_table(client, name, template())
        table = Table(client, name)
        tables[name] = (Store(table), Rooms(table))
    fill(client, FULL, items)
    round_trips(tables, "WARMUP", 5)  # botocore's models and moto's first requests, not counted
    sizes = {name: count(client, name) for name in tables}
    return sizes, round_trips(tables, "TIMED", repeat)


def main() -> None:
    for name, value in FAKE_AWS.items():
        os.environ.setdefault(name, value)
    import boto3
    from moto import mock_aws

    from local_gateway.dynamodb.embedded import EmbeddedDynamoDB

    items = int(os.environ.get("TABLE_GROWTH_ITEMS", "20000"))
    repeat = int(os.environ.get("TABLE_GROWTH_REPEAT", "30"))
    if os.environ.get("TABLE_GROWTH_DOOR", "direct") == "mock_aws":
        transport = "moto in-process (mock_aws)"
        with mock_aws():
            sizes, medians = measure(boto3.client("dynamodb", region_name="us-east-1"), items, repeat)
    else:
        transport = "the embedded DynamoDB's direct transport (the item engine, then moto)"
        sizes, medians = measure(EmbeddedDynamoDB().client(), items, repeat)
    print(f"Median round trip of {repeat} calls each, {transport}, Python {platform.python_version()}")
    print()
    print(f"| call | table of {sizes[EMPTY]} items (ms) | table of {sizes[FULL]:,} items (ms) | ratio |")
    print("|---|---:|---:|---:|")
    labels = {"connect": "connect (Store.add_connection)", "join": "join (Rooms.join_room)"}
    labels["leave"] = "leave (Rooms.leave_room)"
    for call in CALLS:
        empty, full = medians[EMPTY][call], medians[FULL][call]
        print(f"| {labels[call]} | {empty:.1f} | {full:.1f} | {full / empty:.2f}x |")


if __name__ == "__main__":
    main()
