"""DynamoDB round trips per client event, counted at botocore's boundary: one per API call (a `before-call` hook,
registered first, so that it sees every call the in-process transport answers too), whatever the call carries (a
BatchGetItem of three keys is one), and each call the code makes again (a form of the rate-limit token that did not
hold, UnprocessedKeys asked again) one more.

Counted twice: the handlers on moto, in one process as the local gateway runs them, and the stack of template.yaml
simulated with one warm container per function (tests/test_stack_simulation.py). docs/performance.md lists these
numbers, and why a join with the last value on makes five.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handlers import (
    default,
    publish_dashboard_update,
    publish_metrics,
    request_live_metrics,
    resume,
    unsubscribe_live_metrics,
)
from shared.services import Services
from tests.handler_calls import connected, join, leave, send, subscribe
from tests.support.events import load_event
from tests.support.management_api import ManagementApiEndpoint
from tests.support.simulated_stack import (
    PUBLISHER,
    SOCKETIO_QUERY,
    SimulatedStack,
    connect_answer,
    frame,
    simulated_stack,
)
from tests.support.socketio_default import connect_answer as socketio_answer
from tests.support.socketio_default import send as send_socketio
from tests.support.socketio_default import socketio_connect

A, B, S = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "SSSSSSSSSSSSSSS="
OK = {"ok": True}
INTERVAL = 1 / 20 + 0.01  # the template's rate limit: 20 events a second


class RoundTrips:
    """Every DynamoDB API call made through the clients it watches, by operation name, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def watch(self, client: Any) -> None:
        client.meta.events.register_first("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def of(self, event: Callable[[], Any]) -> list[str]:
        """The calls one event made, after checking that it succeeded."""
        start = len(self.calls)
        answer = event()
        assert answer == OK or (isinstance(answer, str) and answer.endswith('[{"ok":true}]')), answer
        return self.calls[start:]


@pytest.fixture
def trips(lambda_env: Services) -> RoundTrips:
    counter = RoundTrips()
    counter.watch(lambda_env.table.client)
    return counter


def tick() -> None:
    publish_metrics.handler(load_event("scheduled"), None)


def publish(dashboard_id: str) -> None:
    event = load_event("dashboard_update")
    event["detail"] = {"dashboardId": dashboard_id, "data": {"revenue": 1}}
    publish_dashboard_update.handler(event, None)


def request(cid: str) -> dict:
    return send(request_live_metrics, cid, "analytics:requestLiveMetrics")


def unsubscribe(cid: str) -> dict:
    return send(unsubscribe_live_metrics, cid, "analytics:unsubscribeLiveMetrics")


def new_session(answer: Any) -> Any:
    """OK for the ack of a `resume` that started a session (it names the session), else the ack as it came."""
    started = isinstance(answer, dict) and answer.get("recovered") is False and isinstance(answer.get("session"), str)
    return OK if started and answer.get("ok") is True else answer


# -- the handlers on moto, one process (the local gateway) --------------------------------------------------------
def test_round_trips_subscribe_unsubscribe_and_request_make_at_most_two(lambda_env, trips):
    connected(A)
    connected(B)
    # The first subscriber: no tick has been pushed yet, so the readings are read (the tick, the reported metrics).
    assert trips.of(lambda: subscribe(A)) == ["UpdateItem", "UpdateItem", "BatchGetItem"]
    tick()  # the gateway's publisher runs in the same process: its tick is remembered for one push period
    # The token and `live` in one update of the connection; the counters' ADD answers the counts.
    assert trips.of(lambda: subscribe(B)) == ["UpdateItem", "UpdateItem"]
    assert trips.of(lambda: subscribe(B)) == ["UpdateItem"], "subscribed already: the token alone"
    assert trips.of(lambda: request(B)) == ["UpdateItem", "GetItem"], "the token, then the counters"
    assert trips.of(lambda: unsubscribe(B)) == ["UpdateItem", "UpdateItem"]
    assert trips.of(lambda: unsubscribe(B)) == ["UpdateItem"], "not a subscriber: the token alone"


def test_round_trips_a_leave_makes_three_and_one_more_for_the_room_it_empties(lambda_env, trips):
    connected(A)
    connected(B)
    assert join(A, "sales") == OK and join(B, "sales") == OK
    # The token and `roomIds` in one update of the connection; the membership; the room's count.
    assert trips.of(lambda: leave(B, "sales")) == ["UpdateItem", "DeleteItem", "UpdateItem"]
    assert trips.of(lambda: leave(B, "sales")) == ["UpdateItem", "UpdateItem"], "not a member: refused, then the token"
    assert trips.of(lambda: leave(A, "sales")) == ["UpdateItem", "DeleteItem", "UpdateItem", "UpdateItem"], "emptied"


def test_round_trips_a_join_without_the_last_value_makes_three(lambda_env, trips, monkeypatch):
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, last_value_on_join=False))
    connected(A)
    connected(B)
    # The membership; the token and `roomIds` in one update of the connection; the room's count (and, for the
    # room's first member, the active dashboards).
    assert trips.of(lambda: join(A, "sales")) == ["PutItem", "UpdateItem", "UpdateItem", "UpdateItem"]
    assert trips.of(lambda: join(B, "sales")) == ["PutItem", "UpdateItem", "UpdateItem"]
    assert trips.of(lambda: join(B, "sales")) == ["PutItem", "UpdateItem"], "a member already: the token tells"


