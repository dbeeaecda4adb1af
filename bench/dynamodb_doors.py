"""The embedded DynamoDB's doors compared: CPU of this process per call, for each way to reach moto.

    python -m bench.dynamodb_doors       (or BENCH_SECTIONS=dynamodb make bench)

The gateway's functions call moto through the direct door (local_gateway/moto_doors.py). Before, they took the
wire door (botocore's whole send path, then moto's own botocore hook), and before that moto's HTTP server in
the same process, so the client's HTTP and the server's werkzeug and Flask were paid too. All serve the same
tables.
"""

from __future__ import annotations

import os
import time
import uuid
from statistics import median
from typing import Any

from local_gateway.dynamodb import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
from local_gateway.template import template
from shared.services import client_config

KEY = {"PK": {"S": "CONN#bench"}, "SK": {"S": "CONN#bench"}}
CALLS = int(os.environ.get("DOORS_CALLS", "300"))


def _calls(client: Any, table: str, n: int) -> None:
    """What requestLiveMetrics asks of DynamoDB: the rate limiter's UpdateItem, then the counters' GetItem."""
    for _ in range(n):
        client.update_item(
            TableName=table,
            Key=KEY,
            UpdateExpression="ADD rateTat :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        client.get_item(TableName=table, Key=KEY, ConsistentRead=True)


def cpu_ms_per_call(client: Any, table: str, rounds: int = 5) -> float:
    """CPU of this process (both ends of the HTTP door are in it), median of `rounds`, per call."""
    _calls(client, table, 20)  # warm: connections, botocore's caches
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        _calls(client, table, CALLS // 2)
        samples.append((time.process_time() - started) / CALLS * 1000)
    return median(samples)


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
        table = f"doors-{uuid.uuid4().hex[:8]}"
        ensure_table(direct, table, template())
        http_ms = cpu_ms_per_call(over_http, table)
        wire_ms = cpu_ms_per_call(wire, table)
        direct_ms = cpu_ms_per_call(direct, table)
    finally:
        embedded.stop()
    return [
        "",
        f"## The embedded DynamoDB: CPU per call ({CALLS} calls x 5, UpdateItem and GetItem alternating, median)",
        "",
        "| door | CPU per call (ms) | vs HTTP |",
        "|---|---:|---:|",
        f"| moto's HTTP server in the same process | {http_ms:.2f} | 1.00x |",
        f"| the wire door: botocore's send path, moto's botocore hook | {wire_ms:.2f} | {wire_ms / http_ms:.2f}x |",
        f"| the direct door (the functions' client) | {direct_ms:.2f} | {direct_ms / http_ms:.2f}x |",
    ]


if __name__ == "__main__":
    print("\n".join(section()))
