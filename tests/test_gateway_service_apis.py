"""The gateway's service APIs: the Management API, Lambda's Invoke API, dashboard publishing and the embedded DynamoDB
let in only what AWS would (SigV4 with the functions' credentials) or this machine, and refuse the rest."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.exceptions
import pytest
import socketio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_gateway.awslambda.invoke_api import failure_payload
from local_gateway.awslambda.invoker import FunctionFailed
from local_gateway.settings import GatewaySettings
from tests.support.servers import RunningGateway, http_status
from tests.support.tokens import signed_request

STRANGER = ("203.0.113.9", 40000)  # a peer on the network, not this machine


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    # gateway.test: the name the requests made straight into the ASGI app give (asgi() below).
    running = RunningGateway(
        METRICS_INTERVAL_SECONDS="0.3", LOCAL_POSTER="http", FANOUT_SLICE_SIZE="1", ALLOWED_HOSTS="gateway.test"
    ).start()
    yield running
    running.stop()


async def asgi(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"", client: tuple[str, int] = STRANGER
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request straight into the ASGI app, with the peer address of our choosing."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "gateway.test", **headers}.items()],
        "client": client,
        "server": ("gateway.test", 80),
    }
    sent, messages = False, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, answer


def sign(url: str, method: str, body: bytes, credentials: Any, when: datetime | None = None, **headers: str) -> dict:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    auth = SigV4Auth(credentials, "execute-api", "us-east-1")
    if when is None:
        auth.add_auth(request)
    else:  # a signature made at another time: what a replay or a skewed clock presents
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        if credentials.token:
            request.headers["X-Amz-Security-Token"] = credentials.token
        auth._inject_signature_to_request(
            request, auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        )
    return dict(request.headers.items())


def own_credentials() -> Any:
    return boto3.session.Session().get_credentials().get_frozen_credentials()


async def connected(gateway: RunningGateway) -> tuple[socketio.AsyncClient, str]:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    return sio, gateway.gateway.socketio.connection_id(sio.get_sid())


def test_the_gateway_listens_on_loopback_unless_host_says_otherwise():
    assert GatewaySettings.from_env({}).host == "127.0.0.1"
    assert GatewaySettings.from_env({"HOST": "0.0.0.0"}).host == "0.0.0.0"


async def test_management_api_refuses_unsigned_forged_stale_and_tampered_requests(gateway):
    sio, connection_id = await connected(gateway)
    frames: list = []
    sio.on("analytics:liveMetrics", frames.append)
    url = f"{gateway.url}/@connections/{connection_id}"
    fake = json.dumps({"event": "analytics:liveMetrics", "data": [{"name": "Active Users", "value": 999999}]}).encode()
    real = own_credentials()
    forged = Credentials(real.access_key, "guessed-secret", real.token)
    stale = datetime.now(UTC) - timedelta(minutes=10)
    attempts = {
        "unsigned": urllib.request.Request(url, data=fake, method="POST"),
        "forged": urllib.request.Request(url, data=fake, method="POST", headers=sign(url, "POST", fake, forged)),
        "stale": urllib.request.Request(url, data=fake, method="POST", headers=sign(url, "POST", fake, real, stale)),
        "tampered": urllib.request.Request(url, data=fake, method="POST", headers=sign(url, "POST", b"{}", real)),
        "other key": urllib.request.Request(
            url, data=fake, method="POST", headers=sign(url, "POST", fake, Credentials("AKIDOTHER", "x"))
        ),
        "probe": urllib.request.Request(url, method="GET"),
        "close": urllib.request.Request(url, method="DELETE"),
    }
    for name, request in attempts.items():
        status, headers, body = await asyncio.to_thread(http_status, request)
        assert (status, headers.get("x-amzn-errortype")) == (403, "ForbiddenException"), name
        assert set(json.loads(body)) == {"message"}, name
    await asyncio.sleep(0.3)
    assert sio.connected and all(999999 not in [m["value"] for m in f] for f in frames)
    # From another machine, unsigned: the same refusal, before anything is looked up.
    for method in ("GET", "DELETE", "POST"):
        status, headers, _ = await asgi(gateway.gateway.app, method, f"/@connections/{connection_id}", {}, fake)
        assert (status, headers["x-amzn-errortype"]) == (403, "ForbiddenException")
    # Signed as the functions sign (boto3, or urllib with SigV4Auth): served, from a stranger too.
    assert (await asyncio.to_thread(http_status, signed_request(url, "GET")))[0] == 200
    path = f"/@connections/{connection_id}"
    status, _, _ = await asgi(gateway.gateway.app, "GET", path, sign(f"http://gateway.test{path}", "GET", b"", real))
    assert status == 200
    # Under the stage, as in AWS (where the functions post: CONNECTIONS_ENDPOINT_URL names it); another: 403.
    assert gateway.gateway.environment.config.connections_endpoint_url == f"{gateway.url}/prod"
    staged = f"{gateway.url}/prod/@connections/{connection_id}"
    assert (await asyncio.to_thread(http_status, signed_request(staged, "GET")))[0] == 200
    other = f"{gateway.url}/beta/@connections/{connection_id}"
    status, headers, _ = await asyncio.to_thread(http_status, signed_request(other, "GET"))
    assert (status, headers.get("x-amzn-errortype")) == (403, "ForbiddenException")
    await sio.disconnect()


async def test_lambda_invoke_api_refuses_unsigned_and_forged_calls_and_serves_boto3(gateway):
    sio, connection_id = await connected(gateway)
    url = f"{gateway.url}/2015-03-31/functions/DisconnectFunction/invocations"
    event = json.dumps({"requestContext": {"connectionId": connection_id, "eventType": "DISCONNECT"}}).encode()
    unsigned = await asyncio.to_thread(http_status, urllib.request.Request(url, data=event, method="POST"))
    assert unsigned[0] == 403 and unsigned[1]["x-amzn-errortype"] == "UnrecognizedClientException"
    forged = boto3.client(
        "lambda",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        aws_access_key_id=own_credentials().access_key,
        aws_secret_access_key="guessed-secret",
        aws_session_token=own_credentials().token,
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        await asyncio.to_thread(forged.invoke, FunctionName="DisconnectFunction", Payload=event)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    stranger = await asgi(gateway.gateway.app, "POST", "/2015-03-31/functions/ConnectFunction/invocations", {}, event)
    assert stranger[0] == 403 and stranger[1]["x-amzn-errortype"] == "UnrecognizedClientException"
    assert await sio.call("analytics:joinDashboard", "still-here", timeout=10) == {"ok": True}  # its state survived
    genuine = boto3.client("lambda", endpoint_url=gateway.url, region_name="us-east-1")
    with pytest.raises(genuine.exceptions.ResourceNotFoundException):  # past the signature check
        await asyncio.to_thread(genuine.invoke, FunctionName="NoSuchFunction", Payload=b"{}")
    # A function that raises: Lambda's answer, with the exception as the Python runtime reports it.
    crashed = await asyncio.to_thread(genuine.invoke, FunctionName="DisconnectFunction", Payload=b"{}")
    failure = json.loads(crashed["Payload"].read())
    assert crashed["FunctionError"] == "Unhandled"
    assert (failure["errorType"], failure["errorMessage"]) == ("KeyError", "'connectionId'")
    assert "handlers/disconnect.py" in failure["stackTrace"][0]  # the function's frames, not the gateway's
    assert failure_payload(FunctionFailed("F"), 90) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 90.00 seconds",
    }
    # Each function runs with its own Timeout (FanoutWorkerFunction's 30 s), not the Globals' 10 s.
    functions = gateway.gateway.functions
    original = functions["FanoutWorkerFunction"]
    functions["FanoutWorkerFunction"] = lambda event, context: context.get_remaining_time_in_millis()
    try:
        answered = await asyncio.to_thread(genuine.invoke, FunctionName="FanoutWorkerFunction", Payload=b"{}")
    finally:
        functions["FanoutWorkerFunction"] = original
    assert 20_000 < json.loads(answered["Payload"].read()) <= 30_000
    await sio.disconnect()


async def test_the_functions_own_signed_calls_still_get_through(gateway):
    """LOCAL_POSTER=http (SignedPoster to /@connections) and the publisher's boto3 fan-out invocations."""
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    pushes: list[list] = [[] for _ in clients]
    for sio, seen in zip(clients, pushes, strict=True):
        sio.on("analytics:liveMetrics", seen.append)
        await sio.connect(gateway.url, transports=["websocket"], wait_timeout=10)
        assert await sio.call("analytics:subscribeLiveMetrics", timeout=10) == {"ok": True}
    await asyncio.sleep(1.5)  # several ticks, each fanned out in slices of one through FanoutWorkerFunction
    assert all(len(seen) >= 3 for seen in pushes)
    for sio in clients:
        await sio.disconnect()


