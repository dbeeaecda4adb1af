"""JSON nested past any use is measured before it is parsed, on every path a client's JSON takes: a /prod frame
goes to `$default` (as API Gateway sends what it cannot read), a dashboard update is a 400 in JSON, a Lambda
Invoke payload Lambda's own 400, a Socket.IO packet one WARNING line; never a RecursionError, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
import websockets

from local_gateway.nesting import MAX_NESTING, too_deep
from tests.support.servers import RunningGateway, engineio_session, http_status

DEEP_FRAME = "[" * 1000 + "]" * 1000  # 2 KB, past the parser's depth


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_deeply_nested_prod_frame_goes_to_default_and_the_connection_stays(gateway, caplog):
    caplog.set_level(logging.INFO)
    async with websockets.connect(gateway.url.replace("http", "ws") + "/prod") as ws:
        for frame in (DEEP_FRAME, '{"action": "analytics:requestLiveMetrics", "data": ' + DEEP_FRAME + "}"):
            await ws.send(frame)
            answers = []
            while not (answers and "ok" in answers[-1]):  # $default's error frame, then its route response
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            assert answers[-1]["ok"] is False and answers[-1]["error"].startswith("Malformed frame")
        await ws.send('{"action": "analytics:requestLiveMetrics"}')
        while (answer := json.loads(await asyncio.wait_for(ws.recv(), 10))).get("ok") is None:
            pass
        assert answer == {"ok": True}
    await asyncio.sleep(0.2)
    no_errors(caplog)


async def test_a_deeply_nested_dashboard_update_is_a_400_in_json(gateway, caplog):
    caplog.set_level(logging.INFO)
    for levels in (5000, MAX_NESTING + 1):
        body = ("[" * levels + "]" * levels).encode()
        request = urllib.request.Request(
            f"{gateway.url}/dashboards/sales/updates", data=body, headers={"Content-Type": "application/json"}
        )
        status, headers, answer = await asyncio.to_thread(http_status, request)
        assert (status, headers["content-type"]) == (400, "application/json")
        assert json.loads(answer) == {"error": f"The body nests more than {MAX_NESTING} levels"}
    within = ("[" * MAX_NESTING + "]" * MAX_NESTING).encode()
    request = urllib.request.Request(
        f"{gateway.url}/dashboards/sales/updates", data=within, headers={"Content-Type": "application/json"}
    )
    assert (await asyncio.to_thread(http_status, request))[0] == 202
    no_errors(caplog)


def test_a_deeply_nested_invoke_payload_is_lambdas_own_400(gateway):
    client = boto3.client("lambda", endpoint_url=gateway.url, region_name="us-east-1")
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="DisconnectFunction", Payload=DEEP_FRAME.encode())


async def test_a_deeply_nested_socketio_packet_is_one_warning(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    ws = await engineio_session(gateway)
    try:
        await ws.send("40")
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("40{")
        await ws.send('42["analytics:joinDashboard",' + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "]")
        await ws.send('421["analytics:requestLiveMetrics"]')
        while not (answer := await asyncio.wait_for(ws.recv(), 10)).startswith("431"):
            pass
        assert json.loads(answer[3:]) == [{"ok": True}]
    finally:
        await ws.close()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [f"Socket.IO packet refused: nested more than {MAX_NESTING} levels"]
    no_errors(caplog)


def test_nesting_is_measured_as_the_parser_counts_it():
    assert not too_deep("[]" * 10_000) and not too_deep("")
    assert too_deep("[" * 65 + "]" * 65) and not too_deep("[" * 64 + "]" * 64)
    assert too_deep('{"a":' * 65 + "1" + "}" * 65) and not too_deep('{"a":' * 64 + "1" + "}" * 64)
    assert not too_deep('["' + "[" * 100 + '"]')  # brackets inside a string
    assert not too_deep('["\\"' + "[" * 100 + '"]')  # after an escaped quote, still inside the string
    assert too_deep(b"[" * 1000) and too_deep("[" * 3 + "]" * 3, limit=2)
    assert not too_deep('"' + "\\" * 5 + "[" * 100)  # an unterminated string runs to the end
