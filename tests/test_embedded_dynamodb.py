"""The embedded DynamoDB's two doors: the functions' client served by moto in-process, and moto's HTTP server for
outside tools, both on the same tables and one request at a time."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest

from local_gateway.dynamodb import EmbeddedDynamoDB, ensure_table
from local_gateway.template import template


def _item(name: str) -> dict:
    return {"PK": {"S": name}, "SK": {"S": name}}


def test_the_functions_client_needs_no_server_and_shares_the_tables_with_the_http_door():
    embedded = EmbeddedDynamoDB()
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    client = embedded.client()  # before any server exists: nothing listens anywhere yet
    assert ensure_table(client, table, template())
    client.put_item(TableName=table, Item=_item("written-in-process"))
    endpoint = embedded.start()
    try:
        outside = boto3.session.Session().client("dynamodb", endpoint_url=endpoint)
        assert outside.get_item(TableName=table, Key=_item("written-in-process"))["Item"]["PK"]["S"]
        outside.put_item(TableName=table, Item=_item("written-over-http"))
        assert client.get_item(TableName=table, Key=_item("written-over-http"))["Item"]
    finally:
        embedded.stop()


def test_the_in_process_door_answers_dynamodb_errors_as_dynamodb_does():
    client = EmbeddedDynamoDB().client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_item(TableName=f"missing-{uuid.uuid4().hex[:8]}", Key=_item("x"))


def test_both_doors_take_one_request_at_a_time():
    """The one lock: a request through either door waits while the other holds moto."""
    embedded = EmbeddedDynamoDB()
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    client = embedded.client()
    ensure_table(client, table, template())
    endpoint = embedded.start()
    try:
        outside = boto3.session.Session().client("dynamodb", endpoint_url=endpoint)
        done = threading.Event()
        with embedded.lock:  # held as a request through the other door would hold it
            for door in (client, outside):
                done.clear()
                worker = threading.Thread(
                    target=lambda door=door: (door.describe_table(TableName=table), done.set()), daemon=True
                )
                worker.start()
                assert not done.wait(0.5), "a request got through while moto was busy"
                embedded.lock.release()
                try:
                    assert done.wait(10)
                finally:
                    embedded.lock.acquire()
                worker.join()
    finally:
        embedded.stop()


def test_the_gateway_functions_use_the_in_process_door(gateway):
    environment = gateway.gateway.environment
    functions_client = environment.dynamodb
    assert "amazonaws.com" in functions_client.meta.endpoint_url  # AWS's name, answered before any connection
    assert environment.config.dynamodb_endpoint_url.startswith("http://127.0.0.1:")  # the door for others


def test_a_request_another_hook_answers_is_never_run_by_moto():
    """botocore runs every `before-send` hook and takes the first answer: an injected fault must leave no trace."""
    from tests.faults import DynamoDBFaults

    client = EmbeddedDynamoDB().client()
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    ensure_table(client, table, template())
    faults = DynamoDBFaults(client)
    faults.fail("PutItem", code="ValidationException")
    with pytest.raises(client.exceptions.ClientError):
        client.put_item(TableName=table, Item=_item("refused"))
    faults.close()
    assert "Item" not in client.get_item(TableName=table, Key=_item("refused"))
