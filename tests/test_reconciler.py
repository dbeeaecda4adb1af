"""The reconciler off the publisher's tick: bounded runs that resume, expired counters skipped, heals that
never race a request in flight, and counts exact after connections vanish without `$disconnect`."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers import connect, join_dashboard, subscribe_live_metrics
from shared import publisher
from shared.counters import Counts
from shared.items import add_members
from shared.reconcile_pass import RECONCILE_KEY
from shared.reconciler import Reconciler, RunResult
from shared.table import CONNECTION_TTL_SECONDS, ROOM_KIND, USER_KIND, connection_key, room_key
from tests.handler_calls import expire, keys
from tests.support.events import connect_event, message_event


@pytest.fixture
def calls(lambda_env) -> Iterator[Counter]:
    """Every DynamoDB operation the table's client makes (Select=COUNT queries counted apart)."""
    seen: Counter = Counter()

    def count(params, model, **_):
        seen[model.name] += 1
        if params.get("Select") == "COUNT":
            seen["Query COUNT"] += 1

    events = lambda_env.table.client.meta.events
    events.register("before-parameter-build.dynamodb", lambda params, model, **kw: count(params, model))
    yield seen
    events.unregister("before-parameter-build.dynamodb")


def connected(cid: str, user: str | None = None) -> None:
    assert connect.handler(connect_event(cid, {"userId": user} if user else None), None)["statusCode"] == 200


def act(handler, cid: str, action: str, *data) -> dict:
    return json.loads(handler.handler(message_event(cid, action, *data), None)["body"])


def counter_items(svc, kind: str, n: int, members: int = 1, expires_in: float = CONNECTION_TTL_SECONDS) -> None:
    """n counter items of a kind (as add_members leaves them), written 25 at a time."""
    now = svc.table.clock()
    prefix = "ROOM#r" if kind == ROOM_KIND else "USER#u"
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "PK": {"S": f"{prefix}{i:05d}"},
                    "SK": {"S": f"{prefix}{i:05d}"},
                    "members": {"N": str(members)},
                    "live": {"S": kind},
                    "expiresAt": {"N": str(int(now + expires_in))},
                }
            }
        }
        for i in range(n)
    ]
    for start in range(0, n, 25):
        svc.table.client.batch_write_item(RequestItems={svc.config.table_name: requests[start : start + 25]})


def whole_pass(svc) -> list:
    runs = [svc.reconciler.run(svc.config.reconcile_batch)]
    while not runs[-1].finished:
        runs.append(svc.reconciler.run(svc.config.reconcile_batch))
    return runs


# -- never on the tick ------------------------------------------------------------------------
def test_a_tick_with_2000_users_and_2000_rooms_never_reconciles(lambda_env, management_api, calls, monkeypatch):
    # Even with the old "reconcile every tick" setting, the tick makes no recount at all.
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, reconcile_interval_seconds=0))
    counter_items(lambda_env, USER_KIND, 2000)
    counter_items(lambda_env, ROOM_KIND, 2000)
    connected("SUB000000000000=")
    act(subscribe_live_metrics, "SUB000000000000=", "analytics:subscribeLiveMetrics")
    calls.clear()
    result = publisher.tick(lambda_env, lambda_env.poster())
    assert result is not None and result[0].delivered == 1
    assert calls["Query COUNT"] == 0
    # the subscribers (1 page), the counters, the reported metrics, the snapshot; and the heartbeat's claim and
    # its Socket.IO page
    assert sum(calls.values()) <= 6, calls


# -- bounded, resumable, expired items skipped --------------------------------------------------
def test_a_pass_is_bounded_per_run_and_resumes_where_it_stopped(lambda_env, calls, monkeypatch):
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, reconcile_batch=10))
    counter_items(lambda_env, USER_KIND, 7, members=0)
    counter_items(lambda_env, ROOM_KIND, 20, members=0)
    calls.clear()
    first = lambda_env.reconciler.run(10)
    assert (first.visited, first.finished) == (10, False)
    assert calls["GetItem"] + calls["Query"] <= 2 * 10 + 4  # two calls per item, plus the place and a page or two
    place = lambda_env.table.get(RECONCILE_KEY, consistent=True)
    assert json.loads(place["state"]["S"])["phase"] == ROOM_KIND and "cursor" in place["state"]["S"]
    rest = whole_pass(lambda_env)
    assert [run.visited for run in rest] == [10, 8]  # 1 ANON + 7 users + 20 rooms = 28, each visited once
    assert rest[-1].finished and rest[-1].totals_written
    assert lambda_env.reconciler.run(10).visited == 10  # the next run starts a new pass


