"""The stack of template.yaml simulated end to end (tests/support/simulated_stack.py): a whole life driven as API
Gateway and EventBridge would drive it, and the reconciler removing a connection gone without `$disconnect`.
Every DynamoDB call (seen by boto3) and every @connections request (seen by the endpoint) each function makes is
checked against the IAM grants the template gives it."""

from __future__ import annotations

import json
import time

from shared.fanout import FANOUT_KEY
from tests import stack
from tests.support.management_api import ManagementApiEndpoint
from tests.support.simulated_stack import (
    RECONCILER,
    A,
    B,
    C,
    D,
    SimulatedStack,
    assert_least_privilege,
    dashboard_update,
    frame,
    history_keys,
    metric_report,
    metrics,
    update,
)


def test_stack_simulation_a_whole_life(simulated: SimulatedStack, management_api: ManagementApiEndpoint):
    ok = {"ok": True}
    # $connect: four connections, two of them one user; nothing may be posted from inside $connect.
    statuses = [
        simulated.connect(A, "alice"),
        simulated.connect(B, "alice"),
        simulated.connect(C),
        simulated.connect(D, "dave"),
    ]
    assert statuses == [200] * 4
    assert management_api.requests == 0

    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == ok
    assert simulated.send(B, frame("analytics:subscribeLiveMetrics")) == ok
    assert simulated.send(C, frame("analytics:joinDashboard", "sales")) == ok
    assert simulated.send(D, frame("analytics:joinDashboard", "sales")) == ok
    assert simulated.send(D, frame("analytics:joinDashboard", "ops")) == ok
    assert simulated.send(D, frame("analytics:requestLiveMetrics")) == ok
    assert simulated.send(C, frame("analytics:nope")) == {"ok": False, "error": "Unknown event: analytics:nope"}
    assert simulated.send(C, "not json")["ok"] is False

    # A service reports a metric of its own (EventBridge MetricReport): the tick carries it after the counts.
    assert simulated.put_event(metric_report("Orders per minute", 42)) == {"name": "Orders per minute", "value": 42}

    # B leaves without a $disconnect; the scheduled tick finds it gone (410) and removes its state.
    management_api.gone.add(B)
    assert simulated.schedule(remaining_ms=2500) == {
        "ticks": 1,
        "pushes": 1,
        "delivered": 1,
        "gone": 1,
        "handed_off": 0,
    }
    # A slice of a larger fan-out, as the publisher hands it to a worker (Lambda async invoke): B is gone already.
    tick = management_api.events(A)[-1]
    worker_event = {FANOUT_KEY: {"connectionIds": [A, B], "frame": json.dumps(tick, separators=(",", ":"))}}
    assert simulated.invoke_json(simulated.environment_function("FANOUT_WORKER_FUNCTION"), worker_event) == {
        "delivered": 1,
        "gone": 1,
    }

    assert simulated.put_event(dashboard_update("sales", {"revenue": 1200})) == {"delivered": 2, "gone": 0}
    assert simulated.send(D, frame("analytics:leaveDashboard", "sales")) == ok
    assert simulated.put_event(dashboard_update("sales", {"revenue": 1300})) == {"delivered": 1, "gone": 0}
    assert simulated.send(A, frame("analytics:unsubscribeLiveMetrics")) == ok
    assert [simulated.disconnect(B), simulated.disconnect(C), simulated.disconnect(D)] == [200] * 3
    # The reconciler, on its own schedule: one whole pass over a table this small, nothing to heal; A is younger
    # than the grace period (RECONCILE_CHECK_AFTER_SECONDS), so nobody is asked about.
    assert simulated.reconcile() == {
        "visited": 5,  # ANON, alice, dave, sales, ops
        "healed": 0,
        "zeroed": 0,
        "finished": True,
        "totals_written": True,
        "checked": 0,
        "removed": 0,
        "unanswered": 0,
    }

    # Every frame posted, per connection, in order.
    a, b, c, d = (management_api.events(cid) for cid in (A, B, C, D))
    # On subscribe; the tick (counted before B was found gone); the worker's slice of the same tick.
    reported = "Orders per minute"
    assert [metrics(m, *after) for m, after in zip(a, [(), (reported,), (reported,)], strict=True)] == [
        (3, 1, 0),
        (3, 2, 2),
        (3, 2, 2),
    ]
    assert a[1] == a[2] and a[1]["data"][3]["value"] == 42
    assert [metrics(m) for m in b] == [(3, 2, 0)]
    assert [m["event"] for m in c] == ["analytics:error"] * 2 + ["analytics:dashboardUpdate"] * 2
    assert c[0]["data"] == {"message": "Unknown event: analytics:nope", "event": "analytics:nope"}
    assert update(c[2], "sales", {"revenue": 1200}) and update(c[3], "sales", {"revenue": 1300})
    assert metrics(d[0]) == (3, 2, 2) and update(d[1], "sales", {"revenue": 1200}) and len(d) == 2

    # Every item left: A's connection, the counters, the latest snapshot (the tick's).
    items = {(i["PK"]["S"], i["SK"]["S"]): i for i in simulated.scan()}  # a test may scan; no function does
    indexing_a = {key for key in items if key[1] == f"CONN#{A}" and key[0] != f"CONN#{A}"}
    assert indexing_a <= {("USER#alice", f"CONN#{A}")}  # the store may list A under its user too
    assert set(items) - indexing_a == {
        (f"CONN#{A}", f"CONN#{A}"),
        ("USER#alice", "USER#alice"),
        ("USER#dave", "USER#dave"),
        ("ROOM#sales", "ROOM#sales"),
        ("ROOM#ops", "ROOM#ops"),
        ("ANON", "ANON"),  # C's, anonymous: the count the reconciler heals anonymous connections by
        ("METRICS", "COUNTS"),
        ("METRICS", "LATEST"),
        ("METRICS", "RECONCILE"),
        ("METRICS", "REPORTED"),  # the reported metrics
    } | history_keys(items, "sales", 2)
    connection = items[(f"CONN#{A}", f"CONN#{A}")]
    assert "live" not in connection and "roomIds" not in connection and connection["userId"]["S"] == "alice"
    assert {pk: items[(pk, pk)]["members"]["N"] for pk in ("USER#alice", "USER#dave", "ROOM#sales", "ROOM#ops")} == {
        "USER#alice": "1",
        "USER#dave": "0",
        "ROOM#sales": "0",
        "ROOM#ops": "0",
    }
    counters = items[("METRICS", "COUNTS")]
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "1", "activeUsers": "1", "subscribers": "0", "activeDashboards": "0"}
    assert json.loads(items[("METRICS", "LATEST")]["snapshot"]["S"]) == a[1]["data"]
    assert all("expiresAt" in item for item in items.values())

    # Every function but the Socket.IO open-packet one (see the Socket.IO life below) and the JSON frames' resume
    # (see the recovery below) ran, within its grants.
    assert set(simulated.calls) == set(stack.functions(simulated.template)) - {"SocketIOOpenFunction", "ResumeFunction"}
    assert_least_privilege(simulated)


