"""The embedded DynamoDB's transports: the functions' client served by moto in-process (the direct transport, and
the wire transport through botocore's whole send path), and moto's HTTP server for outside tools, all on the same
tables and one request at a time."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
from local_gateway.dynamodb.item_engine import OPERATIONS as ENGINE_OPERATIONS
from local_gateway.dynamodb.moto_transports import DIRECT_OPERATIONS
from local_gateway.settings import GatewaySettings
from local_gateway.template import template
from shared.env_values import ConfigError
from tests.faults import through_direct_transport
from tests.support.dynamodb import as_dynamodb_lists_them


def _item(name: str) -> dict:
    return {"PK": {"S": name}, "SK": {"S": name}}


def test_the_functions_client_needs_no_server_and_shares_the_tables_with_the_http_port():
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


@pytest.mark.parametrize("transport", ["client", "wire_client"])
def test_the_in_process_transports_answer_dynamodb_errors_as_dynamodb_does(transport):
    client = getattr(EmbeddedDynamoDB(), transport)()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_item(TableName=f"missing-{uuid.uuid4().hex[:8]}", Key=_item("x"))
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    ensure_table(client, table, template())
    client.put_item(TableName=table, Item={**_item("x"), "n": {"N": "1"}})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as refused:
        client.put_item(
            TableName=table,
            Item=_item("x"),
            ConditionExpression="attribute_not_exists(PK)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert refused.value.response["Item"]["n"] == {"N": "1"}  # the error's modeled fields, parsed by botocore
    with pytest.raises(ParamValidationError):  # botocore still checks every request against the service model
        client.put_item(TableName=table, Item={"PK": "not an attribute value"})


def test_both_transports_take_one_request_at_a_time():
    """The one lock: a request through either transport waits while the other holds moto."""
    embedded = EmbeddedDynamoDB()
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    client = embedded.client()
    ensure_table(client, table, template())
    endpoint = embedded.start()
    try:
        outside = boto3.session.Session().client("dynamodb", endpoint_url=endpoint)
        done = threading.Event()
        with embedded.lock:  # held as a request through another transport would hold it
            for way_in in (client, embedded.wire_client(), outside):
                done.clear()
                worker = threading.Thread(
                    target=lambda way_in=way_in: (way_in.get_item(TableName=table, Key=_item("x")), done.set()),
                    daemon=True,
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


def test_the_gateway_functions_use_the_direct_transport(gateway):
    environment = gateway.gateway.environment
    functions_client = environment.dynamodb
    assert through_direct_transport(functions_client)
    assert "amazonaws.com" in functions_client.meta.endpoint_url  # AWS's name, answered before any connection
    assert environment.config.dynamodb_endpoint_url.startswith("http://127.0.0.1:")  # the HTTP port, for others


def test_a_request_another_hook_answers_is_never_run_by_moto():
    """botocore runs every `before-send` hook and takes the first answer: an injected fault must leave no trace."""
    from tests.faults import DynamoDBFaults

    client = EmbeddedDynamoDB().wire_client()
    table = f"embedded-{uuid.uuid4().hex[:8]}"
    ensure_table(client, table, template())
    faults = DynamoDBFaults(client)
    faults.fail("PutItem", code="ValidationException")
    with pytest.raises(client.exceptions.ClientError):
        client.put_item(TableName=table, Item=_item("refused"))
    faults.close()
    assert "Item" not in client.get_item(TableName=table, Key=_item("refused"))


EVERY_TYPE = {
    "s": {"S": "text"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"B": b"\x03"}, "flag": {"BOOL": True}}},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"B": b"\x04"}]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
}


def _normalized(item: dict) -> dict:
    """Sets compared as sets (DynamoDB keeps no order in them)."""
    return {
        name: {kind: sorted(value) if kind in ("SS", "NS", "BS") else value for kind, value in attribute.items()}
        for name, attribute in item.items()
    }


def test_every_attribute_type_reads_back_the_same_through_every_transport():
    """Written through one way in, each item reads back the same through all three: binary values as bytes
    (moto stores them decoded, whichever way they came in), sets, maps, lists, NULL and BOOL."""
    embedded = EmbeddedDynamoDB()
    endpoint = embedded.start()
    try:
        clients = {
            "direct": embedded.client(),
            "wire": embedded.wire_client(),
            "http": boto3.session.Session().client("dynamodb", endpoint_url=endpoint),
        }
        table = f"types-{uuid.uuid4().hex[:8]}"
        ensure_table(clients["direct"], table, template())
        for writer, client in clients.items():
            client.put_item(TableName=table, Item={**_item(writer), **EVERY_TYPE})
        for reader, client in clients.items():
            for writer in clients:
                read = client.get_item(TableName=table, Key=_item(writer), ConsistentRead=True)["Item"]
                assert _normalized(read) == _normalized({**_item(writer), **EVERY_TYPE}), (writer, reader)
            found = client.query(
                TableName=table,
                KeyConditionExpression="PK = :pk",
                FilterExpression="b = :b",
                ExpressionAttributeValues={":pk": {"S": "direct"}, ":b": EVERY_TYPE["b"]},
            )
            assert found["Count"] == 1, reader  # the stored bytes compare equal to the bytes asked for
    finally:
        embedded.stop()


@pytest.mark.parametrize(("value", "on"), [(None, True), ("", True), ("on", True), ("OFF", False), (" off ", False)])
def test_the_fast_path_setting_reads_on_or_off(value, on):
    environ = {} if value is None else {"EMBEDDED_DYNAMODB_FAST_PATH": value}
    assert GatewaySettings.from_env(environ).embedded_dynamodb_fast_path is on


@pytest.mark.parametrize("value", ["yes", "0", "false", "of"])
def test_the_fast_path_setting_refuses_anything_but_on_or_off_in_one_line(value):
    with pytest.raises(ConfigError) as refused:
        GatewaySettings.from_env({"EMBEDDED_DYNAMODB_FAST_PATH": value})
    assert str(refused.value) == f"EMBEDDED_DYNAMODB_FAST_PATH must be on or off, got {value!r}"


def test_with_the_fast_path_off_moto_answers_every_item_request():
    """The setting as the gateway reads it: its functions' client takes the direct transport with no item engine."""
    from local_gateway.app import Gateway

    environ = {"TABLE_NAME": f"off-{uuid.uuid4().hex[:8]}", "EMBEDDED_DYNAMODB_FAST_PATH": "off"}
    gateway = Gateway(GatewaySettings.from_env(environ), environ=environ)
    config = gateway.environment.start()
    try:
        client = gateway.environment.dynamodb
        assert through_direct_transport(client) and gateway.environment.embedded.item_engine is None
        table = config.table_name
        client.put_item(TableName=table, Item={**_item("x"), "n": {"N": "1"}})
        client.update_item(TableName=table, Key=_item("x"), UpdateExpression="REMOVE n")
        assert client.get_item(TableName=table, Key=_item("x"))["Item"] == _item("x")
        # moto's answer where the engine's would differ: moto creates the key alone (docs/embedded-dynamodb.md)
        client.update_item(TableName=table, Key=_item("y"), UpdateExpression="REMOVE n")
        assert client.get_item(TableName=table, Key=_item("y"))["Item"] == _item("y")
    finally:
        gateway.environment.stop()


