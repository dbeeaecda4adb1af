"""The embedded DynamoDB's transports compared: CPU of this process per call, for each way to reach moto.

    python -m bench.dynamodb_transports  (or BENCH_SECTIONS=dynamodb make bench)

The gateway's functions call the direct transport (local_gateway/dynamodb/moto_transports.py): the item engine
answers their item reads and writes on moto's tables (local_gateway/dynamodb/item_engine.py), moto the rest. Before,
they took the wire transport (botocore's whole send path, then moto's own botocore hook), and before that moto's HTTP
server in the same process, so the client's HTTP and the server's werkzeug and Flask were paid too. All serve the
same tables.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from statistics import median
from typing import Any

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
from local_gateway.template import template
from shared.clients import client_config

KEY = {"PK": {"S": "CONN#bench"}, "SK": {"S": "CONN#bench"}}
CALLS = int(os.environ.get("DOORS_CALLS", "300"))
ROUNDS = 5  # timed runs of each measure; the median is reported


def _call_pair(client: Any, table: str) -> None:
    """What requestLiveMetrics asks of DynamoDB: the rate limiter's UpdateItem, then the counters' GetItem."""
    client.update_item(
        TableName=table,
        Key=KEY,
        UpdateExpression="ADD rateTat :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    client.get_item(TableName=table, Key=KEY, ConsistentRead=True)


def median_cpu_ms(work: Callable[[], Any], repeat: int, warm: int) -> float:
    """CPU of this process per `work()` (both ends of the HTTP port are in it), after `warm` unmeasured ones
    (connections, botocore's caches): the median of ROUNDS runs of `repeat`."""
    for _ in range(warm):
        work()
    samples = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(repeat):
            work()
        samples.append((time.process_time() - started) / repeat * 1000)
    return median(samples)


def cpu_ms_per_call(client: Any, table: str) -> float:
    return median_cpu_ms(lambda: _call_pair(client, table), CALLS // 2, warm=20) / 2  # two calls a round


def product_calls(client: Any, table_name: str) -> list[tuple[str, str, float]]:
    """CPU per product call (the store's own methods, each its DynamoDB requests), through `client`."""
    from shared.counters import Counters
    from shared.rate_limit import RateLimiter
    from shared.reported import REPORTED_KEY
    from shared.rooms import Rooms
    from shared.snapshots import LATEST_KEY
    from shared.store import Store
    from shared.table import Table

    clock = [time.time()]
    table = Table(client, table_name, clock=lambda: clock[0])
    store, rooms, counters, limiter = Store(table), Rooms(table), Counters(table), RateLimiter(table)
    store.add_connection("bench-ratelimit", None)
    serial = iter(range(10**9))
    snapshot_keys = [counters.key, LATEST_KEY, REPORTED_KEY]

    def idle() -> None:  # a second later each time: the bucket has refilled, one UpdateItem
        clock[0] += 1
        limiter.take("bench-ratelimit", 20, 40)

    def busy() -> None:  # the same instant: the first attempt is refused, the second takes a token
        limiter.take("bench-ratelimit", 20, 10**9)

    def connect() -> None:
        store.add_connection(f"bench-{next(serial)}", "someone")

    def join() -> None:
        connection = f"bench-{next(serial)}"
        store.add_connection(connection, None)
        rooms.join_room(connection, "sales", 20)

    shapes: list[tuple[str, Callable[[], Any]]] = [
        ("requestLiveMetrics' rate limiter, idle bucket", idle),
        ("requestLiveMetrics' rate limiter, busy bucket (the load's case)", busy),
        ("requestLiveMetrics' counters read", counters.read),
        (
            "a snapshot's read without a remembered tick (shared/metrics.py)",
            lambda: table.get_many(snapshot_keys, True),
        ),
        ("a JSON-frame connect's registration", connect),
        ("a connect, then a join", join),
    ]
    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)  # before the transport, which answers last
    figures = []
    calls = ROUNDS * (CALLS // 10)
    for label, call in shapes:
        for _ in range(10):  # warm, and the first join of the room (which also counts a new active dashboard)
            call()
        requests.clear()
        ms = median_cpu_ms(call, CALLS // 10, warm=0)
        figures.append((label, ", ".join(f"{n / calls:g} {name}" for name, n in sorted(requests.items())), ms))
    client.meta.events.unregister("before-call.dynamodb", count)
    return figures


def section() -> list[str]:
    import logging

    import boto3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per call otherwise
    ensure_local_credentials()
    embedded = EmbeddedDynamoDB()
    endpoint = embedded.start()
    try:
        direct = embedded.client(client_config())
        wire = embedded.wire_client(client_config())
        over_http = boto3.session.Session().client("dynamodb", endpoint_url=endpoint, config=client_config())
        table = f"transports-{uuid.uuid4().hex[:8]}"
        ensure_table(direct, table, template())
        http_ms = cpu_ms_per_call(over_http, table)
        wire_ms = cpu_ms_per_call(wire, table)
        direct_ms = cpu_ms_per_call(direct, table)
        product = product_calls(direct, table)
        moto_table = f"transports-{uuid.uuid4().hex[:8]}"
        ensure_table(wire, moto_table, template())
        moto_alone = product_calls(wire, moto_table)
    finally:
        embedded.stop()
    return [
        "",
        f"## The embedded DynamoDB: CPU per call ({CALLS} calls x {ROUNDS}, UpdateItem and GetItem alternating,"
        " median)",
        "",
        "| transport | CPU per call (ms) | vs HTTP |",
        "|---|---:|---:|",
        f"| moto's HTTP server in the same process | {http_ms:.2f} | 1.00x |",
        f"| the wire transport: botocore's send path, moto's botocore hook | {wire_ms:.2f} |"
        f" {wire_ms / http_ms:.2f}x |",
        f"| the direct transport (the functions' client: the item engine, else moto) | {direct_ms:.2f} |"
        f" {direct_ms / http_ms:.2f}x |",
        "",
        f"The product's own calls ({CALLS // 10} x {ROUNDS}, median): through the direct transport, and through"
        " moto alone (the wire transport, which the item engine does not answer):",
        "",
        "| call | its DynamoDB requests | direct transport (ms) | moto alone (ms) | direct / moto |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {label} | {requests} | {ms:.2f} | {moto_ms:.2f} | {ms / moto_ms:.2f}x |"
            for (label, requests, ms), (_, _, moto_ms) in zip(product, moto_alone, strict=True)
        ),
    ]


if __name__ == "__main__":
    print("\n".join(section()))