def test_expired_counters_are_zeroed_without_a_count_and_leave_the_index(lambda_env, calls):
    counter_items(lambda_env, ROOM_KIND, 30, members=1, expires_in=-60)  # nobody joined or left for 2 h
    lambda_env.counters.add(activeDashboards=30)
    calls.clear()
    run = whole_pass(lambda_env)[-1]
    assert run.zeroed == 30
    # The subscribers: no room was counted. (ANON's connections are listed, not counted: each is asked about.)
    assert calls["Query COUNT"] == 1
    assert lambda_env.counters.read().active_dashboards == 0
    assert lambda_env.reconciler.run(100).visited == 1  # out of the index: the next pass sees only ANON


# -- heals that never race a request --------------------------------------------------------------
def test_a_join_in_flight_during_the_first_look_is_not_healed_into_drift(lambda_env, monkeypatch):
    a, b = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="
    connected(a)
    connected(b)
    assert act(join_dashboard, a, "analytics:joinDashboard", "sales") == {"ok": True}
    # b's join has written its membership; its counter update comes a moment later (while the reconciler waits).
    now = lambda_env.table.clock()
    lambda_env.table.client.put_item(
        TableName=lambda_env.config.table_name,
        Item={"PK": {"S": room_key("sales")}, "SK": {"S": connection_key(b)}, "expiresAt": {"N": str(int(now + 60))}},
    )

    def the_join_lands(seconds: float) -> None:
        add_members(lambda_env.table, room_key("sales"), 1, now, ROOM_KIND)

    monkeypatch.setattr(lambda_env.reconciler, "sleep", the_join_lands)
    run = lambda_env.reconciler.run(100)
    assert run.healed == 0
    room = lambda_env.table.get({"PK": {"S": room_key("sales")}, "SK": {"S": room_key("sales")}}, consistent=True)
    assert room["members"]["N"] == "2"  # not 3: the counter was not "healed" to 2 before the join added its 1
    assert lambda_env.counters.read().active_dashboards == 1


@pytest.mark.load
def test_counts_are_exact_after_a_load_whose_connections_vanish_without_disconnect(lambda_env, management_api):
    """60 connections x 5 joins at once; then every one vanishes without $disconnect: half expire (their items
    remain until TTL), half have been deleted by TTL already. One whole pass makes every count exact."""
    ids = [f"LOAD{n:011d}=" for n in range(60)]

    def client(n: int) -> None:
        cid = ids[n]
        connected(cid, f"user{n % 20}" if n % 3 else None)
        act(subscribe_live_metrics, cid, "analytics:subscribeLiveMetrics")
        for dashboard in random.Random(n).sample(range(40), 5):
            assert act(join_dashboard, cid, "analytics:joinDashboard", f"d{dashboard}") == {"ok": True}

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(client, range(len(ids))))
    assert lambda_env.counters.read().connections == 60
    every_key = keys(lambda_env)  # one scan: the items of the half that TTL has deleted
    for n, cid in enumerate(ids):
        if n % 2:
            expire(lambda_env, cid)
        else:
            for pk, sk in {key for key in every_key if cid in key[0] or cid in key[1]}:
                lambda_env.table.client.delete_item(
                    TableName=lambda_env.config.table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}}
                )
    runs = whole_pass(lambda_env)
    assert len(runs) == 1 and runs[0].healed > 0
    assert lambda_env.counters.read() == Counts()


def test_a_new_pass_starts_at_most_once_per_interval(lambda_env):
    reconciler = Reconciler(lambda_env.table, settle_seconds=0, interval_seconds=300)
    assert reconciler.run(100).finished
    assert reconciler.run(100) == RunResult()  # the last pass ended less than 300 s ago: nothing to do
    lambda_env.table.client.update_item(
        TableName=lambda_env.config.table_name,
        Key=RECONCILE_KEY,
        UpdateExpression="ADD savedAt :back",
        ExpressionAttributeValues={":back": {"N": "-301"}},
    )
    assert reconciler.run(100).finished  # five minutes later: a new pass
