"""Test helpers: sample events, a Management API endpoint that can answer 410, a running gateway."""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

EVENTS = Path(__file__).parent / "events"
SERVER_POLL_SECONDS = 0.02  # how often a test HTTP server looks for shutdown (http.server: 0.5 s)


def load_event(name: str, connection_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A sample event from tests/events/, with its connection id and any top-level fields replaced."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    if "detail-type" in event:  # EventBridge gives every event an id of its own (the same only when redelivered)
        event["id"] = str(uuid.uuid4())
    if connection_id is not None:
        event["requestContext"]["connectionId"] = connection_id
    event.update(changes)
    return event


def connect_event(connection_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    return load_event("connect", connection_id, queryStringParameters=query)


def message_event(connection_id: str, action: str, *data: Any, body: str | None = None) -> dict[str, Any]:
    event = load_event("message", connection_id)
    frame: dict[str, Any] = {"action": action}
    if data:
        frame["data"] = data[0]
    event["body"] = json.dumps(frame) if body is None else body
    event["requestContext"]["routeKey"] = action
    return event


def disconnect_event(connection_id: str) -> dict[str, Any]:
    return load_event("disconnect", connection_id)


def connection_rooms(svc: Any, connection_id: str) -> list[str]:
    """The dashboards a connection is in, read straight from the ByConnection index (the product never asks)."""
    from shared.table import BY_CONNECTION_INDEX, connection_key

    pages = svc.table.client.get_paginator("query").paginate(
        TableName=svc.config.table_name,
        IndexName=BY_CONNECTION_INDEX,
        KeyConditionExpression="SK = :key",
        ExpressionAttributeValues={":key": {"S": connection_key(connection_id)}},
    )
    pks = [item["PK"]["S"] for page in pages for item in page.get("Items", [])]
    return sorted(pk.removeprefix("ROOM#") for pk in pks if pk.startswith("ROOM#"))


SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    """A JWT for `$connect`'s `token` query parameter: alice's, for ten minutes, HS256 with SECRET unless told."""
    import jwt

    body = {"sub": "alice", "exp": int(time.time()) + 600, **(claims or {})}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers or None)


def signed_request(
    url: str, method: str = "GET", data: bytes | None = None, service: str = "execute-api", **headers: str
) -> Any:
    """A urllib request SigV4-signed as boto3 signs, with this process's credentials (those the gateway gives
    its functions, since a RunningGateway shares the environment)."""
    import urllib.request

    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    credentials = boto3.session.Session().get_credentials()
    SigV4Auth(credentials.get_frozen_credentials(), service, "us-east-1").add_auth(request)
    return urllib.request.Request(url, data=data, method=method, headers=dict(request.headers.items()))


def http_status(request: Any, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lowercased) and body of a urllib request, error statuses included."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def invoke_function(gateway_url: str, function: str, event: dict[str, Any]) -> dict[str, Any]:
    """A function of template.yaml run by a gateway, through its Lambda Invoke API, signed as the functions sign
    (with this process's credentials, which a RunningGateway shares): how a test forges a `$connect` without a
    socket, as a `$connect` whose client never stayed."""
    import boto3

    client = boto3.client("lambda", endpoint_url=gateway_url, region_name="us-east-1")
    payload = client.invoke(FunctionName=function, Payload=json.dumps(event))["Payload"].read()
    answer: dict[str, Any] = json.loads(payload)
    return answer


def first_line(port: int, request: bytes, timeout: float = 5.0) -> str:
    """Send raw bytes (a request as a client of our choosing writes it) and read the status line answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.makefile("rb").readline().decode("latin-1").strip()


def upgrade_request(path: str, host: str, *extra: str) -> bytes:
    """A WebSocket upgrade request's head, raw: the Host and any other header as given."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BackloggedHTTPServer(ThreadingHTTPServer):
    """A fan-out opens dozens of connections at once; the default backlog of 5 would drop most of them."""

    request_queue_size = 256


class ManagementApiEndpoint:
    """`POST/GET/DELETE /@connections/{id}` over real HTTP: records frames, answers 410 for `gone` ids and the
    status in `failing` for failing ones."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)  # the JSON-object frames, parsed
        self.raw: dict[str, list[bytes]] = defaultdict(list)  # every frame delivered (Socket.IO too), as posted
        self.gone: set[str] = set()
        self.failing: dict[str, int] = {}  # connection id -> status to answer (429, 500, ...)
        self.requests = 0
        # Every (method, path) served, in order, whatever client library made the request.
        self.served: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _connection(self) -> str:
                return unquote(self.path.rsplit("/@connections/", 1)[1])

            def _answer(self, status: int, error_type: str | None = None) -> None:
                body = json.dumps({"message": error_type or ""}).encode() if error_type else b""
                self.send_response(status)
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("POST", self.path))
                connection_id = self._connection()
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._lock:
                    endpoint.requests += 1
                    if connection_id in endpoint.gone:
                        return self._answer(410, "GoneException")
                    if connection_id in endpoint.failing:
                        status = endpoint.failing[connection_id]
                        # API Gateway's own throttling answer is 429 LimitExceededException.
                        return self._answer(
                            status, "LimitExceededException" if status == 429 else "InternalServerError"
                        )
                    endpoint.raw[connection_id].append(data)
                    try:
                        parsed = json.loads(data)
                    except ValueError:
                        parsed = None  # a Socket.IO frame such as `0{...}` or `42[...]`
                    if isinstance(parsed, dict):
                        endpoint.frames[connection_id].append(parsed)
                self._answer(200)

            def do_GET(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("GET", self.path))
                    connection_id = self._connection()
                    if connection_id in endpoint.gone:
                        return self._answer(410, "GoneException")
                    status = endpoint.failing.get(connection_id, 200)
                if status != 200:
                    return self._answer(status, "ForbiddenException" if status == 403 else "InternalServerError")
                body = json.dumps({"connectedAt": "2026-11-25T10:00:00.000Z", "identity": {"sourceIp": "127.0.0.1"}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_DELETE(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("DELETE", self.path))
                    endpoint.gone.add(self._connection())
                self._answer(204)

        self._server = BackloggedHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll: shutdown() waits for it, once per test (the default 0.5 s cost the suite about a minute).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(SERVER_POLL_SECONDS,), daemon=True)

    def start(self) -> ManagementApiEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self, connection_id: str, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            frames = list(self.frames.get(connection_id, []))
        return [f for f in frames if name is None or f["event"] == name]

    def raw_frames(self, connection_id: str) -> list[str]:
        """Every body posted to the connection, as text, in order."""
        with self._lock:
            return [body.decode() for body in self.raw.get(connection_id, [])]

    def asked(self, connection_id: str | None = None) -> list[str]:
        """The ids of every `GET /@connections/{id}` (only those of `connection_id`, when given), in order."""
        with self._lock:
            paths = [unquote(path) for method, path in self.served if method == "GET"]
        ids = [path.rsplit("/@connections/", 1)[1] for path in paths]
        return [cid for cid in ids if connection_id is None or cid == connection_id]

    def closed(self, connection_id: str) -> bool:
        """Whether `DELETE /@connections/{id}` was asked for."""
        with self._lock:
            deletes = [unquote(path) for method, path in self.served if method == "DELETE"]
        return any(path.endswith(f"/@connections/{connection_id}") for path in deletes)


@contextlib.contextmanager
def running_gateway(**environment: str) -> Iterator[RunningGateway]:
    """A gateway for one test: started with these settings, always stopped."""
    gateway = RunningGateway(**environment).start()
    try:
        yield gateway
    finally:
        gateway.stop()


class RunningGateway:
    """The real gateway under uvicorn in a thread, on a free loopback port, with a table of its own (moto's
    state is the process's: gateways started one after another would otherwise share one table)."""

    def __init__(self, **environment: str) -> None:
        self.environment = {"TABLE_NAME": f"gateway-{uuid.uuid4().hex[:12]}", **environment}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: Any = None

    def start(self) -> RunningGateway:
        import os

        import uvicorn

        from local_gateway.app import Gateway
        from local_gateway.serving import server_config
        from local_gateway.settings import GatewaySettings

        # Configuration passed in, as `python -m local_gateway` passes the process environment: nothing written.
        environ = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **self.environment}
        settings = GatewaySettings.from_env(environ)
        self.gateway = Gateway(settings, environ=environ)
        # Served as `python -m local_gateway` serves it (local_gateway/serving.py), less talkative.
        self._server = uvicorn.Server(server_config(self.gateway.app, settings, log_level="warning"))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def _run(self) -> None:
        import asyncio

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()  # for stop() to tell what a stop that hangs waits on
            await self._server.serve()

        # The loop uvicorn's own run() would make (uvloop where installed).
        with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
            runner.run(serve())

    def stop(self) -> None:
        if self._thread is None:
            raise RuntimeError("the gateway was not started")
        self._server.should_exit = True
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            raise RuntimeError(f"the gateway did not stop within 60 s; its tasks:\n{self._tasks()}")

    def _tasks(self) -> str:
        import asyncio
        import io

        described = io.StringIO()
        for task in list(asyncio.all_tasks(self._loop)):  # read from another thread: a diagnosis, not a result
            task.print_stack(limit=8, file=described)
        return described.getvalue()


class LambdaEndpoint:
    """Lambda's Invoke API over real HTTP: records each payload and answers as Lambda does (202 for Event)."""

    def __init__(self) -> None:
        self.invocations: list[tuple[str, str, dict[str, Any]]] = []  # (function, invocation type, payload)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                function = unquote(self.path.split("/functions/", 1)[1].split("/", 1)[0])
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                endpoint.invocations.append((function, kind, payload))
                self.send_response(202 if kind == "Event" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(SERVER_POLL_SECONDS,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for_health(url: str, process: Any, timeout: float = 30) -> dict[str, Any]:
    """/health's answer from a gateway process once it answers; AssertionError if the process ends first."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the gateway did not answer /health")


def polling_session(url: str) -> str:
    """A Socket.IO session over Engine.IO polling, connected to the main namespace: its sid."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/socket.io/?EIO=4&transport=polling", timeout=5) as response:
        sid: str = json.loads(response.read().decode()[1:])["sid"]
    connect = urllib.request.Request(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}", data=b"40")
    urllib.request.urlopen(connect, timeout=5).read()
    return sid


class GatewayProcess:
    """`python -m local_gateway` in a process of its own (its environment is process-global), on a free port."""

    def __init__(self, **environment: str) -> None:
        self.environment = {"PORT": str(free_port()), "HOST": "127.0.0.1", **environment}
        self.url = f"http://127.0.0.1:{self.environment['PORT']}"
        self.process: Any = None

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        import os
        import subprocess
        import sys
        import urllib.request

        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway"],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **self.environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/socket.io/?EIO=4&transport=polling", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the gateway did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# -- the contract as published: asyncapi.yaml ---------------------------------------------------------------
ASYNCAPI = Path(__file__).resolve().parent.parent / "asyncapi.yaml"
ASYNCAPI_URI = "urn:analytics:asyncapi"


def asyncapi_document() -> dict[str, Any]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return document


class ContractValidator:
    """Validates what the server sent against asyncapi.yaml's schemas; raises AssertionError on a mismatch.

    `validate(event, payload)` for a Socket.IO event (its message `name`) or `"ack"`; `validate.frame(frame)` for a
    JSON frame of the deployed API (a server frame `{"event", "data"}` or an ack)."""

    def __init__(self, document: dict[str, Any]) -> None:
        import jsonschema
        from referencing import Registry
        from referencing.jsonschema import DRAFT7

        registry: Registry[Any] = Registry().with_resource(ASYNCAPI_URI, DRAFT7.create_resource(document))
        messages = document["components"]["messages"]
        sent = [
            ref["$ref"].rsplit("/", 1)[1]
            for operation in document["operations"].values()
            if operation["action"] == "send" and operation["channel"]["$ref"] == "#/channels/socketio"
            for ref in operation["messages"]
        ]
        self.server_events = [messages[key]["name"] for key in sent]  # in the document's order
        self.payloads = {messages[key]["name"]: key for key in [*sent, "ack"]}

        def validator(pointer: str) -> Any:
            return jsonschema.Draft7Validator({"$ref": f"{ASYNCAPI_URI}#{pointer}"}, registry=registry)

        self._events = {name: validator(f"/components/messages/{key}/payload") for name, key in self.payloads.items()}
        self._frame = validator("/components/schemas/ServerFrame")
        self._ack = validator("/components/schemas/Ack")
        self._offset = validator("/components/schemas/Offset")
        self._session = validator("/components/schemas/SessionId")

    @staticmethod
    def _check(validator: Any, what: str, payload: Any) -> None:
        errors = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
        if errors:
            details = "; ".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
            raise AssertionError(f"{what} does not match asyncapi.yaml: {details}\n{json.dumps(payload)[:500]}")

    def __call__(self, event: str, payload: Any) -> None:
        if event not in self._events:
            raise AssertionError(f"{event!r} is neither a server event of asyncapi.yaml nor an ack")
        self._check(self._events[event], event, payload)

    def socketio_event(self, event: str, *args: Any) -> None:
        """A Socket.IO event as a client received it: its payload, and a dashboard update's offset after it."""
        self(event, args[0])
        extra = args[1:]
        if event == "analytics:dashboardUpdate" and extra:
            (offset,) = extra
            self._check(self._offset, "offset", offset)
        elif extra:
            raise AssertionError(f"{event} came with more arguments than its payload: {extra!r}")

    def session(self, session: Any) -> None:
        self._check(self._session, "session id", session)

    def frame(self, frame: Any) -> None:
        """A JSON frame the deployed API sent: an ack (the route response) or a server event."""
        if isinstance(frame, dict) and "ok" in frame:
            self._check(self._ack, "ack frame", frame)
        else:
            self._check(self._frame, "server frame", frame)


_contract: ContractValidator | None = None


def contract_validator() -> ContractValidator:
    """The validator of asyncapi.yaml's schemas, built once."""
    global _contract
    if _contract is None:
        _contract = ContractValidator(asyncapi_document())
    return _contract


async def until(condition: Any, timeout: float = 15.0) -> None:
    """Poll `condition` until it holds; AssertionError when it has not within `timeout` seconds."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def as_dynamodb_lists_them(request: dict, moto_answer: dict, engine_answer: dict) -> dict:
    """An UpdateItem's UPDATED_OLD or UPDATED_NEW answer from moto, mended where DynamoDB answers otherwise:
    DynamoDB lists every attribute the update names, moto only those whose value changed (and the keys of an
    item the update creates). What moto listed must be in the engine's answer, and the engine's answer may list
    nothing the update does not name; then the engine's answer is DynamoDB's."""
    from local_gateway.dynamodb.updates import compile_expressions

    names = tuple(sorted(request.get("ExpressionAttributeNames", {}).items()))
    named = set(compile_expressions(None, request["UpdateExpression"], None, names).changes or ())
    moto_listed = {name: value for name, value in moto_answer.get("Attributes", {}).items() if name in named}
    assert moto_listed.items() <= engine_answer.get("Attributes", {}).items()
    assert set(engine_answer.get("Attributes", {})) <= named
    return (
        {**moto_answer, **engine_answer}
        if "Attributes" in engine_answer
        else {name: value for name, value in moto_answer.items() if name != "Attributes"}
    )


@contextlib.contextmanager
def replaced_routes(front: Any, replacements: dict[str, Any]) -> Iterator[None]:
    """A front's routes replaced for a while (a test's stand-ins for the functions); all of them as they were
    afterwards, whatever the test changed meanwhile."""
    originals = dict(front.routes)
    front.routes.update(replacements)
    try:
        yield
    finally:
        front.routes.update(originals)


async def engineio_session(gateway: RunningGateway, headers: dict[str, str] | None = None) -> Any:
    """An Engine.IO session over WebSocket (a `websockets` client), its open packet read: no Socket.IO
    connection (yet)."""
    import asyncio

    import websockets

    url = gateway.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url, additional_headers=headers)
    assert str(await asyncio.wait_for(ws.recv(), 5)).startswith("0{")
    return ws


def cloudwatch_metrics(endpoint_url: str, cpu: float, memory: float, age_seconds: float = 90) -> dict[str, str]:
    """CPU and memory datapoints of a service of its own (its dimension values are new) in the CloudWatch at
    `endpoint_url` (moto's), `age_seconds` old; the settings that point SYSTEM_METRICS_SOURCE=cloudwatch at them."""
    from datetime import UTC, datetime, timedelta

    import boto3

    service = f"web-{uuid.uuid4().hex[:8]}"
    dimensions = [{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": service}]
    at = datetime.now(UTC) - timedelta(seconds=age_seconds)
    client = boto3.session.Session().client("cloudwatch", endpoint_url=endpoint_url, region_name="us-east-1")
    client.put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Percent", "Timestamp": at}
            for name, value in (("CPUUtilization", cpu), ("MemoryUtilization", memory))
        ],
    )
    return {
        "SYSTEM_METRICS_SOURCE": "cloudwatch",
        "SYSTEM_METRICS_NAMESPACE": "AWS/ECS",
        "SYSTEM_METRICS_DIMENSIONS": f"ClusterName=prod,ServiceName={service}",
        "CLOUDWATCH_ENDPOINT_URL": endpoint_url,
    }
