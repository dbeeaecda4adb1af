"""The item engine's Query (local_gateway/dynamodb/queries.py) against moto alone: each request runs on two tables
holding the same items, one through the engine (fast path on) and one through moto (fast path off), and must give
the same page (items, counts, LastEvaluatedKey) or the same error. Cases first (each saying whether the engine
answers it), then requests hypothesis draws.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB
from tests.support.dynamodb import check_queries_against_moto, check_query_against_moto, compared_tables

SERVED, DECLINED = True, False
EXAMPLES = 200
SORT_KEYS = ("a", "ab", "abc", "b", "ba", "c", "é")
ITEMS = [
    {"PK": {"S": "P"}, "SK": {"S": sort}, "n": {"N": str(index)}, "ss": {"SS": ["y", "x"]}}
    for index, sort in enumerate(SORT_KEYS)
] + [{"PK": {"S": "Q"}, "SK": {"S": "a"}, "live": {"S": "LIVE"}}]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def pk(value: str = "P", condition: str = "", **more: Any) -> dict[str, Any]:
    values = {":p": s(value), **more.pop("values", {})}
    return {"KeyConditionExpression": f"PK = :p{condition}", "ExpressionAttributeValues": values, **more}


CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "a partition": (pk(), SERVED),
    "a partition backwards, consistent": (pk(ScanIndexForward=False, ConsistentRead=True), SERVED),
    "the latest one": (pk(ScanIndexForward=False, Limit=1), SERVED),
    "a page of two, then the next": (pk(Limit=2, ExclusiveStartKey={"PK": s("P"), "SK": s("ab")}), SERVED),
    "backwards from a key": (pk(ScanIndexForward=False, ExclusiveStartKey={"PK": s("P"), "SK": s("b")}), SERVED),
    "from a key that is not there": (pk(ExclusiveStartKey={"PK": s("P"), "SK": s("aa")}), SERVED),
    "a limit the partition meets exactly": (pk(Limit=7), SERVED),
    "a missing partition": (pk("nope"), SERVED),
    "after": (pk(condition=" AND SK > :s", values={":s": s("ab")}), SERVED),
    "up to, limited": (pk(condition=" AND SK <= :s", values={":s": s("b")}, Limit=2), SERVED),
    "a limit met before the non-matching tail": (pk(condition=" AND SK < :s", values={":s": s("ab")}, Limit=2), SERVED),
    "begins_with": (pk(condition=" AND begins_with(SK, :s)", values={":s": s("a")}), SERVED),
    "between": (pk(condition=" AND SK BETWEEN :a AND :b", values={":a": s("ab"), ":b": s("ba")}), SERVED),
    "through placeholders, projected": (
        {
            "KeyConditionExpression": "#k = :p AND #s >= :s",
            "ExpressionAttributeNames": {"#k": "PK", "#s": "SK", "#n": "n"},
            "ExpressionAttributeValues": {":p": s("P"), ":s": s("b")},
            "ProjectionExpression": "#n, ss, gone",
        },
        SERVED,
    ),
    "between, bounds reversed": (
        pk(condition=" AND SK BETWEEN :a AND :b", values={":a": s("b"), ":b": s("a")}),
        DECLINED,
    ),
    "a number for the partition": (
        {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"N": "1"}}},
        DECLINED,
    ),
    "the sort key first": (
        pk(condition="", KeyConditionExpression="SK = :s AND PK = :p", values={":s": s("a")}),
        DECLINED,
    ),
    "another attribute": (pk(condition=" AND n > :s", values={":s": s("a")}), DECLINED),
    "an unused value": (pk(values={":x": s("x")}), DECLINED),
    "a filter": (pk(FilterExpression="n > :n", values={":n": {"N": "2"}}), SERVED),
    "a filter after the limit": (pk(FilterExpression="n > :n", values={":n": {"N": "2"}}, Limit=4), SERVED),
    "a filter, counted": (pk(FilterExpression="contains(ss, :x)", values={":x": s("x")}, Select="COUNT"), SERVED),
    "a filter on the sort key": (pk(FilterExpression="SK > :s", values={":s": s("b")}), DECLINED),
    "a filter DynamoDB refuses": (pk(FilterExpression="n < :t", values={":t": {"BOOL": True}}), DECLINED),
    "an index": (
        {
            "IndexName": "ByLiveKind",
            "KeyConditionExpression": "live = :l",
            "ExpressionAttributeValues": {":l": s("LIVE")},
        },
        SERVED,
    ),
    "a start key of another partition": (pk(ExclusiveStartKey={"PK": s("Q"), "SK": s("a")}), DECLINED),
    "Select COUNT": (pk(Select="COUNT"), SERVED),
    "Select COUNT, limited": (pk(Select="COUNT", Limit=3), SERVED),
    "Select COUNT with a projection": (pk(Select="COUNT", ProjectionExpression="n"), DECLINED),
    "Select ALL_ATTRIBUTES": (pk(Select="ALL_ATTRIBUTES"), DECLINED),
}


@pytest.fixture(scope="module")
def clients(engine_dynamodb: EmbeddedDynamoDB) -> tuple[Any, Any, str, str]:
    """The engine's client, moto's, and a table for each holding ITEMS (set through moto)."""
    fast, plain, tables = compared_tables(engine_dynamodb, "query", 2, ITEMS)
    return fast, plain, tables[0], tables[1]


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_queries_a_partition_as_moto_does(clients, engine_dynamodb, case):
    check_query_against_moto(clients, engine_dynamodb.item_engine, *CASES[case])


_BOUNDS = st.sampled_from([*SORT_KEYS, "aa", "bz", "d", *SORT_KEYS, ""])  # "": DynamoDB's refusal, moto's answer
_CONDITIONS = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(["=", "<", "<=", ">", ">="]), _BOUNDS),
    st.tuples(st.just("begins_with"), _BOUNDS),
    st.tuples(st.just("BETWEEN"), _BOUNDS, _BOUNDS),
)
_PARTS = st.fixed_dictionaries(
    {
        "partition": st.sampled_from(["P", "P", "P", "Q", "R"]),
        "hidden": st.booleans(),  # the key names through placeholders
        "condition": _CONDITIONS,
        "limit": st.one_of(st.none(), st.integers(1, 8)),
        "forward": st.one_of(st.none(), st.booleans()),
        "consistent": st.one_of(st.none(), st.booleans()),
        "start": st.one_of(st.none(), st.none(), st.tuples(st.sampled_from(["same"] * 5 + ["Q"]), _BOUNDS)),
        "projection": st.one_of(
            st.none(), st.lists(st.sampled_from(["n", "ss", "SK", "gone"]), min_size=1, max_size=3)
        ),
        "unused_value": st.sampled_from([False] * 15 + [True]),
    }
)


def drawn_request(parts: dict[str, Any]) -> dict[str, Any]:
    names: dict[str, str] = {}
    key, sort = ("#k", "#s") if parts["hidden"] else ("PK", "SK")
    if parts["hidden"]:
        names.update({"#k": "PK"})
    values: dict[str, Any] = {":p": s(parts["partition"])}
    text = f"{key} = :p"
    condition = parts["condition"]
    if condition is not None:
        if parts["hidden"]:
            names["#s"] = "SK"
        bounds = [f":b{index}" for index in range(len(condition) - 1)]
        values.update({placeholder: s(bound) for placeholder, bound in zip(bounds, condition[1:], strict=True)})
        if condition[0] == "begins_with":
            text += f" AND begins_with({sort}, {bounds[0]})"
        elif condition[0] == "BETWEEN":
            text += f" AND {sort} BETWEEN {bounds[0]} AND {bounds[1]}"
        else:
            text += f" AND {sort} {condition[0]} {bounds[0]}"
    request: dict[str, Any] = {"KeyConditionExpression": text}
    if parts["projection"] is not None:
        request["ProjectionExpression"] = ", ".join(parts["projection"])
    for name, parameter in (("limit", "Limit"), ("forward", "ScanIndexForward"), ("consistent", "ConsistentRead")):
        if parts[name] is not None:
            request[parameter] = parts[name]
    if parts["start"] is not None:
        partition = parts["partition"] if parts["start"][0] == "same" else parts["start"][0]
        request["ExclusiveStartKey"] = {"PK": s(partition), "SK": s(parts["start"][1])}
    if parts["unused_value"]:
        values[":unused"] = s("x")
    request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    return request


def test_the_engine_answers_drawn_queries_as_moto_does(clients, engine_dynamodb):
    check_queries_against_moto(clients, engine_dynamodb.item_engine, _PARTS, drawn_request, EXAMPLES)
