"""Performance properties that can be asserted without timing: calls per tick, no Scan, imports, both posters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from handlers import connect, request_live_metrics, subscribe_live_metrics
from shared import publisher
from shared.clients import management_api_poster
from shared.errors import ConnectionGone
from shared.services import Services, reset_services
from tests.support.events import connect_event, message_event
from tests.support.servers import GatewayProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dynamodb_calls(lambda_env) -> Iterator[Counter]:
    """Every DynamoDB operation the store's client makes, counted by a botocore `before-call` hook."""
    calls: Counter = Counter()
    me = threading.get_ident()  # a gateway left running by another test module may share the client

    def count(model, **_):
        if threading.get_ident() == me:
            calls[model.name] += 1

    events = lambda_env.table.client.meta.events
    events.register("before-call.dynamodb", count)
    yield calls
    events.unregister("before-call.dynamodb", count)


def subscribed(count: int) -> list[str]:
    ids = [f"C{i:014d}=" for i in range(count)]
    for cid in ids:
        assert connect.handler(connect_event(cid), None)["statusCode"] == 200
        assert (
            subscribe_live_metrics.handler(message_event(cid, "analytics:subscribeLiveMetrics"), None)["statusCode"]
            == 200
        )
    return ids


@pytest.mark.parametrize("subscribers, pages", [(5, 2), (7, 3)])
def test_publisher_tick_costs_constant_reads_plus_one_query_per_page(lambda_env, dynamodb_calls, subscribers, pages):
    subscribed(subscribers)
    lambda_env.table.page_size = 3
    publisher.tick(lambda_env, lambda_env.poster())  # the first tick also claims the heartbeat (measured below)
    dynamodb_calls.clear()
    result = publisher.tick(lambda_env, lambda_env.poster())
    assert result is not None and result[0].delivered == subscribers
    # GetItem: the counters, and the reported metrics (only when somebody listens); PutItem: METRICS/LATEST.
    assert dynamodb_calls == Counter({"Query": pages, "GetItem": 2, "PutItem": 1})


def test_publisher_heartbeat_costs_one_claim_plus_one_query_per_page_once_per_interval(lambda_env, dynamodb_calls):
    subscribed(1)
    dynamodb_calls.clear()
    publisher.tick(lambda_env, lambda_env.poster())
    first = dynamodb_calls.copy()
    dynamodb_calls.clear()
    publisher.tick(lambda_env, lambda_env.poster())
    # The tick that claims the heartbeat adds one conditional UpdateItem and one Query of the Socket.IO partition.
    assert first - dynamodb_calls == Counter({"UpdateItem": 1, "Query": 1})


def request_three_times(cid: str) -> None:
    for _ in range(3):
        result = request_live_metrics.handler(message_event(cid, "analytics:requestLiveMetrics"), None)
        assert json.loads(result["body"]) == {"ok": True}


def test_request_live_metrics_costs_one_read_while_the_tick_is_remembered(lambda_env, management_api, dynamodb_calls):
    (cid,) = subscribed(1)
    publisher.tick(lambda_env, lambda_env.poster())  # this process saved the tick: it remembers its readings
    dynamodb_calls.clear()
    request_three_times(cid)
    # Each: the rate-limit token (UpdateItem, which also proves the connection registered; a second attempt
    # when the bucket is not idle) and the counters: one GetItem, and nothing written.
    assert dynamodb_calls["GetItem"] == 3 and 3 <= dynamodb_calls["UpdateItem"] <= 6
    assert set(dynamodb_calls) == {"GetItem", "UpdateItem"}
    assert len(management_api.events(cid, "analytics:liveMetrics")) == 5  # on subscribe, the tick, the three


def test_request_live_metrics_costs_one_batch_read_in_another_process(lambda_env, management_api, dynamodb_calls):
    (cid,) = subscribed(1)
    publisher.tick(lambda_env, lambda_env.poster())
    # Another sandbox: it remembers nothing, and reads the counters, the tick and the reported metrics at once.
    reset_services(Services.from_config(lambda_env.config, dynamodb=lambda_env.table.client))
    dynamodb_calls.clear()
    request_three_times(cid)
    assert dynamodb_calls["BatchGetItem"] == 1 and dynamodb_calls["GetItem"] == 2  # then it remembers the tick
    assert set(dynamodb_calls) == {"BatchGetItem", "GetItem", "UpdateItem"}


def test_request_live_metrics_costs_one_batch_read_without_a_tick(lambda_env, management_api, dynamodb_calls):
    (cid,) = subscribed(1)
    dynamodb_calls.clear()
    request_three_times(cid)
    assert dynamodb_calls["BatchGetItem"] == 3 and 3 <= dynamodb_calls["UpdateItem"] <= 6
    assert set(dynamodb_calls) == {"BatchGetItem", "UpdateItem"}


def test_no_scan_anywhere_in_the_product():
    scan = re.compile(r"\.scan\(|[\"']Scan[\"']|paginator\([\"']scan")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("handlers", "shared", "local_gateway")
        for path in (ROOT / folder).rglob("*.py")
        if scan.search(path.read_text())
    ]
    assert offenders == []


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_importing_a_handler_loads_no_third_party_package_beyond_what_boto3_loads():
    beyond = modules_after("import handlers.request_live_metrics, handlers.publish_metrics") - modules_after(
        "import boto3"
    )
    third_party = {name.split(".")[0] for name in beyond} - set(sys.stdlib_module_names) - {"handlers", "shared"}
    assert third_party == set()


def test_signed_poster_posts_and_turns_410_into_connection_gone(management_api):
    poster = management_api_poster(management_api.url)
    poster.post("AAAAAAAAAAAAAAA=", b'{"event":"e","data":1}')
    management_api.gone.add("BBBBBBBBBBBBBBB=")
    with pytest.raises(ConnectionGone):
        poster.post("BBBBBBBBBBBBBBB=", b'{"event":"e","data":2}')
    gone = poster.post_many(["AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="], b'{"event":"e","data":3}')
    assert gone == ["BBBBBBBBBBBBBBB="]
    assert [f["data"] for f in management_api.events("AAAAAAAAAAAAAAA=")] == [1, 3]


@pytest.mark.parametrize("mode", ["http", "inprocess"])
async def test_gateway_serves_requests_with_either_local_poster(mode):
    # A process of its own: the gateway's environment (TABLE_NAME, endpoints) is process-global.
    clean = {name: "" for name in ("TABLE_NAME", "DYNAMODB_ENDPOINT_URL", "CONNECTIONS_ENDPOINT_URL")}
    gateway = GatewayProcess(METRICS_INTERVAL_SECONDS="0.5", LOCAL_POSTER=mode, **clean).start()
    try:
        client = socketio.AsyncClient(reconnection=False)
        pushes: list = []
        client.on("analytics:liveMetrics", pushes.append)
        await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        assert await client.call("analytics:requestLiveMetrics") == {"ok": True}
        assert len(pushes) == 1 and pushes[0][0]["name"] == "Active Users"
        await client.disconnect()
    finally:
        gateway.stop()
