"""The gateway as a user starts it: `python -m local_gateway`, its port, its DynamoDB, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import boto3
import jwt
import pytest
import socketio

from tests.support.servers import RunningGateway, free_port, polling_session, wait_for_health

ROOT = Path(__file__).resolve().parent.parent


async def subscribe_and_join(url: str) -> list:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    answers = [
        await client.call("analytics:subscribeLiveMetrics", timeout=10),
        await client.call("analytics:joinDashboard", "external", timeout=10),
    ]
    await client.disconnect()
    return answers


def test_gateway_process_listens_on_port_and_stops_cleanly_on_ctrl_c():
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_gateway"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}", process)
        assert health == {"status": "ok", "connections": 0, "dynamodb": "embedded moto"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.headers.get("server") is None  # no `server: uvicorn`
        assert asyncio.run(subscribe_and_join(f"http://127.0.0.1:{port}")) == [{"ok": True}] * 2
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Application shutdown complete" in output
    assert "connected (1 open)" in output and "disconnected (" in output
    assert "analytics:subscribeLiveMetrics" not in output  # at INFO, nothing per event (DEBUG writes it)
    assert "Traceback" not in output


def run_gateway_process(
    *clients: Callable[[str], Awaitable[None]],
    while_running: Callable[[subprocess.Popen[bytes]], None] | None = None,
    **environment: str,
) -> str:
    """Start `python -m local_gateway`, run the clients against it (then `while_running`, given the process), stop it
    with Ctrl-C: its whole output."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", **environment}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_gateway"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)
        for run in clients:
            asyncio.run(run(f"http://127.0.0.1:{port}"))
        if while_running is not None:
            while_running(process)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output.decode()


SECRET = "process-log-test-secret-long-enough-for-hs256"


