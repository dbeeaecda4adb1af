"""The deployed API's endpoint served by the local gateway at /{stage}: the official socket.io-client connecting
as it would to API Gateway, plain WebSocket clients speaking JSON frames, and API Gateway's own behaviours."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local_gateway.awslambda.invoker import Handler
from shared.codec import encode_server_frame
from shared.contract import ERROR, METRIC_NAMES
from shared.services import services
from shared.validation import ID_RULE
from tests.support.contract import contract_validator
from tests.support.servers import RunningGateway, http_status, replaced_routes, running_gateway, until
from tests.support.tokens import signed_request

SCRIPT = Path(__file__).parent / "js" / "deployed_client.js"
STAGE = "prod"  # template.yaml's StageName default
FAST = {"METRICS_INTERVAL_SECONDS": "0.5"}


def running(**environment: str) -> contextlib.AbstractContextManager[RunningGateway]:
    return running_gateway(**{**FAST, **environment})


def ws_url(gateway: RunningGateway, query: str = "") -> str:
    return f"ws://127.0.0.1:{gateway.port}/{STAGE}{query}"


async def node(gateway: RunningGateway, scenario: str, *args: str) -> asyncio.subprocess.Process:
    executable = shutil.which("node")
    assert executable, "Node.js is needed for the JavaScript client tests"
    return await asyncio.create_subprocess_exec(
        executable,
        str(SCRIPT),
        f"ws://127.0.0.1:{gateway.port}",
        STAGE,
        scenario,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> dict[str, Any]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, (stdout + stderr).decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    validate = contract_validator()  # every event and every ack the client received, held to asyncapi.yaml
    for event, payload in result.get("frames", []):
        validate(event, payload)
    for ack in [*result.get("acks", {}).values(), *([result["ack"]] if "ack" in result else [])]:
        validate("ack", ack)
    return result


@contextlib.asynccontextmanager
async def json_client(gateway: RunningGateway, query: str = "") -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(gateway, query)) as websocket:
        yield websocket


async def receive(websocket: ClientConnection, timeout: float = 5.0) -> Any:
    """The next JSON frame, held to asyncapi.yaml (a server event or the route response's ack)."""
    frame = json.loads(await asyncio.wait_for(websocket.recv(), timeout))
    contract_validator().frame(frame)
    return frame


async def receive_until(websocket: ClientConnection, wanted: Any, timeout: float = 5.0) -> list[Any]:
    """Frames up to and including the first that `wanted` accepts."""
    frames: list[Any] = []
    deadline = time.monotonic() + timeout
    while not frames or not wanted(frames[-1]):
        frames.append(await receive(websocket, max(0.01, deadline - time.monotonic())))
    return frames


def is_ack(frame: Any) -> bool:
    return isinstance(frame, dict) and "ok" in frame


def management(gateway: RunningGateway, method: str, connection_id: str, body: bytes | None = None) -> int:
    # Signed as the functions sign: the gateway, like AWS, refuses anything else.
    return http_status(signed_request(f"{gateway.url}/@connections/{connection_id}", method, body))[0]


# -- the official socket.io-client, connecting as to AWS -------------------------------------------
async def test_socketio_client_runs_every_event_through_the_deployed_endpoint():
    # About 60 events in a few seconds, 40 of them joins and leaves: more than the default burst of 40
    # (the rate limit itself is tested in test_hostile_input.py and test_socketio_default.py).
    with running(RATE_LIMIT_BURST="100") as gateway:
        result = await finished(await node(gateway, "seed"))
    assert result["transport"] == "websocket"
    assert result["acks"] == {
        "subscribe": {"ok": True},
        "request": {"ok": True},
        "join": {"ok": True},
        "badJoin": {"ok": False, "error": "dashboardId must be a string"},
        "xssJoin": {"ok": False, "error": f"dashboardId must be {ID_RULE}"},
        "unknown": {"ok": False, "error": "Unknown event: analytics:noSuchEvent"},
        "emptyJoin": {"ok": False, "error": f"dashboardId must be {ID_RULE}"},
        "longJoin": {"ok": False, "error": f"dashboardId must be {ID_RULE}"},
        "objectJoin": {"ok": False, "error": "dashboardId must be a string"},
        "tooManyRooms": {"ok": False, "error": "A connection may be in at most 20 dashboards"},
        "leave": {"ok": True},
        "leaveOther": {"ok": True},
        "unsubscribe": {"ok": True},
        "afterUnacked": {"ok": True},
    }
    assert result["roomsJoined"] == 18
    assert result["publishStatus"] == 202
    assert result["update"]["dashboardId"] == "js-dashboard" and result["update"]["data"] == {"revenue": 42}
    assert [error["event"] for error in result["errors"]] == [
        "analytics:joinDashboard",
        "analytics:joinDashboard",
        "analytics:noSuchEvent",
        "analytics:leaveDashboard",
        *["analytics:joinDashboard"] * 4,
    ]
    assert result["errors"][3]["message"] == "dashboardId is required"
    assert result["pushesAfterUnsubscribe"] == 0 and result["pushesAfterUnackedUnsubscribe"] == 0
    assert [m["name"] for m in result["lastSnapshot"]] == list(METRIC_NAMES)
    assert result["connected"] is True


async def test_socketio_client_holds_its_heartbeat_for_several_ping_intervals():
    # Pings every second, and the client gives up 2 s after its last one: 6 s is three full deadlines.
    with running(
        METRICS_INTERVAL_SECONDS="0.25", SOCKETIO_PING_INTERVAL_SECONDS="1", SOCKETIO_PING_TIMEOUT_SECONDS="1"
    ) as gateway:
        result = await finished(await node(gateway, "heartbeat", "6"))
    assert result["disconnects"] == [] and result["connected"] is True
    assert len(result["pings"]) >= 4
    assert result["ack"] == {"ok": True}


async def test_socketio_client_reconnects_and_resubscribes_after_the_gateway_restarts():
    gateway = RunningGateway(**FAST).start()
    try:
        process = await node(gateway, "reconnect")
        assert process.stdout is not None
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert line == {"event": "subscribed", "connects": 1}
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(gateway.start)  # same port, fresh state
        result = await finished(process)
    finally:
        gateway.stop()
    assert result["connects"] == 2 and result["pushesAfter"] >= 1
    assert result["disconnects"] == ["transport close"]


# -- plain WebSocket clients: the JSON frames, unchanged ---------------------------------------------
async def test_json_frames_route_by_action_and_answer_with_the_route_response():
    with running() as gateway:
        async with json_client(gateway) as websocket:
            await websocket.send(json.dumps({"action": "analytics:subscribeLiveMetrics"}))
            frames = await receive_until(websocket, is_ack)
            assert frames[-1] == {"ok": True}
            assert frames[0]["event"] == "analytics:liveMetrics"
            assert [m["name"] for m in frames[0]["data"]] == list(METRIC_NAMES)
            await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
            assert (await receive_until(websocket, is_ack))[-1] == {"ok": True}
            await websocket.send(json.dumps({"action": "analytics:unsubscribeLiveMetrics"}))
            assert (await receive_until(websocket, is_ack))[-1] == {"ok": True}


async def test_json_frames_anything_unrouted_reaches_default_and_gets_analytics_error():
    with running() as gateway:
        async with json_client(gateway) as websocket:
            for body in (json.dumps({"action": "nope", "data": 1}), "not json at all", json.dumps([1, 2])):
                await websocket.send(body)
                frames = await receive_until(websocket, is_ack)
                assert frames[-1]["ok"] is False
                errors = [f for f in frames if f.get("event") == "analytics:error"]
                assert len(errors) == 1 and errors[0]["data"]["message"] == frames[-1]["error"]


# -- API Gateway's documented behaviours -----------------------------------------------------------
async def test_connect_refusal_refuses_the_websocket_upgrade_with_its_status():
    with running(AUTH_JWT_SECRET="deployed-endpoint-secret-long-enough-for-hs256") as gateway:
        with pytest.raises(InvalidStatus) as refused:
            async with json_client(gateway, "?token=forged"):
                pass
        assert refused.value.response.status_code == 401
        token = jwt.encode(
            {"sub": "ada", "exp": int(time.time()) + 60}, "deployed-endpoint-secret-long-enough-for-hs256"
        )
        async with json_client(gateway, f"?token={token}") as websocket:
            await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
            assert (await receive_until(websocket, is_ack))[-1] == {"ok": True}


async def test_the_connect_and_disconnect_events_carry_what_api_gateway_puts_in_them():
    """Repeated query parameters in the multi-value map, header names as clients write them with the headers API
    Gateway adds, the subprotocol `$connect` answers with, and the close code the client sent."""
    with running() as gateway:
        endpoint = gateway.gateway.stage_endpoint
        originals = dict(endpoint.routes)
        events: dict[str, dict[str, Any]] = {}

        def recorded(route: str, answer_headers: dict[str, str] | None = None) -> Handler:
            def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
                events[route] = event
                result: dict[str, Any] = originals[route](event, context)
                return {**result, "headers": answer_headers} if answer_headers else result

            return handler

        with replaced_routes(
            endpoint,
            {
                "$connect": recorded("$connect", {"Sec-WebSocket-Protocol": "analytics.v1"}),
                "$disconnect": recorded("$disconnect"),
            },
        ):
            async with connect(ws_url(gateway, "?tag=a&tag=b"), subprotocols=["analytics.v1", "other"]) as websocket:
                assert websocket.subprotocol == "analytics.v1"
                await websocket.close(4001, "bye")
            await until(lambda: "$disconnect" in events)
    connected = events["$connect"]
    assert connected["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
    assert connected["queryStringParameters"] == {"tag": "b"}
    headers = connected["headers"]
    assert {"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Host"} <= set(headers)
    assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == str(gateway.port) and headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert connected["multiValueHeaders"]["Host"] == [headers["Host"]]
    assert events["$disconnect"]["requestContext"]["disconnectStatusCode"] == 4001


async def test_posting_to_a_connection_during_its_connect_answers_410():
    with running() as gateway:
        endpoint = gateway.gateway.stage_endpoint
        original = endpoint.routes["$connect"]
        during: list[int] = []

        def connect_that_posts(event: dict[str, Any], context: Any) -> dict[str, Any]:
            connection_id = event["requestContext"]["connectionId"]
            during.append(management(gateway, "POST", connection_id, b'{"event":"e","data":1}'))
            result: dict[str, Any] = original(event, context)
            return result

        with replaced_routes(endpoint, {"$connect": connect_that_posts}):
            async with json_client(gateway) as websocket:
                await websocket.send(json.dumps({"action": "analytics:requestLiveMetrics"}))
                await receive_until(websocket, is_ack)
    assert during == [410]


async def test_what_a_function_posted_before_it_failed_reaches_the_client_as_in_aws():
    """In AWS each post is delivered when the Management API answers it: a function that raises or times out
    afterwards does not take it back. (The gateway sends a function's posts once it ends: they used to be dropped
    when it failed.)"""
    with running() as gateway:
        endpoint = gateway.gateway.stage_endpoint
        told = {"message": "posted before the failure", "event": "analytics:joinDashboard"}

        def post_then(failure: Callable[[], None]) -> Handler:
            def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
                services().poster().post(event["requestContext"]["connectionId"], encode_server_frame(ERROR, told))
                failure()
                return {"statusCode": 200, "body": "{}"}

            return handler

        def raises() -> None:
            raise RuntimeError("boom")

        def outlives_its_timeout() -> None:
            time.sleep(gateway.gateway.invoker.timeout_seconds + 0.5)

        gateway.gateway.invoker.timeout_seconds = 1.0
        with replaced_routes(
            endpoint,
            {"analytics:joinDashboard": post_then(raises), "analytics:leaveDashboard": post_then(outlives_its_timeout)},
        ):
            async with json_client(gateway) as websocket:
                for action in ("analytics:joinDashboard", "analytics:leaveDashboard"):
                    await websocket.send(json.dumps({"action": action, "data": "ops"}))
                    assert await receive(websocket) == {"event": ERROR, "data": told}
                    assert (await receive(websocket))["message"] == "Internal server error"


async def test_a_failing_function_gives_api_gateways_internal_server_error_frame():
    with running() as gateway:
        endpoint = gateway.gateway.stage_endpoint

        def crashing(event: dict[str, Any], context: Any) -> dict[str, Any]:
            raise RuntimeError("boom: a secret detail")

        with replaced_routes(endpoint, {"analytics:joinDashboard": crashing}):
            async with json_client(gateway) as websocket:
                await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
                frame = await receive(websocket)
                assert set(frame) == {"message", "connectionId", "requestId"}
                assert frame["message"] == "Internal server error"
                # The connection stays open and usable.
                await websocket.send(json.dumps({"action": "analytics:leaveDashboard", "data": "ops"}))
                assert (await receive_until(websocket, is_ack))[-1] == {"ok": True}
                # An answer that is not {"statusCode", "body"}: the same frame.
                endpoint.routes["analytics:joinDashboard"] = lambda event, context: "not an integration response"
                await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
                assert (await receive(websocket))["message"] == "Internal server error"


async def test_a_functions_answer_reaches_the_client_only_on_routes_with_a_route_response():
    with running() as gateway:
        endpoint = gateway.gateway.stage_endpoint
        endpoint.route_responses.discard("analytics:joinDashboard")
        async with json_client(gateway) as websocket:
            await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
            await websocket.send(json.dumps({"action": "analytics:leaveDashboard", "data": "ops"}))
            assert await receive(websocket) == {"ok": True}  # the leave's; the join answered nothing


@contextlib.contextmanager
def disconnect_codes(gateway: RunningGateway) -> Iterator[list[int]]:
    """The `disconnectStatusCode` of every `$disconnect` the gateway runs meanwhile."""
    endpoint = gateway.gateway.stage_endpoint
    original = endpoint.routes["$disconnect"]
    codes: list[int] = []

    def recorded(event: dict[str, Any], context: Any) -> Any:
        codes.append(event["requestContext"]["disconnectStatusCode"])
        return original(event, context)

    with replaced_routes(endpoint, {"$disconnect": recorded}):
        yield codes


async def test_frames_beyond_32_kb_close_the_connection_with_1009():
    with running() as gateway, disconnect_codes(gateway) as codes:
        async with json_client(gateway) as websocket:
            await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "x" * 33_000}))
            with pytest.raises(ConnectionClosed) as closed:
                await receive(websocket)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await until(lambda: codes == [1009])


