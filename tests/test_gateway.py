"""The real gateway under uvicorn, driven by real python-socketio clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import aiohttp
import boto3
import pytest
import socketio

from shared.codec import encode_server_frame
from shared.contract import METRIC_NAMES
from shared.services import services
from tests.support.contract import contract_validator
from tests.support.dynamodb import connection_rooms
from tests.support.servers import RunningGateway, replaced_routes, until

LIVE = "analytics:liveMetrics"
ERROR = "analytics:error"
UPDATE = "analytics:dashboardUpdate"


# What the server sent that asyncapi.yaml does not allow, in this test; the autouse fixture fails the test on it
# (a Socket.IO event handler's exception would only be logged).
violations: list[str] = []


@pytest.fixture(autouse=True)
def frames_match_the_asyncapi_document():
    violations.clear()
    yield
    assert violations == []


def check_contract(event: str, payload: Any) -> None:
    try:
        contract_validator()(event, payload)
    except AssertionError as violation:
        violations.append(str(violation))


class Client:
    """A Socket.IO client that records every server event it receives, and holds each, and every ack, to
    asyncapi.yaml's schemas."""

    def __init__(self, transports: list[str] | None = None) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.transports = transports or ["websocket"]
        self.received: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        check_contract(event, args[0] if args else None)
        self.received[event].append((time.monotonic(), args[0] if args else None))

    async def connect(self, gateway: RunningGateway, **kwargs: Any) -> Client:
        self.gateway = gateway
        await self.sio.connect(gateway.url, transports=self.transports, wait_timeout=10, **kwargs)
        return self

    async def call(self, event: str, *args: Any) -> Any:
        ack = await self.sio.call(event, *args, timeout=10) if args else await self.sio.call(event, timeout=10)
        check_contract("ack", ack)
        return ack

    async def wait_for(self, event: str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.received[event]) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{event}: {len(self.received[event])} of {count} in {timeout}s")
            await asyncio.sleep(0.01)
        return [data for _, data in self.received[event]]

    def data(self, event: str) -> list[Any]:
        return [data for _, data in self.received[event]]

    @property
    def connection_id(self) -> str:
        """The API Gateway connection id the gateway gave this socket."""
        return self.gateway.gateway.socketio.connection_id(self.sio.get_sid())

    async def close(self) -> None:
        await self.sio.disconnect()


async def connected(gateway, n: int = 1, **kwargs: Any) -> list[Client]:
    return list(await asyncio.gather(*(Client().connect(gateway, **kwargs) for _ in range(n))))


def metric(snapshot: list[dict], name: str) -> int:
    return next(item["value"] for item in snapshot if item["name"] == name)


def footprint(connection_id: str) -> set[tuple[str, str]]:
    table = services().table
    items = table.client.scan(TableName=table.table_name)["Items"]  # a test may look; the product never scans
    return {(i["PK"]["S"], i["SK"]["S"]) for i in items if connection_id in i["PK"]["S"] + i["SK"]["S"]}


async def test_gateway_health_reports_state(gateway):
    (client,) = await connected(gateway)
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/health") as response:
        body = await response.json()
    assert response.status == 200 and body["status"] == "ok"
    assert body["connections"] >= 1 and body["dynamodb"] == "embedded moto"  # no address, no table name
    await client.close()


async def test_gateway_subscribe_pushes_a_snapshot_at_once(gateway):
    (client,) = await connected(gateway)
    asked_at = time.time()
    assert await client.call("analytics:subscribeLiveMetrics") == {"ok": True}
    acked_at = time.time()
    (snapshot,) = await client.wait_for(LIVE, 1)
    # Computed while the subscribe was handled, not at the next tick (0.5 s away).
    stamped_at = datetime.fromisoformat(snapshot[0]["timestamp"].replace("Z", "+00:00")).timestamp()
    assert asked_at - 0.001 <= stamped_at <= acked_at + 0.001
    assert [item["name"] for item in snapshot] == list(METRIC_NAMES)
    assert len({item["timestamp"] for item in snapshot}) == 1
    assert snapshot[0]["timestamp"].endswith("Z") and len(snapshot[0]["timestamp"]) == 24
    assert all(0 <= metric(snapshot, name) <= 100 for name in ("CPU Usage", "Memory Usage"))
    await client.close()


async def test_gateway_pushes_periodically_to_subscribers_only(gateway):
    subscriber, bystander = await connected(gateway, 2)
    await subscriber.call("analytics:subscribeLiveMetrics")
    await subscriber.wait_for(LIVE, 4, timeout=5)
    assert bystander.data(LIVE) == []
    await asyncio.gather(subscriber.close(), bystander.close())


