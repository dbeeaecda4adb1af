"""The embedded DynamoDB's item engine (local_gateway/dynamodb/item_engine.py) against moto alone: each case
(tests/engine_cases.py) runs on two fresh tables, one through the direct transport (the engine first) and one
through the wire transport (moto only), and must give the same answer, or the same error, and leave the same
item; where moto is not DynamoDB's model (DYNAMODB_ANSWERS), the engine must give DynamoDB's answer and moto
another. Each case also says whether the engine answers it itself or leaves it to moto, so that a case meant for
the engine cannot pass by being declined."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
from local_gateway.template import template
from tests.engine_cases import CASES, DYNAMODB_ANSWERS, ITEM, KEY, n, s
from tests.engine_fuzz_grammar import VALUES
from tests.support.dynamodb import as_dynamodb_lists_them


@pytest.fixture(scope="module")
def embedded() -> EmbeddedDynamoDB:
    """moto's DynamoDB with its item engine, whose counts say which requests it answered."""
    return EmbeddedDynamoDB()


@pytest.fixture(scope="module")
def transports(embedded):
    """Per transport, a client and a table of its own; moto alone reads the items back (the wire transport)."""
    reader = embedded.wire_client()
    tables = []
    for client in (embedded.client(), reader):
        table = f"engine-{uuid.uuid4().hex[:8]}"
        ensure_table(reader, table, template())
        tables.append((client, table))
    return reader, tables


def _run(reader: Any, client: Any, table: str, call: tuple[str, dict]) -> tuple[Any, Any]:
    """(the answer or the error's code, message and item; the item after it), on a table holding ITEM alone."""
    _emptied(table)
    reader.put_item(TableName=table, Item=ITEM)
    operation, request = call
    try:
        answer: Any = getattr(client, operation)(TableName=table, **request)
        answer = {name: value for name, value in answer.items() if name not in ("ResponseMetadata", "ConsumedCapacity")}
    except ClientError as error:
        answer = (error.response["Error"], error.response.get("Item"))
    except ParamValidationError as error:
        answer = str(error)
    except Exception as error:  # moto's own failures (a ValueError from its parser, say), as a value to compare
        answer = f"{type(error).__name__}: {error}"
    key = request.get("Key") or {name: request["Item"][name] for name in ("PK", "SK") if name in request["Item"]}
    try:
        after = reader.get_item(TableName=table, Key=key).get("Item")
    except ClientError:
        after = "no such key"
    except Exception as error:  # an item botocore cannot read back (an empty attribute name moto stored)
        after = f"unreadable: {type(error).__name__}"
    return answer, after


def _emptied(table: str) -> None:
    """The table emptied in moto itself: what moto stored may be more than botocore reads back (an empty attribute
    name, a number beyond 38 digits)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].items.clear()


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_answers_as_moto_does_or_as_dynamodb_where_moto_differs(transports, embedded, case):
    call, served = CASES[case]
    reader, [(direct, engine_table), (wire, moto_table)] = transports
    engine = embedded.item_engine
    before = sum(engine.served.values())
    through_engine, through_moto = _run(reader, direct, engine_table, call), _run(reader, wire, moto_table, call)
    assert (sum(engine.served.values()) > before) is served
    if case in DYNAMODB_ANSWERS:
        assert through_engine == DYNAMODB_ANSWERS[case]
        assert through_moto != DYNAMODB_ANSWERS[case], "moto answers as DynamoDB now: move the case with the others"
        return
    if served and call[1].get("ReturnValues", "").startswith("UPDATED_"):
        through_moto = (as_dynamodb_lists_them(call[1], through_moto[0], through_engine[0]), through_moto[1])
    assert through_engine == through_moto


def test_updated_values_list_every_attribute_the_update_names_as_dynamodb_does(transports, embedded):
    """AWS: UPDATED_NEW returns the attributes the update names, as they are after it; UPDATED_OLD, as they were
    before; for an item the update creates, not its key."""
    _, [(direct, table), _] = transports
    key = {"PK": s(f"ROOM#{uuid.uuid4().hex}"), "SK": s("ROOM#r")}  # beside the cases' items
    values = {":d": n(1), ":e": n(9)}
    expression = "ADD members :d SET expiresAt = :e"
    created = direct.update_item(
        TableName=table,
        Key=key,
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
        ReturnValues="UPDATED_NEW",
    )
    assert created["Attributes"] == {"members": n(1), "expiresAt": n(9)}
    again = direct.update_item(
        TableName=table,
        Key=key,
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
        ReturnValues="UPDATED_OLD",
    )
    assert again["Attributes"] == {"members": n(1), "expiresAt": n(9)}  # expiresAt kept its value, and is listed
    assert embedded.item_engine.served["UpdateItem"] >= 2


def test_an_exception_in_the_engine_is_logged_and_the_request_left_to_moto(
    transports, embedded, monkeypatch, engine_errors
):
    """Not swallowed: logged at ERROR with the operation (the tests fail on such a record, tests/conftest.py)."""
    import local_gateway.dynamodb.item_engine

    reader, [(direct, table), _] = transports
    engine = embedded.item_engine
    reader.put_item(TableName=table, Item=ITEM)

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(local_gateway.dynamodb.item_engine, "item_at", broken)
    declined = engine.declined["GetItem"]
    assert direct.get_item(TableName=table, Key=KEY)["Item"]["userId"] == s("alice")  # moto's answer
    assert engine.declined["GetItem"] == declined + 1
    [record] = engine_errors
    assert record.levelname == "ERROR" and "GetItem" in record.getMessage() and record.exc_info
    engine_errors.clear()  # provoked on purpose


@given(attributes=st.dictionaries(st.text(min_size=1, max_size=4), VALUES, max_size=6))
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
def test_the_engine_s_bound_on_an_item_s_size_is_never_below_moto_s_size(attributes):
    """make_item skips moto's Item.size() when the bound says the item is surely within 400 KB."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from local_gateway.dynamodb.item_sizes import size_bound

    typed = {name: DynamoType(value) for name, value in {**KEY, **attributes, "x": {"S": "é" * 9}}.items()}
    assert size_bound(typed) >= Item(typed["PK"], typed["SK"], typed).size()


@pytest.mark.parametrize("value", [{"S": "CONN#a"}, {"N": "-12"}, {"BOOL": True}, {"NULL": True}])
def test_the_engine_s_scalars_are_moto_s_own(value):
    """The engine builds a scalar's DynamoType without moto's constructor: it must leave what the constructor does."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    from local_gateway.dynamodb.moto_items import _scalar

    built = _scalar(*next(iter(value.items())))
    assert vars(built) == vars(DynamoType(value)) and built == DynamoType(value)