async def connect_with_secrets_in_the_query(url: str) -> None:
    token = jwt.encode({"sub": "alice-secret-user", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    for transports in (["websocket"], ["polling", "websocket"]):  # (a polling-only client takes 30 s to leave)
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"{url}?token={token}&userId=bob-secret-user", transports=transports, wait_timeout=10)
        answer = await client.call("analytics:joinDashboard", "bad id!", timeout=10)
        assert answer["ok"] is False and answer["error"].startswith("dashboardId must be")
        await client.disconnect()


def test_no_query_string_nor_connection_id_reaches_the_gateway_output():
    output = run_gateway_process(connect_with_secrets_in_the_query, AUTH_JWT_SECRET=SECRET)
    assert '"WebSocket /socket.io/" [accepted]' in output  # uvicorn's own line, its query cut off
    assert "connected (" in output and "disconnected (" in output
    for secret in ("token=", "eyJ", "secret-user", "EIO=", "?"):
        assert secret not in output, secret
    # API Gateway connection ids (16 characters ending in '=') are DEBUG-only.
    assert not re.search(r"[A-Za-z0-9_-]{15}=", output)


def test_gateway_uses_the_dynamodb_endpoint_it_is_given(moto_endpoint):
    running = RunningGateway(DYNAMODB_ENDPOINT_URL=moto_endpoint, TABLE_NAME="external-table").start()
    try:
        client = socketio.AsyncClient(reconnection=False)

        async def join_and_look() -> list:
            await client.connect(running.url, transports=["websocket"], wait_timeout=10)
            assert await client.call("analytics:joinDashboard", "external", timeout=10) == {"ok": True}
            found = await asyncio.to_thread(members)
            await client.disconnect()
            return found

        def members() -> list:
            return dynamodb.query(
                TableName="external-table",
                KeyConditionExpression="PK = :room",
                ExpressionAttributeValues={":room": {"S": "ROOM#external"}},
            )["Items"]

        dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
        found = asyncio.run(join_and_look())
        assert len(found) == 2  # the membership and the room's own count item
    finally:
        running.stop()
    assert os.environ.get("DYNAMODB_ENDPOINT_URL") is None


def test_the_gateway_writes_nothing_to_the_process_environment_that_has_credentials():
    """Its functions' configuration is passed in; only credentials and a region are written where none are set
    (there are, here: conftest's)."""
    before = dict(os.environ)
    gateway = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    try:
        assert urllib.request.urlopen(f"{gateway.url}/health", timeout=10).status == 200
        assert dict(os.environ) == before
    finally:
        gateway.stop()
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    "environment",
    [
        {"PORT": "99999"},
        {"PORT": "0"},
        {"PORT": "80.5"},
        {"PORT": "http"},
        {"LOCAL_POSTER": "carrier-pigeon"},
        # The functions' own settings, read by shared/config.py: checked before the gateway serves.
        {"METRICS_INTERVAL_SECONDS": "abc"},
        {"METRICS_INTERVAL_SECONDS": "nan"},
        {"SOCKETIO_PING_INTERVAL_SECONDS": "0"},
        {"RATE_LIMIT_BURST": "-1"},
        {"METRICS_INTERVAL_SECONDS": "1e9"},
        {"DYNAMODB_ENDPOINT_URL": "notaurl"},
        {"AUTH_JWKS_URL": "notaurl"},
        {"CORS_ALLOWED_ORIGINS": "https://app.example/path"},
        {"CORS_ALLOWED_ORIGINS": "app.example"},
        {"GATEWAY_CPU": "seven"},
    ],
)
def test_bad_configuration_is_one_clear_line_and_a_non_zero_exit(environment):
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), **environment}
    finished = subprocess.run(
        [sys.executable, "-m", "local_gateway"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 2
    lines = (finished.stdout + finished.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("local_gateway: bad configuration: "), lines
    assert next(iter(environment)) in lines[0]


def raw_post(port: int, sid: str, headers: str, body: bytes) -> bytes:
    """Send a polling POST's head and the start of its body; what the gateway answers before it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):  # the gateway closes its end: recv ends (times out if it hangs)
            answer += chunk
    return answer


def test_an_oversized_polling_post_is_answered_413_and_shutdown_stays_bounded():
    import psutil

    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_gateway"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process)
        answer = raw_post(port, polling_session(url), "Content-Length: 200000\r\n", b"4" + b"x" * 1000)
        assert answer.startswith(b"HTTP/1.1 413 ")
        chunked = raw_post(port, polling_session(url), "Transfer-Encoding: chunked\r\n", b"3e8\r\n" + b"4" * 1000)
        assert chunked.startswith(b"HTTP/1.1 411 ")  # no length, no reading: a chunked body would be read whole
        time.sleep(0.5)
        gateway = psutil.Process(process.pid)
        assert [c for c in gateway.net_connections() if c.status == psutil.CONN_CLOSE_WAIT] == []
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.decode()
    assert stopped_in < 4, stopped_in  # nothing left hanging: no 5 s graceful-shutdown timeout
    assert "Application shutdown complete" in text and "Traceback" not in text


def run_to_exit(**environment: str) -> tuple[int, list[str], float]:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), **environment}
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "local_gateway"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return finished.returncode, (finished.stdout + finished.stderr).strip().splitlines(), time.monotonic() - started


def test_an_unreachable_dynamodb_endpoint_is_one_clear_line_and_a_non_zero_exit():
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    status, lines, took = run_to_exit(DYNAMODB_ENDPOINT_URL=endpoint)
    assert status == 1 and took < 20
    assert lines == [f"local_gateway: DynamoDB at {endpoint} does not answer (EndpointConnectionError)"]


def test_an_endpoint_that_is_not_dynamodb_is_named_by_its_answer():
    """Something answers there, and not as DynamoDB does: the line says what it answered, not "does not answer"."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, lines, _ = run_to_exit(DYNAMODB_ENDPOINT_URL=endpoint)
    finally:
        server.shutdown()
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith(
        f"local_gateway: DynamoDB at {endpoint} answered ListTables with 404"
    )


def test_the_start_line_is_a_url_to_open_and_says_whether_auth_is_on():
    output = run_gateway_process(AUTH_JWT_SECRET="short")
    (line,) = [line for line in output.splitlines() if "gateway on " in line]
    assert "gateway on http://127.0.0.1:" in line and "/ (auth on (HS256 tokens);" in line
    assert "AUTH_JWT_SECRET is 5 bytes: RFC 7518 asks for at least 32" in output
    assert "published:" not in output  # an idle publisher says nothing at INFO
    assert "(auth off;" in next(line for line in run_gateway_process().splitlines() if "gateway on " in line)


def test_the_gateway_says_it_is_on_only_once_its_port_is_bound():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, lines, _ = run_to_exit(PORT=str(port))
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith(f"local_gateway: cannot listen on 127.0.0.1:{port}: "), lines