async def test_gateway_double_subscribe_sends_no_duplicates(gateway):
    (client,) = await connected(gateway)
    assert await client.call("analytics:subscribeLiveMetrics") == {"ok": True}
    assert await client.call("analytics:subscribeLiveMetrics") == {"ok": True}
    snapshots = await client.wait_for(LIVE, 5, timeout=6)
    stamps = [s[0]["timestamp"] for s in snapshots]
    assert len(stamps) == len(set(stamps))
    await client.close()


async def test_gateway_unsubscribe_stops_pushes(gateway):
    (client,) = await connected(gateway)
    await client.call("analytics:subscribeLiveMetrics")
    await client.wait_for(LIVE, 2)
    assert await client.call("analytics:unsubscribeLiveMetrics") == {"ok": True}
    assert await client.call("analytics:unsubscribeLiveMetrics") == {"ok": True}
    seen = len(client.data(LIVE))
    await asyncio.sleep(1.5)
    assert len(client.data(LIVE)) == seen
    await client.close()


async def test_gateway_request_answers_the_caller_only(gateway):
    caller, other = await connected(gateway, 2)
    assert await caller.call("analytics:requestLiveMetrics") == {"ok": True}
    (snapshot,) = await caller.wait_for(LIVE)
    assert metric(snapshot, "Active Users") >= 2
    await asyncio.sleep(0.2)
    assert other.data(LIVE) == []
    await asyncio.gather(caller.close(), other.close())


async def test_gateway_counts_drop_when_clients_leave(gateway):
    watcher, *others = await connected(gateway, 4)
    await watcher.call("analytics:subscribeLiveMetrics")
    for other in others:
        await other.call("analytics:joinDashboard", "counts-test")
    first = await watcher.wait_for(LIVE)
    users_with_all = metric(first[-1], "Active Users")
    await asyncio.gather(*(other.close() for other in others))
    # $disconnect runs after the socket closes; the pushes then show the drop.
    await until(lambda: metric(watcher.data(LIVE)[-1], "Active Users") == users_with_all - 3, timeout=10)
    assert metric(watcher.data(LIVE)[-1], "Active Dashboards") == 0
    await watcher.close()


async def test_gateway_dashboard_join_leave_and_updates_reach_members_only(gateway):
    member, other = await connected(gateway, 2)
    assert await member.call("analytics:joinDashboard", "sales") == {"ok": True}
    assert await other.call("analytics:joinDashboard", "ops") == {"ok": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/dashboards/sales/updates", json={"revenue": 10}) as response,
    ):
        assert response.status == 202
        assert await response.json() == {"delivered": 1, "gone": 0}
    (update,) = await member.wait_for(UPDATE)
    assert update["dashboardId"] == "sales" and update["data"] == {"revenue": 10}
    assert update["timestamp"].endswith("Z")
    assert other.data(UPDATE) == []
    assert await member.call("analytics:leaveDashboard", "sales") == {"ok": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/dashboards/sales/updates", json=[1, 2]) as response,
    ):
        assert await response.json() == {"delivered": 0, "gone": 0}
    await asyncio.gather(member.close(), other.close())


async def test_gateway_dashboard_update_endpoint_rejects_bad_input(gateway):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/dashboards/bad%20id/updates", json={}) as response:
            assert response.status == 400
            assert "dashboardId" in (await response.json())["error"]
        async with http.post(
            f"{gateway.url}/dashboards/sales/updates", data=b"{nope", headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        ("raises", 502),  # the function crashed: Lambda's own "Internal server error", which is not JSON
        ("answers", 500),  # the function answered 500 with a body that is not JSON
    ],
)
async def test_gateway_dashboard_update_route_survives_a_failing_function(gateway, monkeypatch, failure, status):
    def failing(event, context):
        if failure == "raises":
            raise RuntimeError("the function failed")
        return {"statusCode": 500, "body": "Internal server error"}

    monkeypatch.setitem(gateway.gateway.event_routes.functions, "DashboardUpdate", failing)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/dashboards/sales/updates", json={"revenue": 10}) as response,
    ):
        assert response.status == status
        assert await response.json() == {"error": "Internal server error"}


BAD_INPUT = [
    ("analytics:joinDashboard", (42,), "dashboardId must be a string"),
    ("analytics:joinDashboard", ("",), "dashboardId must be 1 to 128"),
    ("analytics:joinDashboard", ("x" * 129,), "dashboardId must be 1 to 128"),
    ("analytics:joinDashboard", ("bad id!",), "dashboardId must be 1 to 128"),
    ("analytics:joinDashboard", ("<script>",), "dashboardId must be 1 to 128"),
    ("analytics:joinDashboard", (), "dashboardId is required"),
    ("analytics:joinDashboard", (None,), "dashboardId is required"),
    ("analytics:joinDashboard", ({"id": "sales"},), "dashboardId must be a string"),
    ("analytics:leaveDashboard", (7,), "dashboardId must be a string"),
    ("analytics:leaveDashboard", (), "dashboardId is required"),
    ("analytics:doesNotExist", (), "Unknown event: analytics:doesNotExist"),
    ("$connect", (), "Unknown event: $connect"),
    ("analytics:joinDashboard", ("y" * 40_000,), "Frame too large"),
]


