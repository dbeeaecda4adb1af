"""Every handler, called as API Gateway and EventBridge call it, with the state it leaves in DynamoDB."""

from __future__ import annotations

import json

import pytest

from handlers import (
    connect,
    default,
    disconnect,
    join_dashboard,
    leave_dashboard,
    publish_dashboard_update,
    publish_metrics,
    request_live_metrics,
    subscribe_live_metrics,
    unsubscribe_live_metrics,
)
from shared import metrics
from shared.contract import METRIC_NAMES
from shared.counters import Counts
from tests.support.dynamodb import connection_rooms
from tests.support.events import connect_event, disconnect_event, load_event, message_event
from tests.support.management_api import ManagementApiEndpoint

A, B, C = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC="


def items(svc) -> list[dict]:
    # A test may look at the whole table; the product never scans.
    return svc.table.client.scan(TableName=svc.config.table_name)["Items"]


def keys(svc) -> set[tuple[str, str]]:
    return {(item["PK"]["S"], item["SK"]["S"]) for item in items(svc)}


def ack(result: dict) -> dict:
    return json.loads(result["body"])


def connected(*ids: str, user: str | None = None) -> None:
    for connection_id in ids:
        result = connect.handler(connect_event(connection_id, {"userId": user} if user else None), None)
        assert result["statusCode"] == 200


def test_connect_stores_the_connection_with_ttl(lambda_env):
    connected(A)
    (item,) = [i for i in items(lambda_env) if i["PK"]["S"] == f"CONN#{A}"]
    assert int(item["expiresAt"]["N"]) - int(item["connectedAt"]["N"]) == 2 * 3600 + 300
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1)


def test_connect_counts_a_user_with_two_connections_once(lambda_env):
    connected(A, B, user="alice")
    connected(C)
    assert lambda_env.counters.read() == Counts(connections=3, active_users=2)


def test_connect_refuses_a_malformed_user_id(lambda_env):
    result = connect.handler(connect_event(A, {"userId": "not ok!"}), None)
    assert result["statusCode"] == 400
    assert keys(lambda_env) == set()


def test_connect_twice_with_the_same_id_counts_once(lambda_env):
    connected(A)
    connected(A)
    assert lambda_env.counters.read().connections == 1


def test_disconnect_removes_every_item_of_the_connection(lambda_env):
    connected(A, B)
    subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    join_dashboard.handler(message_event(A, "analytics:joinDashboard", "ops"), None)
    join_dashboard.handler(message_event(B, "analytics:joinDashboard", "ops"), None)
    disconnect.handler(disconnect_event(A), None)
    assert not any(A in pk or A in sk for pk, sk in keys(lambda_env))
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=1)


def test_disconnect_twice_changes_nothing_more(lambda_env):
    connected(A, B)
    disconnect.handler(disconnect_event(A), None)
    disconnect.handler(disconnect_event(A), None)
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1)


def test_subscribe_pushes_an_immediate_snapshot(lambda_env, management_api: ManagementApiEndpoint):
    connected(A)
    result = subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    assert ack(result) == {"ok": True}
    (frame,) = management_api.events(A, "analytics:liveMetrics")
    assert [m["name"] for m in frame["data"]] == list(METRIC_NAMES)
    assert frame["data"][1]["value"] == 1
    assert len({m["timestamp"] for m in frame["data"]}) == 1


def test_subscribe_twice_is_idempotent(lambda_env, management_api):
    connected(A)
    for _ in range(2):
        assert ack(subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None))["ok"]
    assert len(management_api.events(A, "analytics:liveMetrics")) == 1
    assert lambda_env.counters.read().subscribers == 1


def test_unsubscribe_is_idempotent(lambda_env):
    connected(A)
    subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    for _ in range(2):
        assert ack(unsubscribe_live_metrics.handler(message_event(A, "analytics:unsubscribeLiveMetrics"), None))["ok"]
    assert lambda_env.counters.read().subscribers == 0
    assert [s for page in lambda_env.store.subscribers() for s in page] == []


def test_request_live_metrics_pushes_to_the_caller_only(lambda_env, management_api):
    connected(A, B)
    assert ack(request_live_metrics.handler(message_event(A, "analytics:requestLiveMetrics"), None))["ok"]
    assert len(management_api.events(A, "analytics:liveMetrics")) == 1
    assert management_api.events(B) == []


