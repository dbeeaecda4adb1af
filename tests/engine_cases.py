"""The item engine's cases (tests/test_item_engine.py): requests on a table holding ITEM alone, each with whether
the engine answers it itself (SERVED) or leaves it to moto (DECLINED), and DynamoDB's answer where moto's differs.

They live here, not in the test module, to keep it short; no other module uses them.
"""

from __future__ import annotations

from typing import Any

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
MISSING = {"PK": {"S": "k"}, "SK": {"S": "k"}}  # no item under this key
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
        ("update_item", {"Key": MISSING, "UpdateExpression": "REMOVE a", "ReturnValues": "ALL_NEW"}),
        SERVED,
    ),
    "DELETE alone on a missing item": (
        (
            "update_item",
            {
                "Key": MISSING,
                "UpdateExpression": "DELETE roomIds :r",
                "ExpressionAttributeValues": {":r": {"SS": ["ROOM#x"]}},
                "ReturnValues": "UPDATED_NEW",
            },
        ),
        SERVED,
    ),
    "REMOVE and SET on a missing item": (
        (
            "update_item",
            {
                "Key": MISSING,
                "UpdateExpression": "REMOVE a SET b = :b",
                "ExpressionAttributeValues": {":b": n(1)},
                "ReturnValues": "ALL_NEW",
            },
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
    "ordering a boolean": (update("REMOVE flag", {":b": {"BOOL": True}}, ConditionExpression="nothing < :b"), SERVED),
    "begins_with a number": (
        update("REMOVE flag", {":p": n(1)}, ConditionExpression="NOT begins_with(nothing, :p)"),
        SERVED,
    ),
    "begins_with size()": (update("REMOVE flag", ConditionExpression="begins_with(userId, size(allowed))"), SERVED),
    "begins_with a number behind OR": (
        update("REMOVE flag", {":n": n(1)}, ConditionExpression="attribute_not_exists(PK) OR begins_with(userId, :n)"),
        SERVED,
    ),
    "ordering a boolean behind OR": (
        update(
            "REMOVE flag",
            {":n": n(1000), ":b": {"BOOL": True}},
            ConditionExpression="expiresAt = :n OR expiresAt < :b",
        ),
        SERVED,
    ),
    "ordering a list": (update("REMOVE flag", {":l": {"L": [n(1)]}}, ConditionExpression="rateTat >= :l"), SERVED),
    "the same attribute on both sides": (update("REMOVE flag", ConditionExpression="rateTat = rateTat"), SERVED),
    "contains of itself": (update("REMOVE flag", ConditionExpression="contains(userId, userId)"), SERVED),
    "the same attribute behind a placeholder": (
        update("REMOVE flag", ConditionExpression="#x >= rateTat", ExpressionAttributeNames={"#x": "rateTat"}),
        SERVED,
    ),
    "size() of the attribute compared": (update("REMOVE flag", ConditionExpression="size(userId) = userId"), SERVED),
    "redundant parentheses": (
        update("REMOVE flag", {":v": n(5000)}, ConditionExpression="((rateTat = :v))"),
        DECLINED,
    ),
    "parentheses around a condition and around both": (
        update("REMOVE flag", {":v": n(5000)}, ConditionExpression="((rateTat = :v) AND (rateTat = :v))"),
        SERVED,
    ),
    "an empty attribute name in an item": (("put_item", {"Item": {**KEY, "": n(1)}}), SERVED),
    "an empty attribute name behind a placeholder": (
        update("SET #e = :v", {":v": n(1)}, ExpressionAttributeNames={"#e": ""}),
        SERVED,
    ),
    "an empty attribute name in a projection": (
        ("get_item", {"Key": KEY, "ProjectionExpression": "#e", "ExpressionAttributeNames": {"#e": ""}}),
        SERVED,
    ),
    "a put beyond 400 KB with a failing condition": (
        (
            "put_item",
            {"Item": {**KEY, "a": s("x" * 406_000)}, "ConditionExpression": "attribute_not_exists(PK)"},
        ),
        DECLINED,
    ),
    "size() of a missing attribute": (
        update("REMOVE flag", {":max": n(3)}, ConditionExpression="size(nothing) < :max"),
        SERVED,
    ),
    "NOT NOT": (update("REMOVE flag", {":u": s("alice")}, ConditionExpression="NOT NOT userId = :u"), SERVED),
    "two missing attributes compared": (update("REMOVE flag", ConditionExpression="nothing = nada"), SERVED),
    "a number compared with a boolean": (
        update("REMOVE flag", {":one": n(1), ":true": {"BOOL": True}}, ConditionExpression=":one = :true"),
        SERVED,
    ),
    "size() as the operand of contains": (
        update("REMOVE flag", ConditionExpression="contains(allowed, size(userId))"),
        SERVED,
    ),
    "a key read by an update that creates the item": (
        (
            "update_item",
            {
                "Key": MISSING,
                "UpdateExpression": "SET a = if_not_exists(PK, :v)",
                "ExpressionAttributeValues": {":v": n(1)},
            },
        ),
        DECLINED,
    ),
    "a key read on the right of SET": (
        update("SET copied = PK, copiedSort = if_not_exists(SK, :v)", {":v": n(1)}, ReturnValues="ALL_NEW"),
        SERVED,
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


def _refused(message: str) -> tuple[Any, Any]:
    """A ValidationException, and the item as it was."""
    return ({"Message": message, "Code": "ValidationException"}, None), ITEM


def _operand_type(operator: str, kind: str) -> tuple[Any, Any]:
    return _refused(
        "Invalid ConditionExpression: Incorrect operand type for operator or function; "
        f"operator or function: {operator}, operand type: {kind}"
    )


def _distinct(operator: str, name: str) -> tuple[Any, Any]:
    return _refused(
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this "
        f"operator or function; operator: {operator}, first operand: [{name}]"
    )


FAILED = ({"Message": "The conditional request failed", "Code": "ConditionalCheckFailedException"}, None), ITEM
# DynamoDB's answer and the item after it, where moto's differ (docs/embedded-dynamodb.md): the engine must give
# these, and moto must not (else moto has caught up and the case belongs with the others).
DYNAMODB_ANSWERS: dict[str, tuple[Any, Any]] = {
    # a REMOVE or DELETE alone creates no item (moto creates the key alone)
    "REMOVE on a missing item": ({}, None),
    "DELETE alone on a missing item": ({}, None),
    # what DynamoDB refuses before reading the item, wherever it stands in the condition (moto evaluates it)
    "ordering a boolean": _operand_type("<", "BOOL"),
    "begins_with a number": _operand_type("begins_with", "N"),
    "begins_with size()": _operand_type("begins_with", "N"),
    "begins_with a number behind OR": _operand_type("begins_with", "N"),
    "ordering a boolean behind OR": _operand_type("<", "BOOL"),
    "ordering a list": _operand_type(">=", "L"),
    "the same attribute on both sides": _distinct("=", "rateTat"),
    "contains of itself": _distinct("contains", "userId"),
    "the same attribute behind a placeholder": _distinct(">=", "rateTat"),
    # an empty attribute name (moto stores it)
    "an empty attribute name in an item": _refused("One or more parameter values were invalid: Empty attribute name"),
    "an empty attribute name behind a placeholder": _refused(
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #e"
    ),
    "an empty attribute name in a projection": _refused(
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #e"
    ),
    # where the engine was right already and moto is not
    "size() of a missing attribute": FAILED,  # moto: ValueError
    "NOT NOT": ({}, {name: value for name, value in ITEM.items() if name != "flag"}),  # moto: ValueError
    "two missing attributes compared": FAILED,  # moto: None == None holds
    "a number compared with a boolean": FAILED,  # moto: 1 == True holds, as in Python
    "size() as the operand of contains": FAILED,  # moto: ValueError (a function in a function)
    "a key read on the right of SET": (  # moto: "Cannot update attribute PK"
        {"Attributes": {**ITEM, "copied": KEY["PK"], "copiedSort": KEY["SK"]}},
        {**ITEM, "copied": KEY["PK"], "copiedSort": KEY["SK"]},
    ),
}
