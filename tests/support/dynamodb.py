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


def registered(svc: Any, connection_id: str) -> bool:
    """Whether the connection is registered (its own item there, complete and unexpired), as the product reads it."""
    from shared.items import registered_connection

    return registered_connection(svc.table, connection_id) is not None


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


def compared_tables(engine: Any, prefix: str, count: int, items: Any = ()) -> tuple[Any, Any, list[str]]:
    """A differential test's ground: the item engine's client, plain moto's, and `count` tables made and filled
    with `items` through moto (the engine never wrote them)."""
    import uuid

    from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
    from local_gateway.template import template

    fast, plain = engine.client(), EmbeddedDynamoDB(fast_path=False).client()
    tables = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for table in tables:
        ensure_table(plain, table, template())
        for item in items:
            plain.put_item(TableName=table, Item=item)
    return fast, plain, tables


def query_outcome(client: Any, table: str, request: dict[str, Any]) -> tuple[Any, ...]:
    """A Query's answer or error as the differential tests compare them (the table's name and set order aside)."""
    from botocore.exceptions import ClientError, ParamValidationError

    try:
        answer = client.query(TableName=table, **request)
    except ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"].replace(table, "T"))
    except ParamValidationError as error:
        return ("invalid", str(error))
    items = [{k: sorted(v["SS"]) if "SS" in v else v for k, v in item.items()} for item in answer.get("Items", [])]
    return ("ok", items, answer["Count"], answer["ScannedCount"], answer.get("LastEvaluatedKey"))


def check_query_against_moto(clients: Any, engine: Any, request: dict[str, Any], served: bool) -> None:
    """One Query answers alike through the item engine and through moto alone; the engine served it (or declined
    it, handing it to moto) as `served` says."""
    fast, plain, engine_table, moto_table = clients
    before = engine.served["Query"]
    through_engine = query_outcome(fast, engine_table, request)
    assert (engine.served["Query"] > before) is served
    assert through_engine == query_outcome(plain, moto_table, request)


def check_queries_against_moto(clients: Any, engine: Any, parts: Any, drawn_request: Any, examples: int) -> None:
    """The differential test of Query: each request drawn from `parts` (a hypothesis strategy) answers alike through
    the item engine and through moto alone; the engine serves at least half of them rather than declining."""
    from collections import Counter

    from hypothesis import given

    fast, plain, engine_table, moto_table = clients
    seen: Counter[str] = Counter()

    @differential(examples)
    @given(parts=parts)
    def check(parts: dict[str, Any]) -> None:
        request = drawn_request(parts)
        before = engine.served["Query"]
        through_engine = query_outcome(fast, engine_table, request)
        seen["served" if engine.served["Query"] > before else "declined"] += 1
        assert through_engine == query_outcome(plain, moto_table, request), request

    check()
    assert seen["served"] >= examples // 2, seen
