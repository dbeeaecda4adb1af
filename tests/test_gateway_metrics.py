"""The live metrics on a running gateway (docs/metrics.md): CPU and memory from a configured CloudWatch (moto's),
metrics reported with POST /metrics, their order and expiry, what is refused, and requests that agree with the
push of their period. Real python-socketio clients; every payload held to asyncapi.yaml."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import socketio

from shared.contract import COUNT_METRIC_NAMES, METRIC_NAMES
from tests.support.cloudwatch import cloudwatch_metrics
from tests.support.contract import contract_validator
from tests.support.servers import RunningGateway, running_gateway, until

LIVE = "analytics:liveMetrics"


@pytest.fixture(scope="module")
def metrics_gateway(cloudwatch_endpoint: str) -> Iterator[RunningGateway]:
    """Pushing every 0.5 s, its CPU and memory from a service's metrics in moto's CloudWatch (37.4 and 61.6)."""
    running = RunningGateway(
        METRICS_INTERVAL_SECONDS="0.5", **cloudwatch_metrics(cloudwatch_endpoint, 37.4, 61.6)
    ).start()
    yield running
    running.stop()


class Listener:
    """A subscribed Socket.IO client keeping every snapshot it is pushed, each checked against asyncapi.yaml."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pushed: list[list[dict[str, Any]]] = []
        self.sio.on(LIVE, self._pushed)

    async def _pushed(self, snapshot: list[dict[str, Any]]) -> None:
        contract_validator()(LIVE, snapshot)
        self.pushed.append(snapshot)

    async def start(self, gateway: RunningGateway, subscribe: bool = True) -> Listener:
        await self.sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        if subscribe:
            assert await self.sio.call("analytics:subscribeLiveMetrics", timeout=10) == {"ok": True}
        return self

    async def request(self) -> list[dict[str, Any]]:
        answered: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.sio.on(LIVE, lambda snapshot: answered.done() or answered.set_result(snapshot))
        try:
            assert await self.sio.call("analytics:requestLiveMetrics", timeout=10) == {"ok": True}
            snapshot = await asyncio.wait_for(answered, 10)
        finally:
            self.sio.on(LIVE, self._pushed)
        contract_validator()(LIVE, snapshot)
        return snapshot

    async def close(self) -> None:
        await self.sio.disconnect()


def names(snapshot: list[dict[str, Any]]) -> list[str]:
    return [metric["name"] for metric in snapshot]


