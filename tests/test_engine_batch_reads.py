"""The item engine's BatchGetItem (local_gateway/dynamodb/batch_reads.py) against moto alone: each request runs on
two pairs of tables holding the same items, one through the engine (fast path on) and one through moto (fast path
off), and must give the same answer or error, the tables' names aside; where moto is not DynamoDB's model, the
engine must give DynamoDB's answer. Cases first (each saying whether the engine answers it), then requests
hypothesis draws.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import given
from hypothesis import strategies as st

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB
from tests.support.dynamodb import compared_tables, differential

SERVED, DECLINED = True, False
EXAMPLES = 150
ITEMS = {
    "a": {"n": {"N": "1"}, "s": {"S": "x"}, "ss": {"SS": ["b", "a"]}, "m": {"M": {"k": {"BOOL": True}}}},
    "b": {"n": {"N": "2"}, "l": {"L": [{"S": "y"}, {"NULL": True}]}},
    "c": {},
}
NAMES = ("n", "s", "ss", "m", "l", "PK", "gone")
EMPTY_NAME = "ExpressionAttributeNames contains invalid value: Empty attribute name for key #e"


def key(name: str) -> dict[str, Any]:
    return {"PK": {"S": f"CONN#{name}"}, "SK": {"S": f"CONN#{name}"}}


def batch(*names: str, **more: Any) -> dict[str, Any]:
    return {"Keys": [key(name) for name in names], **more}


CASES: dict[str, tuple[dict[int, dict[str, Any]], bool]] = {
    "two found, one missing": ({0: batch("a", "missing", "b", ConsistentRead=True)}, SERVED),
    "an item of its key alone": ({0: batch("c")}, SERVED),
    "none found": ({0: batch("x", "y")}, SERVED),
    "projected": (
        {0: batch("a", "b", ProjectionExpression="n, #s, gone", ExpressionAttributeNames={"#s": "ss"})},
        SERVED,
    ),
    "projected to nothing": ({0: batch("a", "c", ProjectionExpression="gone")}, SERVED),
    "two tables": ({0: batch("a"), 1: batch("b", "missing", ProjectionExpression="l")}, SERVED),
    "duplicate keys": ({0: batch("a", "b", "a")}, SERVED),
    "the same key in two tables": ({0: batch("a"), 1: batch("a")}, SERVED),
    "101 keys": ({0: batch(*map(str, range(101)))}, SERVED),
    "101 keys over two tables": ({0: batch(*map(str, range(51))), 1: batch(*map(str, range(50)))}, SERVED),
    "duplicates and an empty name": (
        {0: batch("a", "a", ProjectionExpression="#e", ExpressionAttributeNames={"#e": ""})},
        DECLINED,
    ),
    "an unused name": ({0: batch("a", ExpressionAttributeNames={"#x": "n"})}, DECLINED),
    "an unused name beside a projection": (
        {0: batch("a", ProjectionExpression="n", ExpressionAttributeNames={"#x": "n"})},
        DECLINED,
    ),
    "a nested projection": ({0: batch("a", ProjectionExpression="m.k")}, DECLINED),
    "projected twice": ({0: batch("a", ProjectionExpression="n, n")}, DECLINED),
    "a half key": ({0: {"Keys": [{"PK": {"S": "CONN#a"}}]}}, DECLINED),
    "a number key": ({0: {"Keys": [{"PK": {"N": "1"}, "SK": {"S": "x"}}]}}, DECLINED),
    "the legacy AttributesToGet": ({0: batch("a", AttributesToGet=["n"])}, DECLINED),
}
# Where moto is not DynamoDB's model: DynamoDB's answer (the engine's).
DYNAMODB_ANSWERS = {
    "an empty name": (
        {0: batch("a", ProjectionExpression="#e", ExpressionAttributeNames={"#e": ""})},
        ("error", "ValidationException", EMPTY_NAME),
    ),
}


@pytest.fixture(scope="module")
def clients(engine_dynamodb: EmbeddedDynamoDB) -> tuple[Any, Any, list[str], list[str]]:
    """The engine's client, moto's, and two tables for each, both holding ITEMS (set through moto)."""
    items = [{**key(name), **attributes} for name, attributes in ITEMS.items()]
    fast, plain, tables = compared_tables(engine_dynamodb, "batch", 4, items)
    return fast, plain, tables[:2], tables[2:]


def outcome(client: Any, tables: list[str], request: dict[int, dict[str, Any]], **more: Any) -> tuple[Any, ...]:
    """The answer (tables named by their index, sets in one order) or the error, less ConsumedCapacity."""
    try:
        answer = client.batch_get_item(RequestItems={tables[index]: part for index, part in request.items()}, **more)
    except ClientError as error:
        message = error.response["Error"]["Message"]
        for index, table in enumerate(tables):
            message = message.replace(table, f"table {index}")
        return ("error", error.response["Error"]["Code"], message)
    except ParamValidationError as error:
        return ("invalid", str(error))
    responses = {tables.index(table): _unordered(items) for table, items in answer["Responses"].items()}
    unprocessed = {tables.index(table): keys for table, keys in answer["UnprocessedKeys"].items()}
    return ("ok", responses, unprocessed)


def _unordered(value: Any) -> Any:
    """Sets in one order: DynamoDB keeps none (moto writes a projected one sorted, the engine as stored)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS") else _unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unordered(element) for element in value]
    return value