def test_stack_simulation_sees_a_call_the_template_does_not_grant(simulated: SimulatedStack):
    """The least-privilege check above can fail: a call outside a function's grants is reported."""
    simulated.connect(A)
    granted = stack.grants(simulated.template, "ConnectFunction", simulated.refs)
    assert all(stack.allows(granted, *call) for call in simulated.calls["ConnectFunction"])
    assert not stack.allows(granted, "dynamodb:Scan", stack.table_arn("x"))
    assert not stack.allows(granted, "dynamodb:DeleteItem", simulated.refs["Table.Arn"])
    assert not stack.allows(granted, "execute-api:ManageConnections", stack.connection_arn(A))


def test_stack_simulation_the_reconciler_removes_a_connection_gone_without_disconnect(
    simulated: SimulatedStack, management_api: ManagementApiEndpoint
):
    """A's socket goes away and no $disconnect comes; past its grace period the reconciler asks API Gateway about
    A and C (GET @connections/{id}), removes A, and does so within ReconcileFunction's grants."""
    assert [simulated.connect(A, "alice"), simulated.connect(C)] == [200, 200]
    assert simulated.send(A, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    management_api.gone.add(A)
    container = simulated._container(RECONCILER)
    grace = container.reconciler.stale_check.grace_seconds  # as the template's environment sets it
    container.table.clock = lambda: time.time() + grace + 1
    result = simulated.reconcile()
    assert (result["checked"], result["removed"], result["finished"]) == (2, 1, True)
    assert management_api.asked() == [C, A]  # ANON's connections first, then each user's
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan()}
    assert not {key for key in keys if A in key[0] or A in key[1]}
    counters = next(i for i in simulated.scan() if (i["PK"]["S"], i["SK"]["S"]) == ("METRICS", "COUNTS"))
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "1", "activeUsers": "1", "subscribers": "0", "activeDashboards": "0"}
    assert ("execute-api:ManageConnections", stack.connection_arn(A, "GET")) in simulated.calls[RECONCILER]
    assert_least_privilege(simulated)