def readings(snapshot: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """What a snapshot holds beside the counts."""
    return [(metric["name"], metric["value"]) for metric in snapshot[3:]]


async def post(gateway: RunningGateway, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/metrics", data=data, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.json()


def reported_item(gateway: RunningGateway) -> dict[str, Any] | None:
    svc = gateway.gateway.invoker.services
    item: dict[str, Any] | None = svc.table.get(svc.reported.key, consistent=True)
    return item


async def test_gateway_cpu_and_memory_come_from_the_configured_cloudwatch_metrics(metrics_gateway):
    listener = await Listener().start(metrics_gateway)
    await until(lambda: any("CPU Usage" in names(snapshot) for snapshot in listener.pushed), timeout=10)
    pushed = next(snapshot for snapshot in listener.pushed if "CPU Usage" in names(snapshot))
    assert names(pushed)[:5] == list(METRIC_NAMES)
    assert readings(pushed)[:2] == [("CPU Usage", 37), ("Memory Usage", 62)]
    await listener.close()


async def test_gateway_reported_metrics_follow_the_built_in_ones_in_name_order(metrics_gateway):
    listener = await Listener().start(metrics_gateway)
    for name, value in [("Queue depth", 12), ("Orders per minute", 42.5), ("Errors", 0)]:
        assert await post(metrics_gateway, {"name": name, "value": value}) == (202, {"name": name, "value": value})
    reported = {"Queue depth", "Orders per minute", "Errors"}  # a tick may fall between two of the posts
    await until(lambda: bool(listener.pushed) and reported <= set(names(listener.pushed[-1])), timeout=10)
    snapshot = listener.pushed[-1]
    assert names(snapshot)[:5] == list(METRIC_NAMES)
    assert names(snapshot)[5:] == sorted(names(snapshot)[5:])
    assert {"Errors": 0, "Orders per minute": 42.5, "Queue depth": 12}.items() <= dict(readings(snapshot)).items()
    await listener.close()


async def test_gateway_a_request_answers_with_the_readings_of_a_push(metrics_gateway):
    """The counts as of the request, and the latest tick's CPU, memory and reported metrics: whatever a request
    answers, a push carried the same readings, never a report that no tick has seen yet."""
    listener = await Listener().start(metrics_gateway)
    bystander = await Listener().start(metrics_gateway, subscribe=False)
    await until(lambda: len(listener.pushed) >= 2, timeout=10)  # a tick's push: at subscribe, there was none
    answers = []
    for value in range(1, 6):
        assert (await post(metrics_gateway, {"name": "Agreement", "value": value}))[0] == 202
        answers.append(await bystander.request())
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.2)  # the pushes of the last period have arrived
    pushed = [readings(snapshot) for snapshot in listener.pushed[1:]]  # the first: at subscribe, before any tick
    assert [readings(answer) for answer in answers if readings(answer) not in pushed] == []
    await asyncio.gather(listener.close(), bystander.close())


HOSTILE = [
    (b'{"name": "Queue depth", "value": NaN}', "value must be a finite number"),
    (b'{"name": "Queue depth", "value": Infinity}', "value must be a finite number"),
    (json.dumps({"name": "Queue depth", "value": "12"}).encode(), "value must be a finite number"),
    (json.dumps({"name": "x" * 10_240, "value": 1}).encode(), "name must be 1 to 64 characters"),
    (json.dumps({"name": "CPU Usage", "value": 1}).encode(), "name must not be a built-in metric's"),
    (json.dumps({"name": "Queue depth"}).encode(), 'A metric report is exactly {"name": ..., "value": ...}'),
    (b"[1, 2]", 'A metric report is exactly {"name": ..., "value": ...}'),
    (b"{nope", "The body must be JSON"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE, ids=lambda value: str(value)[:24])
async def test_gateway_a_hostile_report_is_refused_400_and_stores_nothing(metrics_gateway, body, message):
    before = reported_item(metrics_gateway)
    status, answer = await post(metrics_gateway, body)
    assert status == 400 and answer["error"].startswith(message)
    assert reported_item(metrics_gateway) == before


async def test_gateway_a_report_that_is_not_json_is_refused_415(metrics_gateway):
    before = reported_item(metrics_gateway)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, answer = await post(metrics_gateway, {"name": "Form", "value": 1}, content_type)
        assert (status, answer) == (415, {"error": "The body must be application/json"})
    assert reported_item(metrics_gateway) == before


async def test_gateway_ten_thousand_distinct_names_beyond_the_cap_are_refused_and_store_nothing(metrics_gateway):
    held = len((reported_item(metrics_gateway) or {"metrics": {"M": {}}})["metrics"]["M"])
    for n in range(20 - held):  # REPORTED_METRICS_MAX: 20
        assert (await post(metrics_gateway, {"name": f"Filler {n}", "value": n}))[0] == 202
    before = reported_item(metrics_gateway)
    assert before is not None and len(before["metrics"]["M"]) == 20
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:

        async def report(n: int) -> int:
            async with http.post(f"{metrics_gateway.url}/metrics", json={"name": f"Flood {n}", "value": n}) as answer:
                return answer.status

        statuses: list[int] = []
        for start in range(0, 10_000, 50):
            statuses += await asyncio.gather(*(report(n) for n in range(start, start + 50)))
    assert statuses == [400] * 10_000
    assert reported_item(metrics_gateway) == before
    assert time.monotonic() - started < 120


async def test_gateway_reported_cpu_and_memory_and_a_metric_that_leaves_once_stale():
    """SYSTEM_METRICS_SOURCE=reported: CPU and memory are what services report under those names; a metric not
    reported for REPORTED_METRIC_MAX_AGE_SECONDS leaves the snapshot."""
    environment = {
        "METRICS_INTERVAL_SECONDS": "0.25",
        "SYSTEM_METRICS_SOURCE": "reported",
        "REPORTED_METRIC_MAX_AGE_SECONDS": "3",  # long enough for three reports and a push on a busy machine
    }
    with running_gateway(**environment) as gateway:
        listener = await Listener().start(gateway)
        assert names(listener.pushed[0]) == list(COUNT_METRIC_NAMES)  # nothing reported yet
        for name, value in [("Memory Usage", 40.4), ("CPU Usage", 71), ("Queue depth", 3)]:
            assert (await post(gateway, {"name": name, "value": value}))[0] == 202
        expected = [("CPU Usage", 71), ("Memory Usage", 40), ("Queue depth", 3)]
        await until(lambda: readings(listener.pushed[-1]) == expected, timeout=10)
        assert (await post(gateway, {"name": "CPU Usage", "value": 101}))[0] == 400
        await until(lambda: names(listener.pushed[-1]) == list(COUNT_METRIC_NAMES), timeout=10)
        await listener.close()


def test_the_gateway_signs_with_the_aws_credentials_of_its_environment(monkeypatch):
    """What a local `cloudwatch` source reads AWS's CloudWatch with; the gateway's own keys only where none are."""
    from local_gateway.dynamodb.embedded import ensure_local_credentials

    mine = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "eu-west-1"}
    for name, value in mine.items():
        monkeypatch.setenv(name, value)
    ensure_local_credentials()
    assert {name: os.environ[name] for name in mine} == mine
