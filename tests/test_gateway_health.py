"""`/health` tells the truth about DynamoDB without echoing internals; the publisher logs an outage once."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from shared import clients
from tests.support.servers import RunningGateway, free_port


class SwitchableProxy:
    """A TCP forwarder to DynamoDB that can be taken down (connections refused) and brought back, same port."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[1].split(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with _quiet():
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone would not
            listener.close()
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            with _quiet():
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with _quiet():
            while data := source.recv(65536):
                sink.sendall(data)
        with _quiet():
            sink.shutdown(socket.SHUT_WR)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_health_answers_503_while_dynamodb_is_down_and_the_publisher_logs_the_outage_once(
    moto_endpoint, caplog, monkeypatch
):
    # Outages are what retries are for; here they would only make each tick last the function's timeout.
    monkeypatch.setitem(clients.RETRIES, "max_attempts", 0)
    caplog.set_level(logging.INFO)
    proxy = SwitchableProxy(moto_endpoint)
    proxy.up()
    table = f"health-{uuid.uuid4().hex[:8]}"
    gateway = RunningGateway(DYNAMODB_ENDPOINT_URL=proxy.url, TABLE_NAME=table, METRICS_INTERVAL_SECONDS="0.1")
    gateway.start()
    try:
        status, body = health(gateway.url)
        assert (status, body) == (200, {"status": "ok", "connections": 0, "dynamodb": "external endpoint"})
        proxy.down()
        status, body = health(gateway.url)
        assert status == 503
        assert body == {
            "status": "unavailable",
            "connections": 0,
            "dynamodb": "external endpoint",
            "reason": "DynamoDB does not answer",
        }
        text = json.dumps(body)
        for internal in (str(proxy.port), table, "127.0.0.1", "http"):
            assert internal not in text
        time.sleep(1.5)  # about 15 ticks of the publisher, every one failing
        proxy.up()
        wait_until(lambda: any("publisher recovered" in r.getMessage() for r in caplog.records))
        assert health(gateway.url)[0] == 200
    finally:
        gateway.stop()
        proxy.down()
    gateway_lines = [r for r in caplog.records if r.name.startswith("local_gateway")]
    outage = [r.getMessage() for r in gateway_lines if r.levelno >= logging.WARNING]
    assert len(outage) == 2, outage
    assert outage[0].startswith("publisher failing (") and outage[0].endswith("): no pushes until it recovers")
    assert outage[1] == "publisher recovered: pushes resume"
    assert not any(r.exc_info for r in caplog.records)


def test_health_says_when_the_table_is_missing(moto_endpoint):
    import boto3

    table = f"health-{uuid.uuid4().hex[:8]}"
    gateway = RunningGateway(DYNAMODB_ENDPOINT_URL=moto_endpoint, TABLE_NAME=table).start()
    try:
        boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1").delete_table(TableName=table)
        status, body = health(gateway.url)
    finally:
        gateway.stop()
    assert status == 503 and body["reason"] == "the table is missing" and table not in json.dumps(body)
