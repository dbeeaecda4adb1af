"""Handler-level test helpers: the functions called in-process as API Gateway calls them (under the `lambda_env`
fixture), and the table they write read back as only a test may.

They live here rather than in tests/support/ because that package holds the transport-level helpers (sample
events, HTTP endpoints, running gateways, the published contract); these are shared by several
test modules, which import them from here and never from one another.
"""

from __future__ import annotations

import json

from handlers import connect, join_dashboard, leave_dashboard, subscribe_live_metrics
from shared.clients import RETRIES
from shared.counters import Counts
from shared.table import connection_key
from tests.support.events import connect_event, message_event

ATTEMPTS = 1 + RETRIES["max_attempts"]  # botocore's max_attempts counts the retries after the first try
NOT_REGISTERED = "This connection is no longer registered; reconnect"
INTERNAL_WORDS = (
    "Traceback",
    'File "',
    "botocore",
    "boto3",
    "Exception",
    "CONN#",
    "ROOM#",
    "analytics-",
    "PK",
    "line ",
)


# -- the table, read back ---------------------------------------------------------------------------------------
def items(svc) -> list[dict]:
    return svc.table.client.scan(TableName=svc.config.table_name)["Items"]  # a test may scan; the product never


def keys(svc) -> set[tuple[str, str]]:
    return {(item["PK"]["S"], item["SK"]["S"]) for item in items(svc)}


def owned_by(svc, connection_id: str) -> set[tuple[str, str]]:
    return {key for key in keys(svc) if connection_id in key[0] or connection_id in key[1]}


def connection_item(svc, cid: str) -> dict:
    key = {"PK": {"S": connection_key(cid)}, "SK": {"S": connection_key(cid)}}
    return svc.table.client.get_item(TableName=svc.config.table_name, Key=key, ConsistentRead=True)["Item"]


def state(svc) -> dict:
    """Every item and attribute, less the rate limiter's own bookkeeping on the connection item."""
    items = svc.table.client.scan(TableName=svc.config.table_name)["Items"]  # a test may scan
    return {(item["PK"]["S"], item["SK"]["S"]): {k: v for k, v in item.items() if k != "rateTat"} for item in items}


def recount(svc) -> Counts:
    """One whole reconciliation pass (as many runs as it takes); the counters as it left them."""
    while not (run := svc.reconciler.run(svc.config.reconcile_batch)).finished:
        pass
    assert run.totals_written
    return svc.counters.read()


def expire(svc, connection_id: str) -> None:
    """What two hours do to a connection whose $disconnect never came: every item of it is past expiresAt."""
    for pk, sk in owned_by(svc, connection_id):
        svc.table.client.update_item(
            TableName=svc.config.table_name,
            Key={"PK": {"S": pk}, "SK": {"S": sk}},
            UpdateExpression="SET expiresAt = :past",
            ExpressionAttributeValues={":past": {"N": "1"}},
        )


# -- the handlers, called -----------------------------------------------------------------------------------------
def connected(cid: str, user: str | None = None) -> None:
    assert connect.handler(connect_event(cid, {"userId": user} if user else None), None)["statusCode"] == 200


def send(handler, cid: str, action: str, *data) -> dict:
    return json.loads(handler.handler(message_event(cid, action, *data), None)["body"])


def subscribe(cid: str) -> dict:
    return send(subscribe_live_metrics, cid, "analytics:subscribeLiveMetrics")


def join(cid: str, dashboard: str) -> dict:
    return send(join_dashboard, cid, "analytics:joinDashboard", dashboard)


def leave(cid: str, dashboard: str) -> dict:
    return send(leave_dashboard, cid, "analytics:leaveDashboard", dashboard)
