"""One client must not stall everyone: per-connection lanes, a bounded backlog, the publisher's own lane."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from typing import Any

import socketio

from shared.services import services
from tests.support.dynamodb import connection_rooms
from tests.support.servers import RunningGateway, until

TOO_MANY = "Too many requests: wait for the answers to what you sent before sending more"
HUNG_UP = "Too many requests: disconnected for sending on after more refusals than the backlog holds"


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
        # One running, three waiting, and at most three refused in a row (the backlog) before a hang-up.
        answers = await asyncio.gather(*(sio.call("analytics:requestLiveMetrics", timeout=20) for _ in range(7)))
        served = [a for a in answers if a == {"ok": True}]
        refused = [a for a in answers if a == {"ok": False, "error": TOO_MANY}]
        assert len(served) + len(refused) == 7 and 4 <= len(served) < 7 and refused
        # The refused events took no rate-limit token (the first DynamoDB call of every event): the rest remain.
        later = [await sio.call("analytics:requestLiveMetrics", timeout=10) for _ in range(10 - len(served))]
        assert later == [{"ok": True}] * (10 - len(served))
        assert (await sio.call("analytics:requestLiveMetrics", timeout=10))["error"].startswith("Too many requests")
        assert sum(e["message"] == TOO_MANY for e in errors) == len(refused)
        assert sio.connected
        await sio.disconnect()
    finally:
        gateway.stop()


async def test_a_client_sending_on_through_its_refusals_is_hung_up_on():
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="0.5", EVENT_BACKLOG="3").start()
    try:
        sio = await connect(gateway)
        errors: list = []
        sio.on("analytics:error", errors.append)
        for n in range(40):
            await sio.emit("analytics:joinDashboard", f"d{n}")
        await until(lambda: not sio.connected)
        messages = [e["message"] for e in errors]
        # Refusals (as many as the lane could tell before the flood outran it), then the hang-up, nothing after.
        assert set(messages) <= {TOO_MANY, HUNG_UP} and messages[-1] == HUNG_UP and messages.count(HUNG_UP) == 1
        await until(lambda: len(gateway.gateway.registry) == 0)
        await until(lambda: services().counters.read().connections == 0)  # its $disconnect ran
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
        assert gateway.gateway.socketio.lanes == {}
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
            with contextlib.suppress(socketio.exceptions.BadNamespaceError):  # hung up on, mid-flood
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
        p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]  # never beyond the largest
        gaps = [b - a for a, b in itertools.pairwise(pushes)]
        median = statistics.median(latencies)
        print(
            f"\nbystander requestLiveMetrics under a 2,000-event flood: p50 {median * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
            f"longest push gap {max(gaps, default=0):.2f} s"
        )
        assert max(latencies) < 2.0  # generous: before the lanes, this took up to 19 s
        assert pushes and max(gaps, default=0) < 2.0
        assert not flooder.connected  # hung up on, its remaining packets dropped unread
        # A backlog still queued (the default 16, none refused): stopping does not wait for it.
        queuer = await connect(gateway)
        for n in range(16):
            await queuer.emit("analytics:joinDashboard", f"late-{n}")
        started = time.monotonic()
        await asyncio.to_thread(gateway.stop)
        stopped = True
        assert time.monotonic() - started < 5.0
    finally:
        if not stopped:
            gateway.stop()


def test_in_flight_limit_counts_each_sessions_events_until_answered_and_refuses_beyond_its_limit():
    from local_gateway.apigateway.screening import InFlightLimit

    in_flight = InFlightLimit(limit=3)
    assert [in_flight.arrived("a") for _ in range(4)] == [True, True, True, False]
    assert in_flight.arrived("b")  # each session has its own count
    in_flight.answered("a")
    in_flight.answered("a")
    assert in_flight.arrived("a") and not in_flight.arrived("a")
    in_flight.forget("a")
    assert in_flight.arrived("a")
    in_flight.answered(None)  # an event whose session was already gone
