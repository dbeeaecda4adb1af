"""Socket.IO through the simulated stack (tests/support/simulated_stack.py): the open packet after `$connect`,
the namespace handshake, events with acks, a fan-out encoded once per protocol, the heartbeat, and the open
packet refused while `$connect` runs; every call within the function's grants."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock
from urllib.parse import unquote

from shared import socketio_open
from shared.contract import MAX_FRAME_BYTES
from tests import stack
from tests.support.management_api import ManagementApiEndpoint
from tests.support.simulated_stack import (
    SOCKETIO_QUERY,
    A,
    C,
    S,
    SimulatedStack,
    T,
    U,
    assert_least_privilege,
    connect_answer,
    dashboard_update,
    frame,
    history_keys,
    metrics,
    update,
)


def socketio_event(raw: bytes) -> dict[str, Any]:
    """A server event as Socket.IO frames it (`42["name",data]`), in the shape the JSON frames have."""
    assert raw.startswith(b"42["), raw
    name, data, *offset = json.loads(raw[2:])
    return {"event": name, "data": data, **({"offset": offset[0]} if offset else {})}


def one_push(delivered: int, gone: int) -> dict[str, int]:
    return {"ticks": 1, "pushes": 1, "delivered": delivered, "gone": gone, "handed_off": 0}


def test_stack_simulation_a_socketio_life(simulated: SimulatedStack, management_api: ManagementApiEndpoint):
    """Socket.IO connections beside JSON ones: the open packet after $connect, the namespace handshake, events
    with acks, mixed fan-out encoded once per protocol, the heartbeat and its pong, 410 cleanup, `41`."""
    raw = management_api.raw
    # $connect: A and C speak JSON frames; S (user sam) and T (anonymous) speak Socket.IO.
    assert simulated.connect(A) == 200 and simulated.connect(C) == 200
    assert simulated.connect(S, "sam", SOCKETIO_QUERY) == 200
    assert simulated.connect(T, query=SOCKETIO_QUERY) == 200
    # ConnectFunction posted nothing (S and T answered 410 while it ran); it invoked the open-packet function
    # asynchronously, and Lambda ran it once $connect had returned: each open packet was posted once, at once.
    assert not [call for call in simulated.calls["ConnectFunction"] if call[0].startswith("execute-api:")]
    opener = stack.function_arn("SocketIOOpenFunction")
    assert [c for c in simulated.calls["ConnectFunction"] if c[0] == "lambda:InvokeFunction"] == [
        ("lambda:InvokeFunction", opener)
    ] * 2
    assert [(target, payload["open"]["connectionId"], result) for target, payload, result in simulated.invoked] == [
        ("SocketIOOpenFunction", cid, {"statusCode": 200, "body": json.dumps({"opened": True})}) for cid in (S, T)
    ]
    assert [unquote(path.rsplit("/", 1)[1]) for _, path in management_api.served] == [S, T]
    env = simulated.environment("SocketIOOpenFunction")
    for cid in (S, T):
        ((open_packet,),) = [raw[cid]]
        assert open_packet.startswith(b"0{")
        assert json.loads(open_packet[1:]) == {
            "sid": cid,
            "upgrades": [],
            "pingInterval": int(env["SOCKETIO_PING_INTERVAL_SECONDS"]) * 1000,
            "pingTimeout": int(env["SOCKETIO_PING_TIMEOUT_SECONDS"]) * 1000,
            "maxPayload": MAX_FRAME_BYTES,
        }
    assert A not in raw and C not in raw

    # The namespace handshake, answered in the route response; then events with acks.
    for cid in (S, T):  # the sid, and the session's private id for connection state recovery
        answer = connect_answer(simulated, management_api, cid, "40")
        assert answer["sid"] == cid and set(answer) == {"sid", "pid"}
    assert simulated.send_socketio(S, '420["analytics:subscribeLiveMetrics"]') == '430[{"ok":true}]'
    assert simulated.send_socketio(T, '421["analytics:subscribeLiveMetrics"]') == '431[{"ok":true}]'
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    assert simulated.send_socketio(S, '422["analytics:joinDashboard","sales"]') == '432[{"ok":true}]'
    assert simulated.send(C, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(C, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    # The immediate push on subscribe, in each connection's own protocol.
    assert metrics(socketio_event(raw[S][2])) == (4, 1, 0) and metrics(socketio_event(raw[T][2])) == (4, 2, 0)
    assert [metrics(m) for m in management_api.events(A)] == [(4, 3, 0)]
    assert [metrics(m) for m in management_api.events(C)] == [(4, 4, 1)]

    # A dashboard update reaches its JSON and its Socket.IO member, each in its own encoding.
    assert simulated.put_event(dashboard_update("sales", {"revenue": 1200})) == {"delivered": 2, "gone": 0}
    assert update(socketio_event(raw[S][3]), "sales", {"revenue": 1200})
    assert update(management_api.events(C)[-1], "sales", {"revenue": 1200})
    assert socketio_event(raw[S][3])["data"] == management_api.events(C)[-1]["data"]  # one payload, two encodings

    # The publisher's tick: the heartbeat pings the Socket.IO connections only, then the snapshot goes to every
    # subscriber, encoded once per protocol.
    before = {cid: len(raw[cid]) for cid in (A, C, S, T)}
    assert simulated.schedule(remaining_ms=2500) == one_push(delivered=4, gone=0)
    posted = {cid: raw[cid][before[cid] :] for cid in (A, C, S, T)}
    assert [posted[cid][0] for cid in (S, T)] == [b"2", b"2"]  # the heartbeat, Socket.IO only
    assert [len(posted[cid]) for cid in (A, C, S, T)] == [1, 1, 2, 2]
    # One body per protocol: every receiver of a protocol got the very same bytes.
    json_bodies, socketio_bodies = {posted[A][0], posted[C][0]}, {posted[S][1], posted[T][1]}
    assert len(json_bodies) == len(socketio_bodies) == 1
    tick = json.loads(posted[A][0])
    assert socketio_event(posted[S][1]) == tick and metrics(tick) == (4, 4, 1)

    # A pong costs nothing: no DynamoDB call, no post; the answer is Engine.IO's noop.
    calls, served = len(simulated.calls["DefaultFunction"]), len(management_api.served)
    assert simulated.send_socketio(S, "3") == "6"
    assert len(simulated.calls["DefaultFunction"]) == calls and len(management_api.served) == served

    # T leaves without a word: the next tick (no heartbeat due yet) finds it gone and removes its state.
    assert ("SOCKETIO", f"CONN#{T}") in {(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan()}
    management_api.gone.add(T)
    before = {cid: len(raw[cid]) for cid in (A, C, S, T)}
    assert simulated.schedule(remaining_ms=2500) == one_push(delivered=3, gone=1)
    posted = {cid: raw[cid][before[cid] :] for cid in (A, C, S, T)}
    assert [len(posted[cid]) for cid in (A, C, S, T)] == [1, 1, 1, 0]  # no heartbeat due yet
    assert metrics(socketio_event(posted[S][0])) == (4, 4, 1)  # counted before T was found gone
    left = [(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan() if T in i["SK"]["S"] or T in i["PK"]["S"]]
    assert left == [(f"CONN#{T}", f"SESSION#{T}")]  # which session T held: kept with it for the recovery window

    # `41` removes S's state at once; the $disconnects that follow find nothing left to remove.
    assert simulated.send_socketio(S, "41") == "6"
    assert not [i for i in simulated.scan() if S in i["SK"]["S"] or S in i["PK"]["S"]]
    assert [simulated.disconnect(cid) for cid in (S, T, A, C)] == [200] * 4

    # Every item left is a counter (all back to zero), the latest snapshot, the dashboard's history, and the
    # session of T, which left without a word: kept for the recovery window (S's `41` ended its own).
    items = {(i["PK"]["S"], i["SK"]["S"]): i for i in simulated.scan()}
    (session,) = [item for (pk, _), item in items.items() if pk.startswith("SESSION#")]
    assert session["connectionId"]["S"] == T and "leftAt" in session
    assert set(items) - {(session["PK"]["S"], session["SK"]["S"]), (f"CONN#{T}", f"SESSION#{T}")} == {
        ("USER#sam", "USER#sam"),
        ("ROOM#sales", "ROOM#sales"),
        ("ANON", "ANON"),  # the anonymous connections' count
        ("METRICS", "COUNTS"),
        ("METRICS", "LATEST"),
    } | history_keys(items, "sales", 1)
    assert items[("ANON", "ANON")]["members"]["N"] == "0"
    assert items[("USER#sam", "USER#sam")]["members"]["N"] == items[("ROOM#sales", "ROOM#sales")]["members"]["N"] == "0"
    counters = items[("METRICS", "COUNTS")]
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "0", "activeUsers": "0", "subscribers": "0", "activeDashboards": "0"}
    assert json.loads(items[("METRICS", "LATEST")]["snapshot"]["S"]) == json.loads(raw[A][-1])["data"]

    assert set(simulated.calls) == {
        "ConnectFunction",
        "SocketIOOpenFunction",
        "DefaultFunction",
        "SubscribeLiveMetricsFunction",
        "JoinDashboardFunction",
        "PublishDashboardUpdateFunction",
        "PublishMetricsFunction",
        "DisconnectFunction",
    }
    assert_least_privilege(simulated)


def test_stack_simulation_open_packet_is_refused_during_connect(simulated: SimulatedStack):
    """Lambda may run the open-packet function before $connect has returned: API Gateway answers 410 to its
    posts, which it retries; one that never gets through removes what $connect stored."""
    simulated.early = True
    with mock.patch.object(socketio_open, "RETRY_DELAYS_SECONDS", (0.0, 0.0)):
        assert simulated.connect(U, query=SOCKETIO_QUERY) == 200
    ((target, _, result),) = simulated.invoked
    assert (target, result) == ("SocketIOOpenFunction", {"statusCode": 410, "body": json.dumps({"opened": False})})
    assert [(method, unquote(path)) for method, path in simulated.requests] == [
        ("POST", f"/{stack.STAGE}/@connections/{U}")
    ] * 3
    assert simulated.management_api.raw == {}
    assert simulated.scan() == []
    # The posts were the open-packet function's, not $connect's (which only invoked it).
    assert [call[0] for call in simulated.calls["ConnectFunction"]].count("execute-api:ManageConnections") == 0
    assert [call[0] for call in simulated.calls["SocketIOOpenFunction"]].count("execute-api:ManageConnections") == 3
    # Should the client still send its namespace CONNECT, nothing registers it: refused, then closed by $default.
    simulated.early = False
    assert simulated.send_socketio(U, "40") == "6"
    assert simulated.management_api.raw == {U: [b'44{"message":"Unauthorized"}']}
    assert [(method, unquote(path)) for method, path in simulated.requests[3:]] == [
        ("POST", f"/{stack.STAGE}/@connections/{U}"),
        ("DELETE", f"/{stack.STAGE}/@connections/{U}"),
    ]
    assert ("execute-api:ManageConnections", stack.connection_arn(U, "DELETE")) in simulated.calls["DefaultFunction"]
    assert simulated.scan() == []
    assert_least_privilege(simulated)
