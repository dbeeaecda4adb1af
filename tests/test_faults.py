"""Faults: stale connections (410), abrupt disconnects, throttling and 5xx, pagination, unprocessed batch items."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from botocore.retries.standard import ExponentialBackoff

from handlers import publish_dashboard_update, publish_metrics
from handlers import reconcile as reconcile_handler
from shared.contract import INTERNAL_ERROR
from shared.counters import Counts
from shared.handover import live_recipients
from tests.faults import DynamoDBFaults
from tests.handler_calls import ATTEMPTS, connected, expire, join, keys, owned_by, recount, subscribe
from tests.support.dynamodb import connection_rooms
from tests.support.events import load_event

pytestmark = pytest.mark.dynamodb_wire  # faults are injected at botocore's boundary

A, B, C = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC="


def publish() -> dict:
    return json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])


def reconcile() -> dict:
    return json.loads(reconcile_handler.handler(load_event("scheduled"), None)["body"])


@pytest.fixture
def faults(lambda_env, monkeypatch) -> Iterator[DynamoDBFaults]:
    # botocore's real retry handler runs; only its throttling backoff scale shrinks from 1 s to 10 ms.
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.01)
    injector = DynamoDBFaults(lambda_env.table.client)
    yield injector
    injector.close()


EVERY_SEQ = 2**62  # an update no member has been handed yet: every member is a recipient


# -- 410 Gone ---------------------------------------------------------------------------------
def test_publisher_410_removes_every_item_of_the_gone_connection_and_the_counts_heal(lambda_env, management_api):
    connected(A, "alice")
    connected(B, "bob")
    for cid in (A, B):
        subscribe(cid)
        join(cid, "shared")
    join(B, "bobs-own")
    management_api.gone.add(B)
    assert publish()["gone"] == 1
    assert owned_by(lambda_env, B) == set()
    counts = lambda_env.counters.read()
    assert counts == Counts(connections=1, active_users=1, subscribers=1, active_dashboards=1)
    assert recount(lambda_env) == counts


def test_dashboard_update_410_removes_the_gone_member_only(lambda_env, management_api):
    for cid in (A, B):
        connected(cid)
        join(cid, "sales")
    management_api.gone.add(A)
    result = publish_dashboard_update.handler(load_event("dashboard_update"), None)
    assert json.loads(result["body"]) == {"delivered": 1, "gone": 1}
    assert owned_by(lambda_env, A) == set()
    assert connection_rooms(lambda_env, B) == ["sales"]
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, active_dashboards=1)


# -- abrupt disconnects and reconciliation ----------------------------------------------------
def test_reads_ignore_expired_connections(lambda_env, management_api):
    for cid in (A, B):
        connected(cid)
        subscribe(cid)
        join(cid, "sales")
    expire(lambda_env, A)
    assert [cid for page in lambda_env.store.subscribers() for cid, _ in page] == [B]
    assert [cid for cid, _ in live_recipients(lambda_env.table, "sales", EVERY_SEQ)] == [B]


def test_reconciliation_heals_counts_after_connections_vanish_without_disconnect(lambda_env, management_api):
    connected(A, "alice")
    connected(B, "alice")
    connected(C)
    subscribe(A)
    subscribe(C)
    join(A, "sales")
    join(C, "ops")
    expire(lambda_env, A)  # alice's first tab: expired, not yet deleted by TTL
    for pk, sk in owned_by(lambda_env, C):  # the anonymous one: TTL has deleted its items already
        lambda_env.table.client.delete_item(
            TableName=lambda_env.config.table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}}
        )
    assert lambda_env.counters.read() == Counts(connections=3, active_users=2, subscribers=2, active_dashboards=2)
    assert reconcile()["finished"]  # one run of the ReconcileFunction: a table this small is one pass
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=0)
    # The per-room counter healed too: the next join makes the room active again, counted once.
    connected(A.replace("A", "D"))
    join(A.replace("A", "D"), "sales")
    assert lambda_env.counters.read().active_dashboards == 1


def test_reconciliation_yields_to_a_concurrent_change(lambda_env, management_api):
    connected(A)
    subscribe(A)
    raced = []

    def another_client_meanwhile(request, **_):
        # While the reconciler counts subscribers, another connection arrives and subscribes.
        if not raced and b'"Select": "COUNT"' in request.body and b"ByLiveKind" in request.body:
            raced.append(True)
            connected(B)
            subscribe(B)

    events = lambda_env.table.client.meta.events
    events.register("before-send.dynamodb.Query", another_client_meanwhile)
    try:
        run = lambda_env.reconciler.run(100)
        assert run.finished and not run.totals_written  # its write would have clobbered B: it yields
    finally:
        events.unregister("before-send.dynamodb.Query", another_client_meanwhile)
    assert raced
    assert lambda_env.counters.read() == Counts(connections=2, active_users=2, subscribers=2)


# -- throttling and 5xx from DynamoDB ---------------------------------------------------------
def test_dynamodb_throttling_is_retried_with_backoff_until_it_succeeds(lambda_env, management_api, faults, monkeypatch):
    delays: list[float] = []
    real_delay = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, ctx: delays.append(real_delay(self, ctx)) or delays[-1]
    )
    connected(A)
    faults.fail("UpdateItem", times=3)
    assert subscribe(A) == {"ok": True}
    assert faults.injected["UpdateItem"] == 3
    assert len(delays) == 3
    assert len(management_api.events(A, "analytics:liveMetrics")) == 1
    assert lambda_env.counters.read().subscribers == 1


def test_dynamodb_throttling_beyond_the_retries_gives_a_generic_error_and_changes_nothing(
    lambda_env, management_api, faults, caplog
):
    connected(A)
    before, counts = keys(lambda_env), lambda_env.counters.read()
    faults.fail("PutItem", when=lambda body: body["Item"]["PK"]["S"] == "ROOM#sales")  # the membership
    with caplog.at_level(logging.INFO):
        assert join(A, "sales") == {"ok": False, "error": INTERNAL_ERROR}
    assert faults.injected["PutItem"] == ATTEMPTS
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"] == {"message": INTERNAL_ERROR, "event": "analytics:joinDashboard"}
    assert "ThrottlingException" in caplog.text and "PutItem" in caplog.text
    assert keys(lambda_env) == before and lambda_env.counters.read() == counts


def test_dynamodb_5xx_on_a_counter_is_healed_by_the_next_reconciliation(lambda_env, management_api, faults):
    connected(A)
    faults.fail(
        "UpdateItem", status=500, code="InternalServerError", when=lambda body: body["Key"]["PK"]["S"] == "METRICS"
    )
    assert subscribe(A) == {"ok": False, "error": INTERNAL_ERROR}
    assert faults.injected["UpdateItem"] == ATTEMPTS
    assert lambda_env.counters.read().subscribers == 0  # the subscription is stored, its count is not
    faults.close()
    reconcile()
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=1)
    assert subscribe(A) == {"ok": True}  # idempotent retry by the client
    assert lambda_env.counters.read().subscribers == 1


# -- throttling and 5xx from @connections -----------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 503])
def test_management_api_errors_are_retried_and_the_fanout_goes_on(lambda_env, management_api, status):
    for cid in (A, B):
        connected(cid)
        subscribe(cid)
    management_api.failing[B] = status
    requests_before = management_api.requests
    assert publish() == {"ticks": 1, "pushes": 1, "delivered": 2, "gone": 0, "handed_off": 0}
    assert management_api.requests - requests_before == 1 + ATTEMPTS  # A once, B until botocore gives up
    assert len(management_api.events(A, "analytics:liveMetrics")) == 2
    assert owned_by(lambda_env, B)  # a failing connection is not a gone one: it keeps its state
    del management_api.failing[B]
    publish()
    assert len(management_api.events(B, "analytics:liveMetrics")) == 2


# -- pagination and batch writes --------------------------------------------------------------
def test_subscribers_and_room_members_are_followed_across_pages(lambda_env, management_api):
    ids = [f"PAGE{n:011d}=" for n in range(7)]
    for cid in ids:
        connected(cid)
        subscribe(cid)
        join(cid, "sales")
    lambda_env.table.page_size = 2
    assert len(list(lambda_env.store.subscribers())) >= 4
    assert sorted(cid for page in lambda_env.store.subscribers() for cid, _ in page) == ids
    queries: list[str] = []
    lambda_env.table.client.meta.events.register("before-call.dynamodb.Query", lambda **_: queries.append("Q"))
    assert len(live_recipients(lambda_env.table, "sales", EVERY_SEQ)) == 7 and len(queries) >= 4
    assert publish()["delivered"] == 7
    result = publish_dashboard_update.handler(load_event("dashboard_update"), None)
    assert json.loads(result["body"]) == {"delivered": 7, "gone": 0}
    assert recount(lambda_env) == Counts(connections=7, active_users=7, subscribers=7, active_dashboards=1)


def test_batch_write_retries_unprocessed_items(lambda_env, faults):
    connected(A)
    for n in range(5):
        join(A, f"d{n}")

    def leave_most_unprocessed(body: dict) -> dict:
        requests = body["RequestItems"][lambda_env.config.table_name]
        return {"UnprocessedItems": {lambda_env.config.table_name: requests}}  # none applied

    faults.answer("BatchWriteItem", leave_most_unprocessed, times=2)
    assert lambda_env.store.remove_connection(A)
    assert faults.calls["BatchWriteItem"] == 3
    assert owned_by(lambda_env, A) == set()
    assert lambda_env.counters.read() == Counts()