async def test_dashboard_publishing_takes_json_from_this_machine_or_a_signed_request(gateway):
    sio, _ = await connected(gateway)
    updates: list = []
    sio.on("analytics:dashboardUpdate", updates.append)
    assert await sio.call("analytics:joinDashboard", "sales", timeout=10) == {"ok": True}
    url, body = f"{gateway.url}/dashboards/sales/updates", b'{"revenue": 1}'
    plain = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    assert (await asyncio.to_thread(http_status, plain))[0] == 415  # what a web page could send without preflight
    as_json = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    assert (await asyncio.to_thread(http_status, as_json))[0] == 202
    json_type = {"content-type": "application/json"}
    path, app = "/dashboards/sales/updates", gateway.gateway.app
    assert (await asgi(app, "POST", path, json_type, body))[0] == 403
    assert (await asgi(app, "POST", path, json_type, body, client=("::ffff:127.0.0.1", 1)))[0] == 202
    headers = sign(
        f"http://gateway.test{path}", "POST", body, own_credentials(), **{"Content-Type": "application/json"}
    )
    assert (await asgi(app, "POST", path, headers, body))[0] == 202
    await asyncio.sleep(0.3)
    assert len(updates) == 3
    await sio.disconnect()


async def test_metric_reports_take_json_from_this_machine_or_a_signed_request_as_dashboard_updates_do(gateway):
    """POST /metrics goes through the dashboard updates' guard: the same code, not a copy of it."""
    body, json_type = b'{"name": "Service API", "value": 1}', {"content-type": "application/json"}
    path, app = "/metrics", gateway.gateway.app
    plain = urllib.request.Request(
        f"{gateway.url}{path}", data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    assert (await asyncio.to_thread(http_status, plain))[0] == 415
    assert (await asgi(app, "POST", path, json_type, body))[0] == 403
    assert (await asgi(app, "POST", path, json_type, body, client=("::ffff:127.0.0.1", 1)))[0] == 202
    headers = sign(
        f"http://gateway.test{path}", "POST", body, own_credentials(), **{"Content-Type": "application/json"}
    )
    assert (await asgi(app, "POST", path, headers, body))[0] == 202
    big = b'{"name": "' + b"x" * 600_000 + b'", "value": 1}'
    assert (await asgi(app, "POST", path, json_type, big, client=("127.0.0.1", 1)))[0] == 413


def test_the_embedded_dynamodb_is_on_loopback_without_cors(gateway):
    endpoint = gateway.gateway.environment.config.dynamodb_endpoint_url
    assert endpoint.startswith("http://127.0.0.1:")
    preflight = urllib.request.Request(endpoint, method="OPTIONS", headers={"Origin": "https://evil.example"})
    assert http_status(preflight)[0] == 403
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        method="POST",
        headers={"Origin": "https://evil.example", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
    )
    _, headers, _ = http_status(request)
    assert not [name for name in headers if name.lower().startswith("access-control-")]


async def test_bodies_beyond_the_bound_are_answered_413_even_while_the_client_sends(gateway):
    big = b"[" + b"1," * 500_000 + b"1]"  # 1 MB: more than loopback buffers hold, so the client is still sending
    json_type = {"content-type": "application/json"}
    for path in ("/dashboards/sales/updates", "/2015-03-31/functions/ConnectFunction/invocations", "/@connections/x"):
        declared = await asgi(gateway.gateway.app, "POST", path, json_type, big, client=("127.0.0.1", 1))
        assert declared[0] == 413, path
        # Over the network the client is still sending when the answer comes: what is left is read and thrown
        # away, so that it hears the 413 rather than a reset. With a Content-Length, and without (chunked:
        # counted as it arrives).
        for data in (big, iter([big])):
            request = urllib.request.Request(f"{gateway.url}{path}", data=data, method="POST", headers=json_type)
            assert (await asyncio.to_thread(http_status, request))[0] == 413, path


def first_line_of_the_answer(port: int, head: str) -> str:
    """Send a request's head alone and read the status line the gateway answers with."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        return sock.makefile("rb").readline().decode().strip()


async def test_a_client_waiting_to_send_a_body_too_large_is_answered_413_without_being_asked_for_it(gateway):
    """`Expect: 100-continue` with a Content-Length beyond the bound: 413 at once, never "100 Continue" (which
    would ask for a body only to throw it away)."""
    head = (
        "POST /dashboards/sales/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 300000\r\nExpect: 100-continue\r\n\r\n"
    )
    first = await asyncio.to_thread(first_line_of_the_answer, gateway.port, head)
    assert first == "HTTP/1.1 413 Request Entity Too Large"
