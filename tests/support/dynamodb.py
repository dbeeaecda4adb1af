"""Reading the table and comparing DynamoDB's answers with moto's."""

from __future__ import annotations

from typing import Any


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


def differential(examples: int, *more_health_checks: Any) -> Any:
    """hypothesis's settings for the item engine's differential tests against moto: the same draws every run (a
    failure can be run again), no example database, no deadline (moto is slow), and slow draws allowed."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, *more_health_checks],
    )
