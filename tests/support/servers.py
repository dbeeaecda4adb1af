"""Running gateways and HTTP servers for tests: free ports, raw requests, polling until a condition holds."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

SERVER_POLL_SECONDS = 0.02  # how often a test HTTP server looks for shutdown (http.server: 0.5 s)


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
            cwd=Path(__file__).resolve().parents[2],
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


async def until(condition: Any, timeout: float = 15.0) -> None:
    """Poll `condition` until it holds; AssertionError when it has not within `timeout` seconds."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def replaced_routes(endpoint: Any, replacements: dict[str, Any]) -> Iterator[None]:
    """An endpoint's routes replaced for a while (a test's stand-ins for the functions); all of them as they were
    afterwards, whatever the test changed meanwhile."""
    originals = dict(endpoint.routes)
    endpoint.routes.update(replacements)
    try:
        yield
    finally:
        endpoint.routes.update(originals)


async def engineio_session(gateway: RunningGateway, headers: dict[str, str] | None = None) -> Any:
    """An Engine.IO session over WebSocket (a `websockets` client), its open packet read: no Socket.IO
    connection (yet)."""
    import asyncio

    import websockets

    url = gateway.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url, additional_headers=headers)
    assert str(await asyncio.wait_for(ws.recv(), 5)).startswith("0{")
    return ws
