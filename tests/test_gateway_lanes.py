"""One client must not stall everyone: per-connection lanes, a bounded backlog, the publisher's own lane."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

import socketio

from shared.services import services
from tests.support import RunningGateway, connection_rooms

TOO_MANY = "Too many requests: wait for the answers to what you sent before sending more"


async def connect(gateway: RunningGateway) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    return sio


async def acks_in_order(sio: socketio.AsyncClient, events: list[tuple[str, Any]]) -> list[int]:
    """Emit every event at once; the indices of their acknowledgements, in the order they arrive."""
    order: list[int] = []
    done = asyncio.Event()

    def recorder(index: int) -> Any:
        def record(*answer: Any) -> None:
            order.append(index)
            if len(order) == len(events):
                done.set()

        return record

    await asyncio.gather(*(sio.emit(e, data, callback=recorder(i)) for i, (e, data) in enumerate(events)))
    await asyncio.wait_for(done.wait(), 20)
    return order


async def test_one_connections_events_run_one_at_a_time_in_order():
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="0.5", EVENT_BACKLOG="16").start()
    try:
        sio = await connect(gateway)
        events = [("analytics:joinDashboard" if n % 2 == 0 else "analytics:leaveDashboard", "d") for n in range(15)]
        assert await acks_in_order(sio, events) == list(range(15))
        connection_id = gateway.gateway.socketio.connection_id(sio.get_sid())
        assert connection_rooms(services(), connection_id) == ["d"]  # the last one, a join, ran last
        await sio.disconnect()
    finally:
        gateway.stop()


async def test_beyond_the_backlog_the_client_gets_too_many_requests_without_any_dynamodb_call():
    # A burst of 10 tokens that never refills: a refused event that cost a token would show.
    environment = {"EVENT_BACKLOG": "3", "RATE_LIMIT_BURST": "10", "RATE_LIMIT_PER_SECOND": "0.0001"}
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="0.5", **environment).start()
    try:
        sio = await connect(gateway)
        errors: list = []
        sio.on("analytics:error", errors.append)
        answers = await asyncio.gather(*(sio.call("analytics:requestLiveMetrics", timeout=20) for _ in range(30)))
        served = [a for a in answers if a == {"ok": True}]
        refused = [a for a in answers if a == {"ok": False, "error": TOO_MANY}]
        assert len(served) + len(refused) == 30 and 4 <= len(served) < 10  # one running, three waiting
        # The refused events took no rate-limit token (the first DynamoDB call of every event): the rest remain.
        later = [await sio.call("analytics:requestLiveMetrics", timeout=10) for _ in range(10 - len(served))]
        assert later == [{"ok": True}] * (10 - len(served))
        assert (await sio.call("analytics:requestLiveMetrics", timeout=10))["error"].startswith("Too many requests")
        assert sum(e["message"] == TOO_MANY for e in errors) == len(refused)
        await sio.disconnect()
    finally:
        gateway.stop()


async def test_a_connections_queued_events_are_dropped_when_it_leaves():
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="0.5", EVENT_BACKLOG="16").start()
    try:
        sio = await connect(gateway)
        connection_id = gateway.gateway.socketio.connection_id(sio.get_sid())
        for n in range(16):
            await sio.emit("analytics:joinDashboard", f"room-{n}")
        await sio.disconnect()
        await asyncio.sleep(2.0)  # had they run after the leave, their memberships would be back
        assert connection_rooms(services(), connection_id) == []
        assert gateway.gateway.socketio._lanes == {}
    finally:
        gateway.stop()


async def test_a_bystander_stays_fast_while_another_socket_floods_and_shutdown_is_bounded():
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="0.3", RATE_LIMIT_PER_SECOND="0").start()
    stopped = False
    try:
        flooder, bystander = await connect(gateway), await connect(gateway)
        pushes: list[float] = []
        assert await bystander.call("analytics:subscribeLiveMetrics", timeout=10) == {"ok": True}
        bystander.on("analytics:liveMetrics", lambda _: pushes.append(time.monotonic()))

        async def flood() -> None:
            for n in range(2000):
                await flooder.emit("analytics:joinDashboard", f"flood-{n % 15}")

        flooding = asyncio.create_task(flood())
        latencies = []
        for _ in range(30):
            started = time.monotonic()
            assert await bystander.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
        await flooding
        p99 = statistics.quantiles(latencies, n=100)[98]
        gaps = [b - a for a, b in itertools.pairwise(pushes)]
        median = statistics.median(latencies)
        print(
            f"\nbystander requestLiveMetrics under a 2,000-event flood: p50 {median * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
            f"longest push gap {max(gaps, default=0):.2f} s"
        )
        assert max(latencies) < 2.0  # generous: before the lanes, this took up to 19 s
        assert pushes and max(gaps, default=0) < 2.0
        # The flooder's backlog is still queued: stopping does not wait for it.
        for n in range(16):
            await flooder.emit("analytics:joinDashboard", f"late-{n}")
        started = time.monotonic()
        await asyncio.to_thread(gateway.stop)
        stopped = True
        assert time.monotonic() - started < 5.0
    finally:
        if not stopped:
            gateway.stop()
