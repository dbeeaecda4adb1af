"""SIGTERM ends `python -m local_gateway` within 5 s, whatever a client has half sent or holds open."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port, polling_session, wait_for_health

ROOT = Path(__file__).resolve().parent.parent

HALF_SENT = {
    "a head": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ",
    "a dashboard update's body": (
        b"POST /dashboards/sales/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    ),
    "a Lambda Invoke body": (
        b"POST /2015-03-31/functions/ConnectFunction/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: 100\r\n\r\n{"
    ),
}


@pytest.mark.parametrize("what", [*HALF_SENT, "a polling POST's body"])
def test_sigterm_stops_the_gateway_within_5_s_whatever_is_half_sent(what):
    """The promise: a stop within 5 s whatever clients do. A request still being sent (REQUEST_TIMEOUT_SECONDS
    is longer than that) and a long poll held open must not make the shutdown wait for them."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_gateway"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    sockets = []
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process)
        sid = polling_session(url)
        with urllib.request.urlopen(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=5) as answer:
            assert answer.read().startswith(b"40{")  # the connect's answer read: the next poll waits
        if what in HALF_SENT:
            half = HALF_SENT[what]
        else:
            half = f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            half = (half + "Content-Length: 100\r\n\r\n4").encode()
        poll = f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        for data in (half, poll):  # and a long poll waiting for packets (Engine.IO holds it 25 s)
            sockets.append(socket.create_connection(("127.0.0.1", port)))
            sockets[-1].sendall(data)
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stopped_in < 5, stopped_in
    assert "Application shutdown complete" in output.decode() and "Traceback" not in output.decode()
