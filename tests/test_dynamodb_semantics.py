"""What real DynamoDB does and moto does not: conflicts with a transaction on the same item, lagging indexes.

Each is injected at the botocore boundary (tests/faults.py); the project's code runs as in AWS. Joins and leaves
make no transaction (their interleavings are tests/test_room_writes.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers import (
    disconnect,
    request_live_metrics,
    subscribe_live_metrics,
    unsubscribe_live_metrics,
)
from shared.counters import Counts
from shared.errors import ConnectionNotFound, Forbidden, TooManyRooms
from shared.table import BY_CONNECTION_INDEX
from tests.faults import DynamoDBFaults
from tests.handler_calls import NOT_REGISTERED, connected, connection_item, join, owned_by, send
from tests.support.events import disconnect_event, message_event

pytestmark = pytest.mark.dynamodb_wire  # faults are injected at botocore's boundary

A, B = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="


@pytest.fixture
def faults(lambda_env) -> Iterator[DynamoDBFaults]:
    injector = DynamoDBFaults(lambda_env.table.client)
    yield injector
    injector.close()


@pytest.fixture
def backoffs(lambda_env, monkeypatch) -> list[float]:
    """The conflict backoffs the table would have slept (the sleep is injected: nothing waits)."""
    slept: list[float] = []
    monkeypatch.setattr(lambda_env.table, "sleep", slept.append)
    return slept


def on_connection(body: dict) -> bool:
    return body.get("Key", {}).get("PK", {}).get("S", "").startswith("CONN#")


def test_each_refusal_is_told_by_the_connection_item_and_only_a_repeated_join_reads_it(lambda_env, faults):
    rooms = lambda_env.rooms
    connected(A)
    assert rooms.join_room(A, "sales", 2)
    assert rooms.join_room(A, "ops", 2)
    reads = faults.calls["GetItem"]
    with pytest.raises(TooManyRooms):
        rooms.join_room(A, "third", 2)
    with pytest.raises(ConnectionNotFound):
        rooms.join_room(B, "sales", 2)
    lambda_env.store.add_connection(B, None, allowed=["sales"])
    with pytest.raises(Forbidden):
        rooms.join_room(B, "ops", 2)
    lambda_env.pending_connections.add("CCCCCCCCCCCCCCC=", None, None, False)
    with pytest.raises(ConnectionNotFound):
        rooms.join_room("CCCCCCCCCCCCCCC=", "sales", 2)
    assert rooms.leave_room(A, "nowhere") is False
    with pytest.raises(ConnectionNotFound):
        rooms.leave_room("ZZZZZZZZZZZZZZZ=", "sales")
    assert faults.calls["GetItem"] == reads  # each told by the connection item that its failed condition returned
    assert rooms.join_room(A, "sales", 2) is False  # the membership exists (and the set is full): already in
    assert faults.calls["GetItem"] == reads + 1  # the one read: a member already, or not registered?


def test_the_rate_limit_retries_a_transaction_conflict_on_the_connection_item(lambda_env, faults, backoffs):
    connected(A)
    faults.fail("UpdateItem", code="TransactionConflictException", times=2, when=on_connection)
    assert send(subscribe_live_metrics, A, "analytics:subscribeLiveMetrics") == {"ok": True}
    assert faults.injected["UpdateItem"] == 2 and len(backoffs) == 2


def test_conflicts_without_end_are_raised_after_eight_attempts_and_nothing_is_applied(lambda_env, faults, backoffs):
    connected(A)
    before = connection_item(lambda_env, A)
    faults.fail("UpdateItem", code="TransactionConflictException", when=on_connection)  # every time
    body = send(subscribe_live_metrics, A, "analytics:subscribeLiveMetrics")
    assert body == {"ok": False, "error": "Internal error: the request was not applied; try again"}
    assert faults.injected["UpdateItem"] == 8 and len(backoffs) == 7  # CONFLICT_ATTEMPTS, a backoff between two
    assert all(0 <= slept <= 1.0 for slept in backoffs)
    assert connection_item(lambda_env, A) == before


def test_concurrent_joins_from_one_connection_all_succeed(lambda_env, faults, backoffs):
    connected(A)
    dashboards = [f"d{n}" for n in range(12)]
    faults.fail("UpdateItem", code="TransactionConflictException", times=4, when=on_connection)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda dashboard: join(A, dashboard), dashboards))
    assert answers == [{"ok": True}] * len(dashboards)
    assert faults.injected["UpdateItem"] == 4 and len(backoffs) == 4
    assert sorted(connection_item(lambda_env, A)["roomIds"]["SS"]) == sorted(dashboards)
    assert lambda_env.counters.read().active_dashboards == len(dashboards)


# -- 2. cleanup from the connection's own item, not from the index ----------------------------
def test_disconnect_removes_every_membership_even_when_the_index_lags(lambda_env, faults):
    connected(A, "alice")
    send(subscribe_live_metrics, A, "analytics:subscribeLiveMetrics")
    for dashboard in ("sales", "ops", "hr"):
        join(A, dashboard)
    lagging = lambda body: body.get("IndexName") == BY_CONNECTION_INDEX  # noqa: E731
    faults.answer("Query", lambda body: {"Items": [], "Count": 0, "ScannedCount": 0}, times=None, when=lagging)
    assert disconnect.handler(disconnect_event(A), None)["statusCode"] == 200
    assert owned_by(lambda_env, A) == set()
    assert lambda_env.counters.read() == Counts()
    assert faults.injected["Query"] == 0  # the index is not even asked


# -- 3. unregistered connections ----------------------------------------------------------------
@pytest.mark.parametrize("rate", ["20", "0"])
@pytest.mark.parametrize(
    ("handler", "action"),
    [
        (request_live_metrics, "analytics:requestLiveMetrics"),
        (unsubscribe_live_metrics, "analytics:unsubscribeLiveMetrics"),
        (subscribe_live_metrics, "analytics:subscribeLiveMetrics"),
    ],
)
def test_an_unregistered_connection_is_refused_by_every_event(
    lambda_env, management_api, monkeypatch, rate, handler, action
):
    limit = float(rate)
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, rate_limit_per_second=limit))
    result = handler.handler(message_event(A, action), None)
    assert result["statusCode"] == 410
    assert json.loads(result["body"]) == {"ok": False, "error": NOT_REGISTERED}
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"]["message"] == NOT_REGISTERED


def test_the_rate_limiter_refuses_an_unregistered_connection(lambda_env):
    with pytest.raises(ConnectionNotFound):
        lambda_env.rate_limiter.take(A, 20, 40)
    lambda_env.pending_connections.add(A, None, None, False)
    with pytest.raises(ConnectionNotFound):
        lambda_env.rate_limiter.take(A, 20, 40)