def test_request_live_metrics_tells_a_client_that_just_joined_active_dashboards_1(lambda_env, management_api):
    connected(A)
    lambda_env.snapshots.save(
        metrics.tick_snapshot(lambda_env, lambda_env.counters.read())
    )  # a fresh push said 0 dashboards
    assert ack(join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None))["ok"]
    request_live_metrics.handler(message_event(A, "analytics:requestLiveMetrics"), None)
    (told,) = management_api.events(A, "analytics:liveMetrics")
    assert {metric["name"]: metric["value"] for metric in told["data"]}["Active Dashboards"] == 1


def test_join_and_leave_dashboard(lambda_env):
    connected(A)
    assert ack(join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None))["ok"]
    assert ("ROOM#sales", f"CONN#{A}") in keys(lambda_env)
    assert lambda_env.counters.read().active_dashboards == 1
    assert ack(leave_dashboard.handler(message_event(A, "analytics:leaveDashboard", "sales"), None))["ok"]
    assert ("ROOM#sales", f"CONN#{A}") not in keys(lambda_env)
    assert lambda_env.counters.read().active_dashboards == 0


def test_join_twice_counts_once(lambda_env):
    connected(A)
    for _ in range(2):
        join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    assert connection_rooms(lambda_env, A) == ["sales"]
    assert lambda_env.counters.read().active_dashboards == 1


@pytest.mark.parametrize(
    "frame, message",
    [
        (message_event(A, "analytics:joinDashboard", 42), "dashboardId must be a string"),
        (message_event(A, "analytics:joinDashboard", ""), "dashboardId must be 1 to 128"),
        (message_event(A, "analytics:joinDashboard", "x" * 129), "dashboardId must be 1 to 128"),
        (message_event(A, "analytics:joinDashboard", "a b"), "dashboardId must be 1 to 128"),
        (message_event(A, "analytics:joinDashboard", None), "dashboardId is required"),
        (message_event(A, "analytics:joinDashboard"), "dashboardId is required"),
        (message_event(A, "analytics:joinDashboard", ["sales"]), "dashboardId must be a string"),
        (message_event(A, "analytics:joinDashboard", body="{not json"), "Malformed frame"),
        (message_event(A, "analytics:joinDashboard", body=""), "Empty frame"),
        (message_event(A, "analytics:joinDashboard", body="[1,2]"), "Malformed frame"),
        (message_event(A, "analytics:joinDashboard", "x" * 40000), "Frame too large"),
    ],
)
def test_join_dashboard_rejects_bad_input_and_stores_nothing(lambda_env, management_api, frame, message):
    connected(A)
    before = keys(lambda_env)
    result = join_dashboard.handler(frame, None)
    assert result["statusCode"] >= 400
    assert ack(result)["ok"] is False and message in ack(result)["error"]
    (error,) = management_api.events(A, "analytics:error")
    assert message in error["data"]["message"]
    assert keys(lambda_env) == before


def test_join_refuses_more_rooms_than_the_limit(lambda_env, management_api, monkeypatch):
    connected(A)
    for n in range(20):
        assert ack(join_dashboard.handler(message_event(A, "analytics:joinDashboard", f"d{n}"), None))["ok"]
    result = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "one-too-many"), None)
    assert ack(result) == {"ok": False, "error": "A connection may be in at most 20 dashboards"}
    assert ("ROOM#one-too-many", f"CONN#{A}") not in keys(lambda_env)
    assert len(connection_rooms(lambda_env, A)) == 20
    assert ack(join_dashboard.handler(message_event(A, "analytics:joinDashboard", "d3"), None))["ok"]


def test_leave_a_room_never_joined_is_a_no_op(lambda_env):
    connected(A)
    assert ack(leave_dashboard.handler(message_event(A, "analytics:leaveDashboard", "sales"), None))["ok"]
    assert lambda_env.counters.read().active_dashboards == 0


def test_default_route_answers_unknown_events(lambda_env, management_api):
    connected(A)
    result = default.handler(message_event(A, "analytics:explode", 1), None)
    assert ack(result) == {"ok": False, "error": "Unknown event: analytics:explode"}
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"] == {"message": "Unknown event: analytics:explode", "event": "analytics:explode"}