@pytest.mark.parametrize("event, args, message", BAD_INPUT)
async def test_gateway_bad_input_gets_an_error_and_changes_nothing(gateway, event, args, message):
    (client,) = await connected(gateway)
    before = footprint(client.connection_id)
    answer = await client.call(event, *args)
    assert answer["ok"] is False and message in answer["error"]
    (error,) = await client.wait_for(ERROR)
    assert message in error["message"] and error["event"] == event
    assert footprint(client.connection_id) == before
    assert await client.call("analytics:requestLiveMetrics") == {"ok": True}
    await client.close()


async def test_gateway_refuses_a_twenty_first_room(gateway):
    (client,) = await connected(gateway)
    for n in range(20):
        assert await client.call("analytics:joinDashboard", f"room-{n}") == {"ok": True}
    answer = await client.call("analytics:joinDashboard", "room-20")
    assert answer == {"ok": False, "error": "A connection may be in at most 20 dashboards"}
    (error,) = await client.wait_for(ERROR)
    assert error["event"] == "analytics:joinDashboard"
    assert len(connection_rooms(services(), client.connection_id)) == 20
    assert await client.call("analytics:leaveDashboard", "room-0") == {"ok": True}
    assert await client.call("analytics:joinDashboard", "room-20") == {"ok": True}
    await client.close()


async def test_gateway_events_without_ack_still_work(gateway):
    (client,) = await connected(gateway)
    await client.sio.emit("analytics:subscribeLiveMetrics")
    await client.wait_for(LIVE)
    await client.sio.emit("analytics:joinDashboard", 5)
    await client.wait_for(ERROR)
    await client.close()


async def test_gateway_refused_connect_is_a_connect_error(gateway):
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(f"{gateway.url}?userId=not%20valid", transports=["websocket"], wait_timeout=10)
    assert errors and "userId" in errors[0]["message"]


async def test_gateway_disconnect_removes_the_connection_state(gateway):
    (client,) = await connected(gateway)
    connection_id = client.connection_id
    await client.call("analytics:subscribeLiveMetrics")
    await client.call("analytics:joinDashboard", "cleanup")
    assert ("ROOM#cleanup", f"CONN#{connection_id}") in footprint(connection_id)
    await client.close()
    await until(lambda: footprint(connection_id) == set())


async def test_gateway_serves_the_management_api_to_boto3(gateway):
    (client,) = await connected(gateway)
    api = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.url, region_name="us-east-1")
    info = await asyncio.to_thread(api.get_connection, ConnectionId=client.connection_id)
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    posted = {"dashboardId": "x", "data": 1, "timestamp": "2026-11-25T10:00:00.000Z"}  # as asyncapi.yaml says
    frame = json.dumps({"event": "analytics:dashboardUpdate", "data": posted}).encode()
    await asyncio.to_thread(api.post_to_connection, ConnectionId=client.connection_id, Data=frame)
    (update,) = await client.wait_for(UPDATE)
    assert update == posted
    with pytest.raises(api.exceptions.GoneException):
        await asyncio.to_thread(api.post_to_connection, ConnectionId="NOSUCHCONNECT0=", Data=frame)
    # Socket.IO keeps these names for itself: a frame naming one would make the client drop.
    for reserved in ("connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"):
        with pytest.raises(api.exceptions.ClientError) as refused:
            data = json.dumps({"event": reserved, "data": {}}).encode()
            await asyncio.to_thread(api.post_to_connection, ConnectionId=client.connection_id, Data=data)
        assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert client.sio.connected
    connection_id = client.connection_id
    await asyncio.to_thread(api.delete_connection, ConnectionId=connection_id)
    await until(lambda: not client.sio.connected)
    await until(lambda: footprint(connection_id) == set())


async def test_gateway_polling_transport_works(gateway):
    client = await Client(transports=["polling"]).connect(gateway)
    assert await client.call("analytics:subscribeLiveMetrics") == {"ok": True}
    await client.wait_for(LIVE, 2)
    # python-socketio's polling client waits out its pending long-poll on disconnect (about 30 s, against
    # bench/baseline.py too): the test sends Engine.IO's close packet itself and drops the client.
    sid = client.sio.eio.sid
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/socket.io/?EIO=4&transport=polling&sid={sid}", data=b"1") as response,
    ):
        assert response.status == 200
    await client.sio.eio.disconnect(abort=True)
    await until(lambda: services().counters.read().subscribers == 0, timeout=10)


