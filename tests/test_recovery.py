"""Connection state recovery end to end: the stock socket.io-client (Node) through drops on `/socket.io/` and
on `/prod` with the production options, API Gateway's lifetime cut, a gateway restart with an external
DynamoDB; python-socketio's client unaffected by offsets."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.support.contract import contract_validator
from tests.support.servers import RunningGateway, running_gateway

SCRIPT = Path(__file__).parent / "js" / "recovery_client.js"
FAST = {"METRICS_INTERVAL_SECONDS": "0.5"}


async def start(gateway: RunningGateway, endpoint: str, scenario: str, away_ms: int = 0) -> asyncio.subprocess.Process:
    node = shutil.which("node")
    assert node, "Node.js is needed for the JavaScript client tests"
    origin = f"{'ws' if endpoint == 'prod' else 'http'}://127.0.0.1:{gateway.port}"
    return await asyncio.create_subprocess_exec(
        node, str(SCRIPT), origin, endpoint, scenario, str(away_ms),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finished(process: asyncio.subprocess.Process) -> dict[str, Any]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, (stdout + stderr).decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    validate = contract_validator()  # every event with all its arguments, and the session id, held to asyncapi.yaml
    assert result["frames"], "the client recorded no server event"
    for event, *args in result["frames"]:
        validate.socketio_event(event, *args)
    validate.session(result["pid"])
    return result


async def run(gateway: RunningGateway, endpoint: str, scenario: str, away_ms: int = 0) -> dict[str, Any]:
    return await finished(await start(gateway, endpoint, scenario, away_ms))


def assert_every_update_once_in_order(result: dict[str, Any]) -> None:
    received = [n for _, n in result["updates"]]
    assert Counter(received) == Counter(range(1, result["published"] + 1)), "each update once, none missed"
    for dashboard in result["dashboards"]:
        mine = [n for name, n in result["updates"] if name == dashboard]
        assert mine == sorted(mine), f"in publish order on {dashboard}"


@pytest.fixture(scope="module")
def gateway():
    with running_gateway(**FAST) as running:
        yield running


@pytest.mark.parametrize("endpoint", ["local", "polling", "prod"])
@pytest.mark.parametrize("scenario", ["drop", "fresh", "drops3"])
async def test_a_dropped_client_recovers_its_session_and_every_missed_update(gateway, endpoint, scenario):
    result = await run(gateway, endpoint, scenario)
    drops = 3 if scenario == "drops3" else 1
    assert result["connects"] == [False] + [True] * drops  # `socket.recovered` after each reconnection
    assert_every_update_once_in_order(result)
    assert result["metricsSinceConnect"] >= 1, "subscribed again with no client code"


@pytest.mark.parametrize("endpoint", ["local", "prod"])
async def test_a_client_that_disconnects_on_purpose_starts_afresh(gateway, endpoint):
    result = await run(gateway, endpoint, "leave")
    assert result["connects"] == [False, False]
    assert [n for _, n in result["updates"]] == [1], "nothing replayed, in no room any more"
    assert result["metricsSinceConnect"] == 0, "not subscribed any more"


async def test_a_session_past_the_recovery_window_is_not_recovered():
    with running_gateway(**FAST, RECOVERY_WINDOW_SECONDS="1") as gateway:
        result = await run(gateway, "local", "drop", away_ms=2500)
    assert result["connects"] == [False, False]
    assert [n for _, n in result["updates"]] == [1]


async def test_a_history_trimmed_past_the_offset_is_not_recovered():
    with running_gateway(**FAST, HISTORY_MAX_UPDATES="1") as gateway:
        result = await run(gateway, "prod", "drop")
    assert result["connects"] == [False, False]
    assert [n for _, n in result["updates"]] == [1], "never a partial replay"


async def test_api_gateways_lifetime_cut_is_recovered():
    with running_gateway(**FAST, APIGW_MAX_CONNECTION_SECONDS="5") as gateway:
        result = await run(gateway, "prod", "cut")
    assert result["connects"][0] is False and all(result["connects"][1:]) and len(result["connects"]) >= 2
    assert_every_update_once_in_order(result)


async def test_a_gateway_restart_with_an_external_dynamodb_is_recovered(moto_endpoint):
    gateway = RunningGateway(**FAST, DYNAMODB_ENDPOINT_URL=moto_endpoint).start()
    try:
        process = await start(gateway, "local", "restart", away_ms=2000)
        assert process.stdout is not None
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 30)) == {"event": "ready"}
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(gateway.start)  # the same port and table; every connection was cut
        result = await finished(process)
    finally:
        gateway.stop()
    assert result["connects"] == [False, True]
    assert_every_update_once_in_order(result)


async def test_python_socketio_handlers_of_one_argument_get_updates_without_an_offset(gateway):
    """python-socketio passes every argument of an event to its handler: a client of it gets no offset."""
    client = socketio.AsyncClient(reconnection=False)
    received: list[Any] = []
    arrived = asyncio.Event()

    @client.on("analytics:dashboardUpdate")
    def on_update(update: Any) -> None:  # one argument, as the README's example
        received.append(update)
        arrived.set()

    await client.connect(gateway.url, wait_timeout=10)
    try:
        assert await client.call("analytics:joinDashboard", "python-one-arg", timeout=10) == {"ok": True}
        request = urllib.request.Request(
            f"{gateway.url}/dashboards/python-one-arg/updates",
            data=json.dumps({"n": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert (await asyncio.to_thread(urllib.request.urlopen, request)).status == 202
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await client.disconnect()
    assert received[0]["data"] == {"n": 1} and received[0]["dashboardId"] == "python-one-arg"
