"""Sharded fan-out: above FANOUT_SLICE_SIZE the publisher hands slices of subscribers to worker invocations."""

from __future__ import annotations

import asyncio
import json

import pytest
import socketio

from handlers import connect, fanout_worker, publish_metrics, subscribe_live_metrics
from shared.services import reset_services, services
from tests.support.dynamodb import registered
from tests.support.events import connect_event, load_event, message_event
from tests.support.servers import LambdaEndpoint, RunningGateway

IDS = [f"S{n:014d}=" for n in range(7)]


@pytest.fixture
def lambda_api(lambda_env, monkeypatch):
    endpoint = LambdaEndpoint()
    monkeypatch.setenv("FANOUT_WORKER_FUNCTION", "analytics-FanoutWorker")
    monkeypatch.setenv("FANOUT_SLICE_SIZE", "3")
    monkeypatch.setenv("LAMBDA_ENDPOINT_URL", endpoint.url)
    reset_services()
    yield endpoint
    endpoint.stop()


def subscribe_all() -> None:
    for cid in IDS:
        assert connect.handler(connect_event(cid), None)["statusCode"] == 200
        assert (
            subscribe_live_metrics.handler(message_event(cid, "analytics:subscribeLiveMetrics"), None)["statusCode"]
            == 200
        )


def test_fanout_publisher_hands_slices_beyond_the_first_to_workers(lambda_api, management_api):
    subscribe_all()
    body = json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])
    assert body["delivered"] == 3 and body["handed_off"] == 4
    assert [(function, kind) for function, kind, _ in lambda_api.invocations] == [
        ("analytics-FanoutWorker", "Event")
    ] * 2
    slices = [payload["fanout"]["connectionIds"] for _, _, payload in lambda_api.invocations]
    assert [len(part) for part in slices] == [3, 1]
    posted_by_publisher = [cid for cid in IDS if len(management_api.events(cid)) == 2]  # subscribe + tick
    assert sorted(posted_by_publisher + slices[0] + slices[1]) == sorted(IDS)


def test_fanout_workers_deliver_the_same_frame_and_clean_up_gone_connections(lambda_api, management_api):
    subscribe_all()
    publish_metrics.handler(load_event("scheduled"), None)
    gone = lambda_api.invocations[0][2]["fanout"]["connectionIds"][0]
    management_api.gone.add(gone)
    results = [json.loads(fanout_worker.handler(payload, None)["body"]) for _, _, payload in lambda_api.invocations]
    assert results == [{"delivered": 2, "gone": 1}, {"delivered": 1, "gone": 0}]
    pushes = [management_api.events(cid, "analytics:liveMetrics")[-1] for cid in IDS if cid != gone]
    assert all(push == pushes[0] for push in pushes) and len(pushes) == 6
    assert not registered(services(), gone)
    assert services().counters.read().subscribers == 6


def test_fanout_below_the_slice_size_invokes_nobody(lambda_api, management_api, monkeypatch):
    monkeypatch.setenv("FANOUT_SLICE_SIZE", "10")
    reset_services()
    subscribe_all()
    body = json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])
    assert body["delivered"] == 7 and body["handed_off"] == 0
    assert lambda_api.invocations == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"fanout": {"connectionIds": "x", "frame": "{}"}},
        {"fanout": {"connectionIds": [1], "frame": "{}"}},
        {"fanout": {"connectionIds": []}},
    ],
)
def test_fanout_worker_rejects_a_malformed_slice(lambda_env, management_api, event):
    result = fanout_worker.handler(event, None)
    assert result["statusCode"] == 400
    assert management_api.requests == 0


async def test_fanout_through_the_gateway_reaches_every_subscriber():
    running = RunningGateway(METRICS_INTERVAL_SECONDS="0.5", FANOUT_SLICE_SIZE="3").start()
    try:
        clients = [socketio.AsyncClient(reconnection=False) for _ in range(8)]
        pushes: list[list] = [[] for _ in clients]
        for client, received in zip(clients, pushes, strict=True):
            client.on("analytics:liveMetrics", received.append)
        await asyncio.gather(*(c.connect(running.url, transports=["websocket"], wait_timeout=10) for c in clients))
        await asyncio.gather(*(c.call("analytics:subscribeLiveMetrics", timeout=10) for c in clients))
        for _ in range(100):
            stamps = [{p[0]["timestamp"] for p in received[1:]} for received in pushes]
            if all(stamps) and set.intersection(*stamps):
                break
            await asyncio.sleep(0.1)
        common = set.intersection(*[{p[0]["timestamp"] for p in received} for received in pushes])
        assert common, "every subscriber received the same periodic snapshot"
        await asyncio.gather(*(c.disconnect() for c in clients))
    finally:
        running.stop()
