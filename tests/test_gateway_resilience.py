"""End to end through the real gateway and python-socketio clients: restarts, load, limits, auth, CORS, logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import socketio
import websockets

from shared.counters import Counts
from shared.reconciler import Reconciler
from shared.services import services
from tests.support.dynamodb import connection_rooms
from tests.support.servers import RunningGateway, running_gateway, until

SECRET = "gateway-test-secret-long-enough-for-hs256"
FAST = {"METRICS_INTERVAL_SECONDS": "0.3"}


def running(**environment: str) -> contextlib.AbstractContextManager[RunningGateway]:
    return running_gateway(**{**FAST, **environment})


@contextlib.asynccontextmanager
async def client(url: str, **connect: Any) -> AsyncIterator[socketio.AsyncClient]:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, transports=["websocket"], wait_timeout=10, **connect)
    try:
        yield sio
    finally:
        await sio.disconnect()


def metric(snapshot: list[dict[str, Any]], name: str) -> Any:
    return next(item["value"] for item in snapshot if item["name"] == name)


def token(sub: str = "alice", **claims: Any) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")


# -- restart ----------------------------------------------------------------------------------
async def test_clients_reconnect_resubscribe_and_rejoin_after_a_gateway_restart():
    gateway = RunningGateway(**FAST).start()
    sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5)
    dashboards, connects, snapshots = {"sales"}, [], []

    @sio.event
    async def connect() -> None:  # what the README's snippet does in JavaScript
        connects.append(time.monotonic())
        await sio.emit("analytics:subscribeLiveMetrics")
        for dashboard in dashboards:
            await sio.emit("analytics:joinDashboard", dashboard)

    sio.on("analytics:liveMetrics", snapshots.append)
    try:
        await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        await until(lambda: snapshots and metric(snapshots[-1], "Active Dashboards") == 1)
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(gateway.start)  # same port, fresh state
        seen = len(snapshots)
        # The resubscribe and the rejoin run concurrently: wait for a push that has seen both.
        await until(
            lambda: (
                len(connects) == 2 and len(snapshots) > seen + 1 and metric(snapshots[-1], "Active Dashboards") == 1
            ),
            timeout=30,
        )
        assert metric(snapshots[-1], "Live Subscribers") == 1
        assert metric(snapshots[-1], "Active Dashboards") == 1
        assert services().counters.read() == Counts(connections=1, active_users=1, subscribers=1, active_dashboards=1)
    finally:
        await sio.disconnect()
        gateway.stop()


# -- load ---------------------------------------------------------------------------------------
ACTIONS = ["subscribe", "unsubscribe", "join", "leave"]
DASHBOARDS = ["d0", "d1", "d2", "d3", "d4"]


@pytest.mark.load
async def test_200_clients_acting_concurrently_leave_exactly_what_their_last_actions_say():
    rng = random.Random(4)
    plans = [[(rng.choice(ACTIONS), rng.choice(DASHBOARDS)) for _ in range(rng.randint(2, 3))] for _ in range(200)]
    with running(METRICS_INTERVAL_SECONDS="30", RECONCILE_INTERVAL_SECONDS="3600") as gateway:
        clients = [socketio.AsyncClient(reconnection=False) for _ in plans]
        users = [f"user{n % 50}" for n in range(len(plans))]  # four tabs per user
        await asyncio.gather(
            *(
                c.connect(f"{gateway.url}?userId={u}", transports=["websocket"], wait_timeout=60)
                for c, u in zip(clients, users, strict=True)
            )
        )

        async def act(sio: socketio.AsyncClient, plan: list[tuple[str, str]]) -> None:
            for action, dashboard in plan:
                if action in ("subscribe", "unsubscribe"):
                    ack = await sio.call(f"analytics:{action}LiveMetrics", timeout=60)
                else:
                    ack = await sio.call(f"analytics:{action}Dashboard", dashboard, timeout=60)
                assert ack == {"ok": True}

        started = time.monotonic()
        await asyncio.gather(*(act(c, plan) for c, plan in zip(clients, plans, strict=True)))
        elapsed = time.monotonic() - started
        svc = services()
        ids = [gateway.gateway.socketio.connection_id(c.get_sid()) for c in clients]
        expected_subscribers, expected_rooms = set(), {}
        for cid, plan in zip(ids, plans, strict=True):
            rooms: set[str] = set()
            for action, dashboard in plan:
                if action == "subscribe":
                    expected_subscribers.add(cid)
                elif action == "unsubscribe":
                    expected_subscribers.discard(cid)
                elif action == "join":
                    rooms.add(dashboard)
                else:
                    rooms.discard(dashboard)
            expected_rooms[cid] = sorted(rooms)
        assert {cid for page in svc.store.subscribers() for cid, _ in page} == expected_subscribers
        assert {cid: connection_rooms(svc, cid) for cid in ids} == expected_rooms
        active = {room for rooms in expected_rooms.values() for room in rooms}
        expected = Counts(
            connections=200, active_users=50, subscribers=len(expected_subscribers), active_dashboards=len(active)
        )
        assert svc.counters.read() == expected
        # A whole pass now, whenever the gateway's own reconciler last ran: nothing to heal.
        reconciler = Reconciler(svc.table, svc.config.reconcile_settle_seconds)
        run = await asyncio.to_thread(reconciler.run, 100_000)
        assert run.finished and run.healed == 0 and svc.counters.read() == expected
        await asyncio.gather(*(c.disconnect() for c in clients))
        await until(lambda: svc.counters.read() == Counts(), timeout=30)
        logging.getLogger(__name__).info("200 clients, %d actions in %.1fs", sum(map(len, plans)), elapsed)


# -- limits on the wire -------------------------------------------------------------------------
async def test_oversized_frames_and_floods_get_analytics_error_and_the_connection_stays_usable():
    with running(RATE_LIMIT_PER_SECOND="0.2", RATE_LIMIT_BURST="3") as gateway:
        async with client(gateway.url) as sio:
            errors: list[dict[str, Any]] = []
            sio.on("analytics:error", errors.append)
            ack = await sio.call("analytics:joinDashboard", "x" * 40_000)
            assert ack["ok"] is False and ack["error"].startswith("Frame too large")
            assert await sio.call("analytics:joinDashboard", "sales") == {"ok": True}
            # The burst is 3; the oversized frame was refused before the limiter and cost no token (nor any call).
            acks = [await sio.call("analytics:requestLiveMetrics") for _ in range(3)]
            refused = {"ok": False, "error": "Too many requests: at most 0.2 a second; slow down and retry"}
            assert acks == [{"ok": True}, {"ok": True}, refused]
            await until(lambda: len(errors) == 2)
            assert errors[1] == {"message": acks[-1]["error"], "event": "analytics:requestLiveMetrics"}
            assert sio.connected


async def test_a_message_beyond_128_kb_closes_the_connection_as_api_gateway_does():
    with running() as gateway:
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        await sio.emit("analytics:joinDashboard", "x" * 200_000)
        await until(lambda: not sio.connected)
        async with client(gateway.url) as fresh:  # the gateway itself is unharmed
            assert await fresh.call("analytics:joinDashboard", "sales") == {"ok": True}


# -- authentication, through the gateway --------------------------------------------------------
async def test_auth_accepts_a_token_in_auth_or_in_the_query_and_refuses_the_rest(caplog):
    good = token(dashboards=["sales"])
    with caplog.at_level(logging.DEBUG), running(AUTH_JWT_SECRET=SECRET) as gateway:
        async with (
            client(gateway.url, auth={"token": good}) as by_auth,
            client(f"{gateway.url}?token={good}") as by_query,
        ):
            assert await by_auth.call("analytics:joinDashboard", "sales") == {"ok": True}
            refused = await by_query.call("analytics:joinDashboard", "payroll")
            assert refused == {"ok": False, "error": "This connection may not join that dashboard"}
            assert services().counters.read().active_users == 1  # one sub, two tabs
        for bad in ({}, {"token": "nope"}, {"token": token(sub="mallory").replace(".", "x.", 1)}):
            sio, refusals = socketio.AsyncClient(reconnection=False), []
            sio.on("connect_error", refusals.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sio.connect(gateway.url, transports=["websocket"], auth=bad, wait_timeout=10)
            assert refusals == [{"message": "Unauthorized"}]
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "connection refused (401)" in logged
    assert good not in logged and good.split(".")[2] not in logged and SECRET not in logged


# -- CORS ---------------------------------------------------------------------------------------
def polling_handshake(url: str, origin: str) -> tuple[int, str | None]:
    request = urllib.request.Request(f"{url}/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Access-Control-Allow-Origin")


async def stage_upgrade(url: str, origin: str | None) -> int:
    """The status of a `/prod` WebSocket upgrade sent with `origin` (None: no Origin, as clients that are not
    browsers): 101 when it connects."""
    headers = {} if origin is None else {"Origin": origin}
    try:
        async with websockets.connect(url.replace("http", "ws") + "/prod", additional_headers=headers):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def test_cors_allows_the_configured_origins_and_refuses_the_others():
    allowed = "https://dashboards.example.com"
    with running(CORS_ALLOWED_ORIGINS=f"{allowed}, http://localhost:3000") as gateway:
        assert polling_handshake(gateway.url, allowed) == (200, allowed)
        assert polling_handshake(gateway.url, "https://evil.example.net")[0] == 400
        async with client(gateway.url, headers={"Origin": "http://localhost:3000"}) as sio:
            assert await sio.call("analytics:requestLiveMetrics") == {"ok": True}
        with pytest.raises(socketio.exceptions.ConnectionError):
            await socketio.AsyncClient(reconnection=False).connect(
                gateway.url, transports=["websocket"], headers={"Origin": "https://evil.example.net"}
            )


async def test_cors_allows_only_this_machines_pages_by_default_and_star_when_asked():
    with running() as gateway:
        for local in ("http://localhost:3000", f"http://127.0.0.1:{gateway.port}", "http://[::1]:5173", gateway.url):
            assert polling_handshake(gateway.url, local) == (200, local)
        for foreign in ("https://anywhere.example.org", "http://localhost.example.org", "null"):
            assert polling_handshake(gateway.url, foreign)[0] == 400
        with pytest.raises(socketio.exceptions.ConnectionError):
            await socketio.AsyncClient(reconnection=False).connect(
                gateway.url, transports=["websocket"], headers={"Origin": "https://anywhere.example.org"}
            )
        # The /{stage} endpoint keeps the same pages out, before $connect (API Gateway checks no Origin).
        assert [await stage_upgrade(gateway.url, local) for local in (None, "http://localhost:3000", gateway.url)] == [
            101
        ] * 3
        assert await stage_upgrade(gateway.url, "https://anywhere.example.org") == 403
    with running(CORS_ALLOWED_ORIGINS="*") as gateway:
        assert polling_handshake(gateway.url, "https://anywhere.example.org") == (200, "https://anywhere.example.org")
        assert await stage_upgrade(gateway.url, "https://anywhere.example.org") == 101