def test_publisher_pushes_one_snapshot_to_subscribers_only(lambda_env, management_api):
    connected(A, B, C)
    subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    subscribe_live_metrics.handler(message_event(B, "analytics:subscribeLiveMetrics"), None)
    body = json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])
    assert body == {"ticks": 1, "pushes": 1, "delivered": 2, "gone": 0, "handed_off": 0}
    pushed_a, pushed_b = management_api.events(A)[-1], management_api.events(B)[-1]
    assert pushed_a == pushed_b
    assert management_api.events(C) == []
    assert lambda_env.snapshots.last_saved()[1] == pushed_a["data"]


def test_publisher_does_nothing_without_subscribers_or_rooms(lambda_env, management_api):
    connected(A)
    body = json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])
    assert body["pushes"] == 0
    assert lambda_env.snapshots.last_saved() is None
    assert management_api.requests == 0


def test_publisher_removes_connections_that_answer_410(lambda_env, management_api):
    connected(A, B)
    for cid in (A, B):
        subscribe_live_metrics.handler(message_event(cid, "analytics:subscribeLiveMetrics"), None)
    join_dashboard.handler(message_event(B, "analytics:joinDashboard", "sales"), None)
    management_api.gone.add(B)
    body = json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])
    assert body["delivered"] == 1 and body["gone"] == 1
    assert not any(B in pk or B in sk for pk, sk in keys(lambda_env))
    assert (f"CONN#{A}", f"CONN#{A}") in keys(lambda_env)
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=1, active_dashboards=0)


def test_publisher_ticks_for_the_window(lambda_env, management_api, monkeypatch):
    from shared.publisher import run_window

    connected(A)
    subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    monkeypatch.setattr(
        lambda_env,
        "config",
        lambda_env.config.__class__(**{**lambda_env.config.__dict__, "publish_window_seconds": 60.0}),
    )
    clock = [0.0]
    result = run_window(
        lambda_env, lambda_env.poster(), clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
    )
    assert result.ticks == 12 and result.pushes == 12


def test_dashboard_update_reaches_members_only(lambda_env, management_api):
    connected(A, B, C)
    join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    join_dashboard.handler(message_event(B, "analytics:joinDashboard", "ops"), None)
    result = publish_dashboard_update.handler(load_event("dashboard_update"), None)
    assert json.loads(result["body"]) == {"delivered": 1, "gone": 0}
    (update,) = management_api.events(A, "analytics:dashboardUpdate")
    assert update["data"]["dashboardId"] == "sales"
    assert update["data"]["data"] == {"revenue": 1200, "orders": 31}
    assert update["data"]["timestamp"].endswith("Z")
    assert management_api.events(B) == [] and management_api.events(C) == []


def test_dashboard_update_rejects_a_bad_dashboard_id(lambda_env, management_api):
    event = load_event("dashboard_update", detail={"dashboardId": "no spaces", "data": 1})
    result = publish_dashboard_update.handler(event, None)
    assert result["statusCode"] == 400
    assert management_api.requests == 0


def test_an_error_for_a_gone_caller_removes_its_state(lambda_env, management_api):
    connected(A)
    management_api.gone.add(A)
    default.handler(message_event(A, "nope"), None)
    assert keys(lambda_env) - {("METRICS", "COUNTS")} == set() or all("CONN#" not in sk for _, sk in keys(lambda_env))
    assert lambda_env.counters.read().connections == 0


def test_the_host_is_read_at_most_once_a_second():
    from collections import namedtuple

    from shared.system_metrics import HOST_READING_SECONDS, HostReader

    times = namedtuple("times", "user system idle")
    cpu = iter([times(0, 0, 0), times(7, 0, 93), times(9, 0, 191)])  # a baseline, then 7% busy, then 2%
    memory: list[int] = []
    now = [100.0]
    host = HostReader(lambda: next(cpu), lambda: memory.append(1) or len(memory), lambda: now[0], lambda s: None)
    assert host.percents() == {"CPU Usage": 7, "Memory Usage": 1}
    now[0] += HOST_READING_SECONDS / 2
    assert host.percents() == {"CPU Usage": 7, "Memory Usage": 1}  # within the second: the same reading
    now[0] += HOST_READING_SECONDS
    assert host.percents() == {"CPU Usage": 2, "Memory Usage": 2}
    assert len(memory) == 2
