"""The embedded DynamoDB's item engine (local_gateway/item_engine.py) against moto alone: each case runs on two
fresh tables, one through the direct door (the engine first) and one through the wire door (moto only), and
must give the same answer, or the same error, and leave the same item. Each case also says whether the engine
answers it itself or leaves it to moto, so that a case meant for the engine cannot pass by being declined."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from local_gateway.dynamodb import EmbeddedDynamoDB, ensure_table
from local_gateway.moto_doors import item_engine
from local_gateway.template import template
from tests.support import as_dynamodb_lists_them

KEY = {"PK": {"S": "CONN#a"}, "SK": {"S": "CONN#a"}}
ITEM = {
    **KEY,
    "expiresAt": {"N": "1000"},
    "rateTat": {"N": "5000"},
    "roomIds": {"SS": ["ROOM#x", "ROOM#y"]},
    "allowed": {"L": [{"S": "x"}, {"S": "z"}]},
    "userId": {"S": "alice"},
    "city": {"S": "Zürich"},
    "ratio": {"N": "2.5"},
    "flag": {"BOOL": True},
    "blob": {"B": b"\x00\x01"},
}
SERVED, DECLINED = True, False


def update(expression: str, values: dict | None = None, **more: Any) -> tuple[str, dict]:
    request = {"Key": KEY, "UpdateExpression": expression, **more}
    if values is not None:
        request["ExpressionAttributeValues"] = values
    return "update_item", request


def n(value: int | str) -> dict:
    return {"N": str(value)}


def s(value: str) -> dict:
    return {"S": value}


CASES: dict[str, tuple[tuple[str, dict], bool]] = {
    # reads
    "get": (("get_item", {"Key": KEY}), SERVED),
    "get missing": (("get_item", {"Key": {"PK": s("nope"), "SK": s("nope")}}), SERVED),
    "get projected": (
        (
            "get_item",
            {
                "Key": KEY,
                "ProjectionExpression": "userId, #e, nothing",
                "ExpressionAttributeNames": {"#e": "expiresAt"},
            },
        ),
        SERVED,
    ),
    "get projected twice": (("get_item", {"Key": KEY, "ProjectionExpression": "userId, userId"}), DECLINED),
    "get with a half key": (("get_item", {"Key": {"PK": s("CONN#a")}}), DECLINED),
    "get with a number key": (("get_item", {"Key": {"PK": n(1), "SK": s("x")}}), DECLINED),
    "get with an unused name": (("get_item", {"Key": KEY, "ExpressionAttributeNames": {"#x": "y"}}), DECLINED),
    # puts
    "put": (("put_item", {"Item": {**KEY, "a": n(1)}, "ReturnValues": "ALL_OLD"}), SERVED),
    "put if absent": (
        (
            "put_item",
            {
                "Item": KEY,
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        SERVED,
    ),
    "put of every plain type": (
        (
            "put_item",
            {
                "Item": {
                    **KEY,
                    "ss": {"SS": ["b", "a"]},
                    "ns": {"NS": ["2", "-1.5"]},
                    "l": {"L": [s("x"), {"M": {"k": {"NULL": True}}}]},
                    "m": {"M": {"n": n("0.25")}},
                    "t": {"BOOL": False},
                }
            },
        ),
        SERVED,
    ),
    "put of a binary": (("put_item", {"Item": {**KEY, "b": {"B": b"x"}}}), DECLINED),
    "put of a number DynamoDB rewrites": (("put_item", {"Item": {**KEY, "a": n("1.50")}}), DECLINED),
    "put of a bad number": (("put_item", {"Item": {**KEY, "a": n("one")}}), DECLINED),
    "put of an empty set": (("put_item", {"Item": {**KEY, "a": {"SS": []}}}), DECLINED),
    "put without its sort key": (("put_item", {"Item": {"PK": s("k")}}), DECLINED),
    "put beyond 400 KB": (("put_item", {"Item": {**KEY, "a": s("x" * 410_000)}}), DECLINED),
    # deletes
    "delete": (("delete_item", {"Key": KEY, "ReturnValues": "ALL_OLD"}), SERVED),
    "delete if": (
        (
            "delete_item",
            {
                "Key": KEY,
                "ConditionExpression": "attribute_exists(PK) AND userId = :u",
                "ExpressionAttributeValues": {":u": s("bob")},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        SERVED,
    ),
    "delete missing": (("delete_item", {"Key": {"PK": s("k"), "SK": s("k")}, "ReturnValues": "ALL_OLD"}), SERVED),
    # conditions
    "rate limiter, idle": (
        update(
            "SET rateTat = :next",
            {":next": n(6000), ":now": n(5500), ":seconds": n(999)},
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(pending) AND "
            "expiresAt > :seconds AND (attribute_not_exists(rateTat) OR rateTat <= :now)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        SERVED,
    ),
    "rate limiter, busy": (
        update(
            "SET rateTat = rateTat + :i",
            {":i": n(100), ":now": n(4000), ":c": n(9000)},
            ConditionExpression="rateTat > :now AND rateTat <= :c",
        ),
        SERVED,
    ),
    "rate limiter, empty": (
        update(
            "SET rateTat = rateTat + :i",
            {":i": n(100), ":now": n(4000), ":c": n(4500)},
            ConditionExpression="rateTat > :now AND rateTat <= :c",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        SERVED,
    ),
    "condition on a missing item": (
        (
            "update_item",
            {
                "Key": {"PK": s("k"), "SK": s("k")},
                "UpdateExpression": "SET a = :a",
                "ConditionExpression": "a < :a",
                "ExpressionAttributeValues": {":a": n(1)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        SERVED,
    ),
    "not, or, parentheses": (
        update(
            "REMOVE flag",
            {":x": s("alice")},
            ConditionExpression="NOT (userId <> :x OR attribute_not_exists(flag)) AND NOT flag = :x",
        ),
        SERVED,
    ),
    "comparing a number and a string": (
        update("REMOVE flag", {":x": s("1000")}, ConditionExpression="expiresAt = :x"),
        SERVED,
    ),
    "comparing a decimal": (update("REMOVE flag", {":x": n(2)}, ConditionExpression="ratio > :x"), DECLINED),
    "<> with a missing attribute": (update("REMOVE flag", {":x": n(2)}, ConditionExpression="nothing <> :x"), DECLINED),
    "contains in a string set": (
        update(
            "DELETE roomIds :r SET leaveToken = :t",
            {":r": {"SS": ["ROOM#x"]}, ":d": s("ROOM#x"), ":t": s("t1")},
            ConditionExpression="contains(roomIds, :d) OR leaveToken = :t",
            ReturnValues="ALL_NEW",
        ),
        SERVED,
    ),
    "contains in a list, size": (
        update(
            "ADD roomIds :r",
            {":r": {"SS": ["ROOM#z"]}, ":d": s("z"), ":max": n(3)},
            ConditionExpression="contains(allowed, :d) AND size(roomIds) < :max",
            ReturnValues="UPDATED_NEW",
        ),
        SERVED,
    ),
    "contains in a string": (
        update("REMOVE flag", {":p": s("lic")}, ConditionExpression="contains(userId, :p)"),
        SERVED,
    ),
    "begins_with": (update("REMOVE flag", {":p": s("ali")}, ConditionExpression="begins_with(userId, :p)"), SERVED),
    "size of a list too big": (
        update(
            "REMOVE flag",
            {":max": n(2)},
            ConditionExpression="size(allowed) < :max",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        SERVED,
    ),
    "a reserved word": (
        update(
            "SET #s = :v",
            {":v": n(1)},
            ConditionExpression="attribute_not_exists(status)",
            ExpressionAttributeNames={"#s": "status"},
        ),
        DECLINED,
    ),
    "BETWEEN": (
        update("REMOVE flag", {":a": n(1), ":b": n(2)}, ConditionExpression="rateTat BETWEEN :a AND :b"),
        DECLINED,
    ),
    "a nested path": (update("REMOVE flag", ConditionExpression="attribute_exists(allowed[0])"), DECLINED),
    "an undefined value": (update("SET a = :a"), DECLINED),
    "an unused value": (update("SET a = :a", {":a": n(1), ":b": n(2)}), DECLINED),
    # updates
    "counter of a new item": (
        (
            "update_item",
            {
                "Key": {"PK": s("ROOM#new"), "SK": s("ROOM#new")},
                "UpdateExpression": "ADD members :d, version :one SET expiresAt = :e",
                "ExpressionAttributeValues": {":d": n(1), ":one": n(1), ":e": n(9)},
                "ReturnValues": "UPDATED_NEW",
            },
        ),
        SERVED,
    ),
    "counter with an unchanged attribute": (
        update("ADD rateTat :d SET expiresAt = :e", {":d": n(-1), ":e": n(1000)}, ReturnValues="UPDATED_OLD"),
        SERVED,
    ),
    "if_not_exists and minus": (
        update(
            "SET a = if_not_exists(a, :z) - :one, b = if_not_exists(expiresAt, :z)",
            {":z": n(0), ":one": n(1)},
            ReturnValues="ALL_NEW",
        ),
        SERVED,
    ),
    "SET from another attribute": (update("SET copied = roomIds", ReturnValues="ALL_NEW"), SERVED),
    "REMOVE several": (update("REMOVE flag, userId, nothing", ReturnValues="UPDATED_OLD"), SERVED),
    "DELETE the last members": (
        update("DELETE roomIds :r", {":r": {"SS": ["ROOM#x", "ROOM#y", "ROOM#q"]}}, ReturnValues="ALL_NEW"),
        SERVED,
    ),
    "ADD to a new set": (update("ADD tags :t", {":t": {"NS": ["1", "2"]}}, ReturnValues="ALL_NEW"), SERVED),
    "ADD a string set to a number": (update("ADD expiresAt :t", {":t": {"SS": ["a"]}}), DECLINED),
    "arithmetic on a missing attribute": (update("SET a = nothing + :one", {":one": n(1)}), DECLINED),
    "arithmetic beyond 38 digits": (update("SET a = rateTat + :big", {":big": n("9" * 38)}), DECLINED),
    "updating a key": (update("SET SK = :k", {":k": s("other")}), DECLINED),
    "two actions on one attribute": (update("SET a = :a REMOVE a", {":a": n(1)}), DECLINED),
    "a clause twice": (update("SET a = :a SET b = :a", {":a": n(1)}), DECLINED),
    "list_append": (update("SET allowed = list_append(allowed, :l)", {":l": {"L": [s("q")]}}), DECLINED),
    "REMOVE on a missing item": (
        (
            "update_item",
            {"Key": {"PK": s("k"), "SK": s("k")}, "UpdateExpression": "REMOVE a", "ReturnValues": "ALL_NEW"},
        ),
        SERVED,
    ),
    "ADD to a number set": (update("ADD tags :t", {":t": {"NS": ["1", "2"]}}), SERVED),
    "size of a string": (update("REMOVE flag", {":max": n(6)}, ConditionExpression="size(userId) < :max"), SERVED),
    "size of a string beyond ASCII": (
        update("REMOVE flag", {":max": n(7)}, ConditionExpression="size(city) < :max"),
        DECLINED,
    ),
    "SET from a missing attribute": (update("SET rateTat = nothing"), DECLINED),
    "SET from if_not_exists of missing attributes": (update("SET rateTat = if_not_exists(nothing, nada)"), DECLINED),
    "an index key of its type": (update("SET live = :k", {":k": s("LIVE")}, ReturnValues="ALL_NEW"), SERVED),
    "an index key of another type": (update("SET live = :k", {":k": n(1)}), DECLINED),
    "an index key as NULL": (("put_item", {"Item": {**KEY, "live": {"NULL": True}}}), DECLINED),
    "an index key too long": (("put_item", {"Item": {**KEY, "live": s("x" * 2049)}}), DECLINED),
    "a name starting with an underscore": (update("SET _x = :v", {":v": n(1)}), DECLINED),
    "ordering a boolean": (update("REMOVE flag", {":b": {"BOOL": True}}, ConditionExpression="nothing < :b"), DECLINED),
    "begins_with a number": (
        update("REMOVE flag", {":p": n(1)}, ConditionExpression="NOT begins_with(nothing, :p)"),
        DECLINED,
    ),
    "a key update behind a failing condition": (
        update("SET PK = :v", {":v": s("other")}, ConditionExpression="attribute_not_exists(PK)"),
        DECLINED,
    ),
    "an ADD of a string behind a failing condition": (
        update("ADD q :s", {":s": s("text")}, ConditionExpression="attribute_not_exists(PK)"),
        DECLINED,
    ),
    "the legacy AttributeUpdates": (
        ("update_item", {"Key": KEY, "AttributeUpdates": {"a": {"Value": n(1), "Action": "PUT"}}}),
        DECLINED,
    ),
}


@pytest.fixture(scope="module")
def doors():
    """Per door, a client and a table of its own; moto alone reads the items back (the wire door)."""
    embedded = EmbeddedDynamoDB()
    reader = embedded.wire_client()
    tables = []
    for client in (embedded.client(), reader):
        table = f"engine-{uuid.uuid4().hex[:8]}"
        ensure_table(reader, table, template())
        tables.append((client, table))
    return reader, tables


def _run(reader: Any, client: Any, table: str, call: tuple[str, dict]) -> tuple[Any, Any]:
    """(the answer or the error's code, message and item; the item after it), on a table holding ITEM alone."""
    for item in reader.scan(TableName=table, ConsistentRead=True)["Items"]:
        reader.delete_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
    reader.put_item(TableName=table, Item=ITEM)
    operation, request = call
    try:
        answer: Any = getattr(client, operation)(TableName=table, **request)
        answer = {name: value for name, value in answer.items() if name not in ("ResponseMetadata", "ConsumedCapacity")}
    except ClientError as error:
        answer = (error.response["Error"], error.response.get("Item"))
    except ParamValidationError as error:
        answer = str(error)
    key = request.get("Key") or {name: request["Item"][name] for name in ("PK", "SK") if name in request["Item"]}
    try:
        after = reader.get_item(TableName=table, Key=key).get("Item")
    except ClientError:
        after = "no such key"
    return answer, after


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_answers_as_moto_does(doors, case):
    call, served = CASES[case]
    reader, [(direct, engine_table), (wire, moto_table)] = doors
    engine = item_engine(direct)
    before = sum(engine.served.values())
    through_engine, through_moto = _run(reader, direct, engine_table, call), _run(reader, wire, moto_table, call)
    assert (sum(engine.served.values()) > before) is served
    if served and call[1].get("ReturnValues", "").startswith("UPDATED_"):
        through_moto = (as_dynamodb_lists_them(call[1], through_moto[0], through_engine[0]), through_moto[1])
    assert through_engine == through_moto


def test_updated_values_list_every_attribute_the_update_names_as_dynamodb_does(doors):
    """AWS: UPDATED_NEW returns the attributes the update names, as they are after it; UPDATED_OLD, as they were
    before; for an item the update creates, not its key."""
    _, [(direct, table), _] = doors
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
    assert item_engine(direct).served["UpdateItem"] >= 2