@pytest.mark.parametrize("case", list(CASES) + list(DYNAMODB_ANSWERS))
def test_the_engine_reads_a_batch_as_moto_does_or_as_dynamodb_where_moto_differs(clients, engine_dynamodb, case):
    fast, plain, engine_tables, moto_tables = clients
    served = engine_dynamodb.item_engine.served
    before = served["BatchGetItem"]
    request, expected = CASES.get(case) or DYNAMODB_ANSWERS[case]
    through_engine, through_moto = outcome(fast, engine_tables, request), outcome(plain, moto_tables, request)
    if case in DYNAMODB_ANSWERS:
        assert through_engine == expected and through_moto != expected
        return
    assert (served["BatchGetItem"] > before) is expected
    assert through_engine == through_moto


def test_a_batch_read_tells_no_consumed_capacity_unasked_and_leaves_no_key_unprocessed(clients, engine_dynamodb):
    """DynamoDB tells ConsumedCapacity only when asked (moto always does); asked, moto answers."""
    fast, _, (table, _), _ = clients
    answer = fast.batch_get_item(RequestItems={table: batch("a", "b")})
    assert "ConsumedCapacity" not in answer and answer["UnprocessedKeys"] == {}
    assert [item["PK"]["S"] for item in answer["Responses"][table]] == ["CONN#a", "CONN#b"]
    declined = engine_dynamodb.item_engine.declined["BatchGetItem"]
    assert "ConsumedCapacity" in fast.batch_get_item(RequestItems={table: batch("a")}, ReturnConsumedCapacity="TOTAL")
    assert engine_dynamodb.item_engine.declined["BatchGetItem"] == declined + 1


_REFS = st.tuples(st.sampled_from(NAMES), st.booleans())  # (name, through a placeholder?)
_PARTS = st.fixed_dictionaries(
    {
        "keys": st.lists(st.sampled_from(["a", "b", "c", "x"]), min_size=1, max_size=5),
        "projection": st.one_of(st.none(), st.lists(_REFS, min_size=1, max_size=3)),
        "consistent": st.one_of(st.none(), st.booleans()),
        "empty_name": st.sampled_from([False] * 9 + [True]),
        "unused_name": st.sampled_from([False] * 9 + [True]),
    }
)


def drawn_request(parts: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """One table's part of a request, and whether DynamoDB refuses it for its empty attribute name alone."""
    part: dict[str, Any] = {"Keys": [key(name) for name in parts["keys"]]}
    names: dict[str, str] = {}
    if parts["projection"] is not None:
        texts = []
        for name, hidden in parts["projection"]:
            if hidden:
                names[f"#{name}"] = name
            texts.append(f"#{name}" if hidden else name)
        part["ProjectionExpression"] = ", ".join(texts)
    empty = parts["empty_name"] and bool(names)
    if empty:
        names[next(iter(names))] = ""
    if parts["unused_name"]:
        names["#unused"] = "n"
    if names:
        part["ExpressionAttributeNames"] = names
    if parts["consistent"] is not None:
        part["ConsistentRead"] = parts["consistent"]
    duplicates = len(set(parts["keys"])) != len(parts["keys"])
    return part, empty and not duplicates


def test_the_engine_reads_drawn_batches_as_moto_does_or_as_dynamodb_where_moto_differs(clients, engine_dynamodb):
    fast, plain, engine_tables, moto_tables = clients
    engine = engine_dynamodb.item_engine
    seen: Counter[str] = Counter()

    @differential(EXAMPLES)
    @given(tables=st.lists(_PARTS, min_size=1, max_size=2))
    def check(tables: list[dict[str, Any]]) -> None:
        drawn = [drawn_request(parts) for parts in tables]
        request = {index: part for index, (part, _) in enumerate(drawn)}
        served = engine.served["BatchGetItem"]
        through_engine, through_moto = outcome(fast, engine_tables, request), outcome(plain, moto_tables, request)
        served = engine.served["BatchGetItem"] - served
        seen["served" if served else "declined"] += 1
        if through_engine == through_moto:
            return
        assert served, f"declined, yet answered otherwise than moto: {request}"
        empty_names = [index for index, (_, empty) in enumerate(drawn) if empty]
        assert empty_names, f"an unexplained difference: {request}\nengine: {through_engine}\nmoto: {through_moto}"
        assert through_engine[:2] == ("error", "ValidationException"), through_engine
        assert through_engine[2].startswith("ExpressionAttributeNames contains invalid value: Empty attribute name")
        seen["an empty attribute name"] += 1

    check()
    assert seen["served"] >= EXAMPLES // 2, seen
    assert seen["an empty attribute name"], seen