def test_faults_refuse_a_client_whose_requests_never_reach_the_send_path():
    from tests.faults import DynamoDBFaults

    with pytest.raises(ValueError, match="dynamodb_wire"):
        DynamoDBFaults(EmbeddedDynamoDB().client())


def test_the_handlers_unit_tests_run_on_moto_alone(lambda_env, embedded_dynamodb):
    """lambda_env's functions take the direct transport with no item engine (tests/conftest.py); the gateway's keep it
    (tests/test_gateway.py)."""
    client = lambda_env.table.client
    assert through_direct_transport(client) and embedded_dynamodb.item_engine is None


def test_the_direct_transport_answers_every_request_the_functions_send_as_the_wire_transport_does(lambda_env):
    """The handlers' whole life (connects, joins, refusals, the rate limiter, a tick, a reconciliation with
    one-item pages, disconnects) recorded as botocore receives it, then replayed in order on two fresh tables,
    one through each in-process transport: the answers must be the same, errors included."""
    recorded = _requests_of_a_life(lambda_env)
    operations = {operation for operation, _ in recorded}
    assert operations == DIRECT_OPERATIONS
    embedded = EmbeddedDynamoDB()
    answers = []
    transports = (embedded.client(), embedded.wire_client())
    for transport in transports:
        table = f"replay-{uuid.uuid4().hex[:8]}"
        ensure_table(transport, table, template())
        answers.append([_replay(transport, lambda_env.config.table_name, table, call) for call in recorded])
    direct, wire = answers
    assert [code for code, _ in direct if code]  # some refusals
    for call, through_engine, through_moto in zip(recorded, direct, wire, strict=True):
        assert through_engine == _as_dynamodb_answers(call, through_moto, through_engine), call
    # It answered every item request of the product's, the index and filtered Queries included.
    engine = embedded.item_engine
    indexed = [op for op, params in recorded if op == "Query" and params.keys() & {"IndexName", "FilterExpression"}]
    assert not engine.declined and indexed
    assert sum(engine.served.values()) == sum(op in ENGINE_OPERATIONS for op, _ in recorded)