async def test_gateway_serves_fifty_concurrent_clients(gateway):
    clients = await connected(gateway, 50)
    answers = await asyncio.gather(*(c.call("analytics:subscribeLiveMetrics") for c in clients))
    assert all(answer == {"ok": True} for answer in answers)
    # Two pushes more than each had when the last subscription was acknowledged: the second began after it (a
    # client subscribed early may have had two pushes already while the others were still subscribing).
    await asyncio.gather(*(c.wait_for(LIVE, len(c.data(LIVE)) + 2, timeout=10) for c in clients))
    latest = clients[0].data(LIVE)[-1]
    assert metric(latest, "Live Subscribers") >= 50
    answers = await asyncio.gather(*(c.call("analytics:joinDashboard", f"team-{i % 5}") for i, c in enumerate(clients)))
    assert all(answer == {"ok": True} for answer in answers)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/dashboards/team-3/updates", json={"n": 3}) as response,
    ):
        assert (await response.json())["delivered"] == 10
    await asyncio.gather(*(c.close() for c in clients))
    await until(lambda: services().counters.read().subscribers == 0, timeout=10)
    assert services().counters.read().active_dashboards == 0


async def test_a_frame_a_function_posts_that_socketio_cannot_carry_is_dropped_and_the_rest_delivered(gateway, caplog):
    """A frame naming an event Socket.IO keeps for itself: the Management API would answer 400; the frames the
    function posted beside it still arrive, and its answer too."""
    endpoint = gateway.gateway.socketio
    original = endpoint.routes["analytics:requestLiveMetrics"]

    def posts_a_reserved_event(event: dict[str, Any], context: Any) -> Any:
        connection_id = event["requestContext"]["connectionId"]
        services().poster().post(connection_id, encode_server_frame("connect", {}))
        services().poster().post(connection_id, encode_server_frame(ERROR, {"message": "after", "event": "x"}))
        return original(event, context)

    with replaced_routes(endpoint, {"analytics:requestLiveMetrics": posts_a_reserved_event}):
        (client,) = await connected(gateway)
        assert await client.call("analytics:requestLiveMetrics") == {"ok": True}
        assert await client.wait_for(ERROR) == [{"message": "after", "event": "x"}]
        assert "a posted frame was not delivered: connect is reserved by Socket.IO" in caplog.text
        await client.close()


async def test_post_many_reaches_each_socketio_connection_once_and_answers_the_gone_ones(gateway):
    """One frame to many connections, as the publisher posts it from its thread: one packet written to each socket;
    an id no connection has is answered gone, and the rest still get the frame."""
    clients = await connected(gateway, 3)
    ids = [client.connection_id for client in clients]
    frame = encode_server_frame(ERROR, {"message": "to all", "event": "x"})
    gone = await asyncio.to_thread(services().poster().post_many, [ids[0], "GoneGoneGoneG0=", *ids[1:]], frame)
    assert gone == ["GoneGoneGoneG0="]
    for client in clients:
        assert await client.wait_for(ERROR) == [{"message": "to all", "event": "x"}]
    await asyncio.sleep(0.2)
    assert all(client.data(ERROR) == [{"message": "to all", "event": "x"}] for client in clients)
    await asyncio.gather(*(client.close() for client in clients))


async def test_post_many_of_a_frame_socketio_cannot_carry_drops_it_for_all_and_raises_nothing(gateway, caplog):
    clients = await connected(gateway, 2)
    ids = [client.connection_id for client in clients]
    poster = services().poster()
    assert await asyncio.to_thread(poster.post_many, ids, encode_server_frame("connect", {})) == []
    assert "not delivered to 2 connection(s): connect is reserved by Socket.IO" in caplog.text
    after = encode_server_frame(ERROR, {"message": "after", "event": "x"})
    assert await asyncio.to_thread(poster.post_many, ids, after) == []
    for client in clients:
        assert await client.wait_for(ERROR) == [{"message": "after", "event": "x"}]
    await asyncio.gather(*(client.close() for client in clients))


async def test_the_functions_item_requests_are_answered_by_the_item_engine(gateway):
    """`make run`'s gateway: a client's connect, join, request, leave and disconnect reach the embedded DynamoDB's
    item engine (local_gateway/dynamodb/item_engine.py), which answers each item read and write itself."""
    engine = gateway.gateway.environment.embedded.item_engine
    served, declined = dict(engine.served), dict(engine.declined)
    (client,) = await connected(gateway)
    assert await client.call("analytics:joinDashboard", "engine-test") == {"ok": True}
    assert await client.call("analytics:requestLiveMetrics") == {"ok": True}
    assert await client.call("analytics:leaveDashboard", "engine-test") == {"ok": True}
    await client.close()
    operations = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    await until(lambda: all(engine.served[operation] > served.get(operation, 0) for operation in operations))
    assert dict(engine.declined) == declined