def test_round_trips_a_join_with_the_last_value_adds_its_read_and_the_hand_over(lambda_env, trips):
    connected(A)
    connected(B)
    publish("sales")
    joined = ["PutItem", "UpdateItem", "UpdateItem", "Query", "UpdateItem"]  # + the latest update, the hand-over's end
    assert trips.of(lambda: join(A, "sales")) == [*joined[:3], "UpdateItem", *joined[3:]], "the room's first member"
    assert trips.of(lambda: join(B, "sales")) == joined


def test_round_trips_a_new_session_makes_two(lambda_env, trips):
    connected(A)
    # The `resume` route, as the gateway's /socket.io/ calls it for every connection of the stock client: the token
    # and the session's name in one update of the connection (its user in the answer), then the session and its
    # pointer in one BatchWriteItem.
    assert trips.of(lambda: new_session(send(resume, A, "resume"))) == ["UpdateItem", "BatchWriteItem"]
    # Asked again: the update's failed condition names the session held; its start is read, it ends, then the same two.
    again = ["UpdateItem", "GetItem", "DeleteItem", "UpdateItem", "BatchWriteItem"]
    assert trips.of(lambda: new_session(send(resume, A, "resume"))) == again


def test_round_trips_a_json_connect_makes_four(lambda_env, trips):
    # Its item, under the condition that it is not registered yet; its owner's item; the owner's count (a user's, or
    # the anonymous connections'), which says whether the user is new; the counters.
    registered = ["PutItem", "PutItem", "UpdateItem", "UpdateItem"]
    start = len(trips.calls)
    connected(A, "alice")
    assert trips.calls[start:] == registered
    start = len(trips.calls)
    connected(B)
    assert trips.calls[start:] == registered, "anonymous"


def test_round_trips_a_socketio_client_on_the_local_endpoint_makes_six(lambda_env, trips):
    # /socket.io/: the gateway calls `$connect` as for a JSON client (4), then the `resume` route, which starts the
    # session (2): two functions, as a JSON client's `$connect` and `resume` would reach them in AWS.
    start = len(trips.calls)
    connected(A)
    assert new_session(send(resume, A, "resume")) == OK
    assert trips.calls[start:] == ["PutItem", "PutItem", "UpdateItem", "UpdateItem", "UpdateItem", "BatchWriteItem"]


def test_round_trips_a_socketio_connect_at_default_makes_one_then_four(socketio_svc, trips):
    # `$connect` of a Socket.IO client (`EIO=4`): the pending item alone; nothing is counted before the CONNECT.
    socketio_connect(A)
    assert trips.calls == ["PutItem"]
    # The namespace CONNECT: one update registers the pending item and names the new session (its answer, the
    # user); the owner's, the heartbeat's, the session's and its pointer's items in one batch; the user's count;
    # the counters.
    start = len(trips.calls)
    socketio_answer(send_socketio(A, "40"), A)
    assert trips.calls[start:] == ["UpdateItem", "BatchWriteItem", "UpdateItem", "UpdateItem"]


def test_round_trips_a_pong_makes_none(lambda_env, trips):
    assert default.handler(load_event("message", A, body="3"), None) == {"statusCode": 200, "body": "6"}
    assert trips.calls == []


# -- the stack of template.yaml, one warm container per function ----------------------------------------------------
@pytest.fixture
def deployed(moto_endpoint: str, management_api: ManagementApiEndpoint) -> Iterator[tuple[SimulatedStack, RoundTrips]]:
    simulated = simulated_stack(moto_endpoint, management_api)
    counter = RoundTrips()
    for logical_id in {*simulated.routes.values(), PUBLISHER}:
        counter.watch(simulated._container(logical_id).table.client)
    yield simulated, counter


