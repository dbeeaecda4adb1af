"""The embedded DynamoDB's HTTP port serves DynamoDB's API alone, to this machine's names, and a slow client
holds no lock: the functions (the direct transport) and other tools are served meanwhile."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import botocore.parsers
import pytest

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
from local_gateway.template import template
from tests.support.servers import first_line, http_status

LIST_TABLES = "X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Type: application/x-amz-json-1.0\r\n"


@pytest.fixture
def dynamodb() -> Iterator[EmbeddedDynamoDB]:
    """An embedded DynamoDB of its own (its bounds set short), with a table."""
    embedded = EmbeddedDynamoDB(request_seconds=1.0, max_clients=4)
    embedded.start()
    ensure_table(embedded.client(), f"port-{uuid.uuid4().hex[:8]}", template())
    yield embedded
    embedded.stop()


def list_tables(host: str) -> bytes:
    """A ListTables request naming `host` (a raw head: any Host header, or two)."""
    return f"POST / HTTP/1.1\r\nHost: {host}\r\n{LIST_TABLES}Content-Length: 2\r\n\r\n{{}}".encode()


def port_of(embedded: EmbeddedDynamoDB) -> int:
    return int(urlsplit(embedded.endpoint_url).port or 0)


def tables_through(endpoint: str) -> list[str]:
    client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint)
    return list(client.list_tables()["TableNames"])


def in_time(call, seconds: float = 3.0) -> bool:
    """Whether `call` returns within `seconds` (in a thread left behind if not)."""
    done = threading.Event()
    threading.Thread(target=lambda: (call(), done.set()), daemon=True).start()
    return done.wait(seconds)


def test_moto_api_and_other_services_are_not_served(dynamodb):
    before = tables_through(dynamodb.endpoint_url)
    assert before
    reset = urllib.request.Request(f"{dynamodb.endpoint_url}/moto-api/reset", data=b"", method="POST")
    assert http_status(reset)[0] == 404
    assert tables_through(dynamodb.endpoint_url) == before  # nothing was reset
    for path in ("/moto-api/", "/moto-api/data.json", "/latest/meta-data/"):
        assert http_status(urllib.request.Request(f"{dynamodb.endpoint_url}{path}"))[0] == 404, path
    for service, call in (("s3", "list_buckets"), ("sqs", "list_queues"), ("sts", "get_caller_identity")):
        client = boto3.session.Session().client(service, endpoint_url=dynamodb.endpoint_url, region_name="us-east-1")
        with pytest.raises((botocore.exceptions.ClientError, botocore.parsers.ResponseParserError)):
            getattr(client, call)()  # refused: DynamoDB's error shape, which other services cannot even parse
    streams = urllib.request.Request(
        dynamodb.endpoint_url,
        data=b"{}",
        method="POST",
        headers={"X-Amz-Target": "DynamoDBStreams_20120810.ListStreams"},
    )
    assert http_status(streams)[0] == 400


def test_a_body_still_arriving_holds_no_lock_and_is_dropped_at_the_deadline(dynamodb):
    port = port_of(dynamodb)
    slow = socket.create_connection(("127.0.0.1", port))
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{LIST_TABLES}Content-Length: 100\r\n\r\n{{"
        slow.sendall(head.encode())
        time.sleep(0.2)  # its head is read, its body is awaited
        # The functions' transport and another tool are both served while it sends.
        assert in_time(lambda: dynamodb.client().list_tables())
        assert in_time(lambda: tables_through(dynamodb.endpoint_url))
        # Within the deadline (1 s here) plus a margin, both the slow sender and the idle socket are dropped.
        for sock in (slow, idle):
            sock.settimeout(5)
            assert sock.recv(1024) == b""
    finally:
        slow.close()
        idle.close()


def test_a_request_dripping_its_head_is_dropped_at_the_deadline_too(dynamodb):
    port = port_of(dynamodb)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        try:
            for byte in b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n":
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # dropped while still sending: what is wanted
        assert sock.recv(1024) == b""
    assert time.monotonic() - started < 4


def test_connections_beyond_the_bound_are_closed_at_once(dynamodb):
    port = port_of(dynamodb)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as beyond:
            assert beyond.recv(1024) == b""  # closed before the others' deadline (1 s) could free a place
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert tables_through(dynamodb.endpoint_url)  # places given back


def test_only_the_machines_own_names_are_served(dynamodb):
    port = port_of(dynamodb)
    assert first_line(port, list_tables(f"rebound.attacker.example:{port}")).startswith("HTTP/1.1 421 ")
    assert first_line(port, list_tables(f"127.0.0.1:{port}\r\nHost: evil.example")).startswith("HTTP/1.1 421 ")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert first_line(port, list_tables(host)) == "HTTP/1.1 200 OK", host


def test_a_body_without_a_length_or_too_large_is_refused_before_it_is_read(dynamodb):
    port = port_of(dynamodb)
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{LIST_TABLES}"
    chunked = f"{head}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    assert first_line(port, chunked.encode()).startswith("HTTP/1.1 411 ")
    huge = f"{head}Content-Length: 99999999\r\n\r\n{{"
    assert first_line(port, huge.encode()).startswith("HTTP/1.1 413 ")


def test_the_gateways_dynamodb_port_answers_only_to_this_machines_names(gateway):
    endpoint = gateway.gateway.environment.config.dynamodb_endpoint_url
    port = int(urlsplit(endpoint).port or 0)
    assert first_line(port, list_tables("rebound.attacker.example")).startswith("HTTP/1.1 421 ")
    assert first_line(port, list_tables(f"localhost:{port}")) == "HTTP/1.1 200 OK"