def _as_dynamodb_answers(call: tuple[str, dict], moto_answer: tuple[str, dict], engine_answer: tuple[str, dict]):
    """moto's answer, with UPDATED_OLD and UPDATED_NEW listed as DynamoDB lists them (tests/support/dynamodb.py)."""
    operation, params = call
    if operation != "UpdateItem" or not params.get("ReturnValues", "").startswith("UPDATED_") or moto_answer[0]:
        return moto_answer
    return "", as_dynamodb_lists_them(params, moto_answer[1], engine_answer[1])


def _requests_of_a_life(svc) -> list[tuple[str, dict]]:
    import copy

    from handlers import disconnect, request_live_metrics
    from shared import publisher
    from tests.handler_calls import connected, join, leave, recount, send, subscribe
    from tests.support.events import disconnect_event

    recorded: list[tuple[str, dict]] = []

    def record(params, model, **_):
        recorded.append((model.name, copy.deepcopy(params)))

    events = svc.table.client.meta.events
    events.register("before-parameter-build.dynamodb", record)
    try:
        connected("AAAAAAAAAAAAAAA=")
        connected("BBBBBBBBBBBBBBB=", user="alice")
        join("AAAAAAAAAAAAAAA=", "sales")
        join("AAAAAAAAAAAAAAA=", "sales")
        join("BBBBBBBBBBBBBBB=", "ops")
        subscribe("AAAAAAAAAAAAAAA=")
        send(request_live_metrics, "AAAAAAAAAAAAAAA=", "analytics:requestLiveMetrics")
        leave("AAAAAAAAAAAAAAA=", "sales")
        leave("AAAAAAAAAAAAAAA=", "never-joined")
        join("CCCCCCCCCCCCCCC=", "sales")  # never connected: refused
        publisher.tick(svc, svc.poster())
        svc.table.page_size = 1
        recount(svc)
        disconnect.handler(disconnect_event("BBBBBBBBBBBBBBB="), None)
        disconnect.handler(disconnect_event("AAAAAAAAAAAAAAA="), None)
    finally:
        events.unregister("before-parameter-build.dynamodb", record)
    return recorded


def _replay(client, recorded_table: str, table: str, call: tuple[str, dict]) -> tuple[str, dict]:
    """(error code or "", the answer without its ResponseMetadata), the request aimed at `table` and the answer
    naming the table it was recorded on."""
    import json

    from botocore import xform_name

    operation, params = call
    params = json.loads(json.dumps(params).replace(json.dumps(recorded_table), json.dumps(table)))
    try:
        answer = getattr(client, xform_name(operation))(**params)
        code = ""
    except ClientError as error:
        answer, code = error.response, error.response["Error"]["Code"]
    # moto tells ConsumedCapacity (UpdateItem, the batches) and ItemCollectionMetrics (BatchWriteItem) unasked;
    # DynamoDB, and the engine, only when asked
    unasked = set() if "ReturnConsumedCapacity" in params else {"ConsumedCapacity"}
    unasked |= set() if "ReturnItemCollectionMetrics" in params else {"ItemCollectionMetrics"}
    answer = {name: value for name, value in answer.items() if name not in {"ResponseMetadata", *unasked}}
    return code, json.loads(json.dumps(answer).replace(json.dumps(table), json.dumps(recorded_table)))


def test_moto_keeps_no_record_of_every_item_it_ever_made():
    """moto's dashboard record of every model instance (`/moto-api/`, served by nothing here) would keep every item
    version ever written: none is kept once an embedded client exists, whichever transport writes."""
    from moto.dynamodb.models.dynamo_type import Item

    embedded = EmbeddedDynamoDB()
    table = f"untracked-{uuid.uuid4().hex[:8]}"
    for client in (embedded.client(), embedded.wire_client()):
        ensure_table(client, table, template())
        for n in range(3):
            client.put_item(TableName=table, Item={"PK": {"S": "k"}, "SK": {"S": "k"}, "n": {"N": str(n)}})
        client.query(TableName=table, KeyConditionExpression="PK = :k", ExpressionAttributeValues={":k": {"S": "k"}})
    assert len(Item.instances_tracked) == 0