def test_round_trips_in_the_stack_simulation(deployed, management_api):
    simulated, trips = deployed
    assert simulated.connect(A) == 200 and simulated.connect(S, "sam", SOCKETIO_QUERY) == 200
    connect_answer(simulated, management_api, S, "40")

    def json(action: str, *data: Any) -> Callable[[], Any]:
        def paced() -> Any:
            # Each JSON route is a function of its own, whose container has not seen the connection's last token:
            # at most the rate (20 a second) apart, its bucket has refilled by the next event, as the first form tried
            # there supposes (the next test shows a burst).
            time.sleep(INTERVAL)
            return simulated.send(A, frame(action, *data))

        return paced

    def sio(ack: int, action: str, *data: Any) -> Callable[[], Any]:
        args = ",".join(f'"{value}"' for value in (action, *data))
        return lambda: simulated.send_socketio(S, f"42{ack}[{args}]")

    # SubscribeLiveMetricsFunction's container has seen no tick: it reads the latest one (and the reported metrics).
    assert trips.of(json("analytics:subscribeLiveMetrics")) == ["UpdateItem", "UpdateItem", "BatchGetItem"]
    assert simulated.schedule(remaining_ms=2500)["pushes"] == 1
    # $default reads the tick once (the counters in the same BatchGetItem), then remembers it for one push period.
    assert trips.of(sio(1, "analytics:requestLiveMetrics")) == ["UpdateItem", "BatchGetItem"]
    assert trips.of(sio(2, "analytics:subscribeLiveMetrics")) == ["UpdateItem", "UpdateItem"]
    assert trips.of(sio(3, "analytics:requestLiveMetrics")) == ["UpdateItem", "GetItem"]
    assert trips.of(sio(4, "analytics:unsubscribeLiveMetrics")) == ["UpdateItem", "UpdateItem"]
    assert trips.of(json("analytics:unsubscribeLiveMetrics")) == ["UpdateItem", "UpdateItem"]
    # Joins with the last value on (the template's default), the first one making the room active.
    joined = ["PutItem", "UpdateItem", "UpdateItem", "Query", "UpdateItem"]
    assert trips.of(json("analytics:joinDashboard", "sales")) == [*joined[:3], "UpdateItem", *joined[3:]]
    assert trips.of(sio(5, "analytics:joinDashboard", "sales")) == joined
    assert trips.of(sio(6, "analytics:leaveDashboard", "sales")) == ["UpdateItem", "DeleteItem", "UpdateItem"]
    emptied = ["UpdateItem", "DeleteItem", "UpdateItem", "UpdateItem"]
    assert trips.of(json("analytics:leaveDashboard", "sales")) == emptied
    # Engine.IO's pong reaches $default and costs nothing.
    start = len(trips.calls)
    assert simulated.send_socketio(S, "3") == "6"
    assert trips.calls[start:] == []


def test_round_trips_a_new_session_in_the_stack_simulation(deployed, management_api):
    simulated, trips = deployed
    # `$connect` of a JSON client: its item, its owner's, the user's count, the counters. Of a Socket.IO client: the
    # pending item alone (the open packet's function posts without a DynamoDB call).
    assert simulated.connect(A) == 200
    assert trips.calls == ["PutItem", "PutItem", "UpdateItem", "UpdateItem"]
    start = len(trips.calls)
    assert simulated.connect(S, "sam", SOCKETIO_QUERY) == 200
    assert trips.calls[start:] == ["PutItem"]
    # Socket.IO's namespace CONNECT at $default registers the connection `$connect` left pending, its new session
    # with it: one update of its item, which names the session and answers its user; its owner's, the heartbeat's,
    # the session's and its pointer's items in one batch; the user's count; the counters. No token: the CONNECT is
    # not rate-limited.
    start = len(trips.calls)
    assert connect_answer(simulated, management_api, S, "40")["pid"]
    assert trips.calls[start:] == ["UpdateItem", "BatchWriteItem", "UpdateItem", "UpdateItem"]
    # A repeated CONNECT: the update's failed condition says it is registered; then a new session as when `resume`
    # is asked again (the update naming it fails on the session held, its start is read, it ends, the two).
    start = len(trips.calls)
    assert connect_answer(simulated, management_api, S, "40")["pid"]
    again = ["UpdateItem", "GetItem", "DeleteItem", "UpdateItem", "BatchWriteItem"]
    assert trips.calls[start:] == ["UpdateItem", *again]
    time.sleep(INTERVAL)
    assert trips.of(lambda: new_session(simulated.send(A, frame("resume")))) == ["UpdateItem", "BatchWriteItem"]


def test_round_trips_a_burst_reaching_a_container_that_has_not_seen_the_connection_costs_one_more(deployed):
    simulated, trips = deployed
    assert simulated.connect(A) == 200
    now = time.time()
    for route in ("analytics:requestLiveMetrics", "analytics:subscribeLiveMetrics", "analytics:unsubscribeLiveMetrics"):
        simulated._container(simulated.routes[route]).table.clock = lambda: now  # the burst's events, at once
    assert simulated.send(A, frame("analytics:requestLiveMetrics")) == OK
    # At once: the bucket is not idle, as the subscribe function's container supposes; the failed condition's item
    # says so, and the token's other form is taken. Then the counters, and the tick (none yet: the reported metrics).
    subscribed = ["UpdateItem", "BatchGetItem"]
    assert (
        trips.of(lambda: simulated.send(A, frame("analytics:subscribeLiveMetrics"))) == ["UpdateItem"] * 2 + subscribed
    )
    assert trips.of(lambda: simulated.send(A, frame("analytics:unsubscribeLiveMetrics"))) == ["UpdateItem"] * 3