async def test_a_binary_frame_closes_the_connection_with_1003_and_reaches_no_function():
    with running() as gateway, disconnect_codes(gateway) as codes:
        async with json_client(gateway) as websocket:
            await websocket.send(json.dumps({"action": "analytics:requestLiveMetrics"}).encode())  # bytes: binary
            with pytest.raises(ConnectionClosed) as closed:
                await receive(websocket)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
        await until(lambda: codes == [1003])


async def test_idle_connections_are_closed_after_the_idle_timeout():
    with running(APIGW_IDLE_TIMEOUT_SECONDS="1") as gateway, disconnect_codes(gateway) as codes:
        started = time.monotonic()  # before the handshake: its last step is the connection's last activity
        async with json_client(gateway) as websocket:
            with pytest.raises(ConnectionClosed) as closed:
                await receive(websocket, timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert 0.9 < time.monotonic() - started < 5
        await until(lambda: codes == [1001])


async def test_connections_end_after_their_lifetime_even_when_busy():
    with running(APIGW_MAX_CONNECTION_SECONDS="2") as gateway:
        started = time.monotonic()  # before the handshake: the lifetime counts from the connection's start
        async with json_client(gateway) as websocket:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await websocket.send(json.dumps({"action": "analytics:requestLiveMetrics"}))
                    await receive_until(websocket, is_ack)
                    await asyncio.sleep(0.2)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert 1.8 < time.monotonic() - started < 6


async def test_management_api_serves_the_deployed_endpoints_connections():
    with running() as gateway, disconnect_codes(gateway) as codes:
        async with json_client(gateway) as websocket:
            await websocket.send(json.dumps({"action": "analytics:joinDashboard", "data": "ops"}))
            await receive_until(websocket, is_ack)
            (connection,) = gateway.gateway.registry.all()
            connection_id = connection.info.connection_id
            assert management(gateway, "POST", connection_id, b"verbatim, not JSON") == 200
            assert await asyncio.wait_for(websocket.recv(), 5) == "verbatim, not JSON"
            assert management(gateway, "GET", connection_id) == 200
            assert management(gateway, "DELETE", connection_id) == 204
            with pytest.raises(ConnectionClosed):
                await receive(websocket)
        await until(lambda: management(gateway, "GET", connection_id) == 410)
        await until(lambda: codes == [1000])


async def test_a_frame_for_a_connection_that_has_just_left_is_dropped_not_raised():
    from starlette.websockets import WebSocketDisconnect, WebSocketState

    from local_gateway.apigateway.websocket_endpoint import WebSocketEndpoint

    class LeftMeanwhile:
        application_state = WebSocketState.CONNECTED

        async def send_text(self, text: str) -> None:
            raise WebSocketDisconnect(code=1006)

        async def close(self, code: int, reason: str) -> None:
            raise RuntimeError("Cannot call send once a close message has been sent")

    endpoint = WebSocketEndpoint(LeftMeanwhile())  # type: ignore[arg-type]
    await endpoint.send(b'{"event":"analytics:liveMetrics","data":[]}')  # the function's post must not fail
    await endpoint.close()
