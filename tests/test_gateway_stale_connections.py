"""Through a real gateway: a connection registered without a socket (its `$connect` run through the gateway's
signed Lambda Invoke API, as a `$connect` whose client never stayed) is counted until the reconciler asks the
gateway's Management API about it, then removed; the real client's connection is asked about and kept."""

from __future__ import annotations

import asyncio
import json

import pytest
import socketio

from tests.support.events import connect_event, load_event, message_event
from tests.support.servers import invoke_function, running_gateway

GHOST = "GHOSTAAAAAAAAAA="  # registered by $connect, never given a socket


async def metrics(sio: socketio.AsyncClient, pushes: asyncio.Queue) -> dict[str, int]:
    """Active Users, Live Subscribers and Active Dashboards, as of now (requestLiveMetrics)."""
    assert await sio.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
    snapshot = await asyncio.wait_for(pushes.get(), 10)
    return {item["name"]: item["value"] for item in snapshot[:3]}


@pytest.mark.parametrize("poster", ["inprocess", "http"])  # the registry itself, or SigV4 GETs to /@connections
async def test_a_connection_registered_without_a_socket_heals_through_the_gateway(poster: str):
    settings = {
        "LOCAL_POSTER": poster,
        "RECONCILE_CHECK_AFTER_SECONDS": "1",
        "RECONCILE_SETTLE_SECONDS": "0",
        "RECONCILE_INTERVAL_SECONDS": "0",
    }
    with running_gateway(**settings) as gateway:
        sio = socketio.AsyncClient(reconnection=False)
        pushes: asyncio.Queue = asyncio.Queue()
        sio.on("analytics:liveMetrics", pushes.put_nowait)
        await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        assert await sio.call("analytics:joinDashboard", "sales", timeout=10) == {"ok": True}
        connected = await asyncio.to_thread(
            invoke_function, gateway.url, "ConnectFunction", connect_event(GHOST, {"userId": "g"})
        )
        assert connected["statusCode"] == 200
        join = message_event(GHOST, "analytics:joinDashboard", "ops")
        joined = await asyncio.to_thread(invoke_function, gateway.url, "JoinDashboardFunction", join)
        assert json.loads(joined["body"]) == {"ok": True}
        counted = {"Active Users": 2, "Live Subscribers": 0, "Active Dashboards": 2}
        assert await metrics(sio, pushes) == counted  # the stale connection counts, as it would for two hours

        await asyncio.sleep(1.5)  # past the grace period
        answer = await asyncio.to_thread(invoke_function, gateway.url, "ReconcileFunction", load_event("scheduled"))
        assert await metrics(sio, pushes) == {"Active Users": 1, "Live Subscribers": 0, "Active Dashboards": 1}
        run = json.loads(answer["body"])
        assert (run["checked"], run["removed"], run["unanswered"], run["finished"]) == (2, 1, 0, True)
        assert sio.connected and await sio.call("analytics:joinDashboard", "ops", timeout=10) == {"ok": True}
        await sio.disconnect()
