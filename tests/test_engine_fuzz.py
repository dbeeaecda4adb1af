"""The item engine against moto alone on requests hypothesis draws (tests/engine_fuzz_grammar.py): each runs from
the same starting item through the engine (the direct transport, fast path on) and through moto (fast path off), and
both must give the same answer, or error, and leave the same item; but where the engine answers as DynamoDB and
moto does not, which dynamodb_answer() recognises one by one (docs/embedded-dynamodb.md lists them). A request
the engine declines is moto's on both sides, so only the engine's own answers can differ.

Bounded for CI: EXAMPLES drawn the same way on every run (derandomize), no example database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, reject

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB
from tests.engine_fuzz_grammar import KEY, ORDERINGS, cases, request
from tests.support.dynamodb import as_dynamodb_lists_them, compared_tables, differential

EXAMPLES = 200
Outcome = tuple[tuple[Any, ...], Any]  # (("ok", answer) | ("error", code, message, item) | ("crash", text), item)
INVALID = "Invalid ConditionExpression: "
OPERAND_TYPE = INVALID + "Incorrect operand type for operator or function; operator or function: {}, operand type: {}"
DISTINCT = (
    INVALID + "The first operand must be distinct from the remaining operands for this operator or function; "
    "operator: {}, first operand: [{}]"
)
EMPTY_NAME = "ExpressionAttributeNames contains invalid value: Empty attribute name for key {}"
EMPTY_ITEM_NAME = "One or more parameter values were invalid: Empty attribute name"


@pytest.fixture(scope="module")
def clients(engine_dynamodb: EmbeddedDynamoDB) -> tuple[Any, Any, list[str]]:
    """The engine's client, moto's, and a table for each; moto's client sets and reads both tables."""
    return compared_tables(engine_dynamodb, "fuzz", 2)


def test_the_engine_answers_drawn_requests_as_moto_does_or_as_dynamodb_where_moto_differs(clients, engine_dynamodb):
    fast, plain, (engine_table, moto_table) = clients
    engine = engine_dynamodb.item_engine
    seen: Counter[str] = Counter()

    @differential(EXAMPLES, HealthCheck.filter_too_much)
    @given(case=cases())
    def check(case: dict[str, Any]) -> None:
        params = request(case)
        if not (_started(plain, engine_table, case["start"]) and _started(plain, moto_table, case["start"])):
            reject()  # a starting item moto refuses (an index key of another type)
        before = _unordered(_read(plain, engine_table))
        served = sum(engine.served.values())
        through_engine = _outcome(fast, plain, engine_table, case["operation"], params)
        served = sum(engine.served.values()) - served
        through_moto = _outcome(plain, plain, moto_table, case["operation"], params)
        seen["served" if served else "declined"] += 1
        if through_engine == through_moto:
            return
        assert served, f"declined, yet answered otherwise than moto: {params}"

        def rerun(other: dict[str, Any]) -> Outcome:
            assert _started(plain, moto_table, case["start"])
            return _outcome(plain, plain, moto_table, case["operation"], request(other))

        expected, differences = dynamodb_answer(case, params, before, through_engine, through_moto, rerun)
        assert differences, f"an unexplained difference: {params}\nengine: {through_engine}\nmoto: {through_moto}"
        assert through_engine == expected, f"{differences}: {params}"
        seen.update(differences)

    check()
    assert seen["served"] >= EXAMPLES // 3, seen  # the engine answered enough of them for the test to mean much
    assert seen.keys() - {"served", "declined"}, seen  # and the known differences were met, and recognised


def dynamodb_answer(
    case: dict[str, Any],
    params: dict[str, Any],
    before: Any,
    through_engine: Outcome,
    through_moto: Outcome,
    rerun: Callable[[dict[str, Any]], Outcome],
) -> tuple[Outcome, list[str]]:
    """DynamoDB's answer to a request the engine answered otherwise than moto, and the known differences that
    explain it (none: the difference is unexplained)."""
    # What DynamoDB refuses before it reads the item, wherever it stands in the request (moto evaluates only
    # the branch it takes, or stores the name): the engine answers one such refusal, and declines two.
    refusals = _refusals(case, params)
    if len(refusals) == 1:
        return (("error", "ValidationException", refusals[0], None), before), ["refused before reading the item"]
    differences: list[str] = []
    # What moto misjudges, DynamoDB answers as moto answers the same request written so that moto judges it
    # (_as_moto_judges_it): `NOT NOT x` (moto cannot parse it) as `NOT (NOT x)`; a comparison with a missing
    # attribute (moto: size() of it fails, two missing attributes are equal) guarded by attribute_exists; a number
    # compared with a boolean (moto: 1 = true) as its constant answer; size() as contains' operand (moto cannot
    # parse it) as its value; a key read on the right of SET (moto: "Cannot update attribute PK") as its value.
    rewritten, reasons = _as_moto_judges_it(case)
    (result, after) = rerun(rewritten) if reasons else through_moto
    differences += reasons
    # A REMOVE or DELETE alone on a missing item creates nothing and returns nothing (moto: the key alone).
    if case["start"] is None and set(case.get("update", {"SET": 0})) <= {"REMOVE", "DELETE"} and result[0] == "ok":
        result, after = ("ok", {name: value for name, value in result[1].items() if name != "Attributes"}), None
        differences.append("a REMOVE or DELETE alone on a missing item")
    # UPDATED_OLD and UPDATED_NEW list every attribute the update names (moto: only those whose value changed).
    if case.get("return", "").startswith("UPDATED_") and result[0] == "ok" and through_engine[0][0] == "ok":
        result = ("ok", as_dynamodb_lists_them(params, result[1], through_engine[0][1]))
        differences.append("UPDATED_OLD and UPDATED_NEW")
    return (result, after), differences


def _refusals(case: dict[str, Any], params: dict[str, Any]) -> list[str]:
    names = params.get("ExpressionAttributeNames", {})
    refusals = [EMPTY_NAME.format(key) for key, name in names.items() if name == ""][:1]
    if "condition" in case:
        refusals += _condition_refusals(case["condition"], names)[:1]
    if "" in case.get("item", {}):
        refusals.append(EMPTY_ITEM_NAME)
    return refusals


def _condition_refusals(node: tuple[Any, ...], names: dict[str, str]) -> list[str]:
    """DynamoDB's static checks of a condition, in the order it reports them: condition by condition from the
    left; in each, the same attribute on both sides, then each operand's type as the request states it."""
    kind = node[0]
    if kind in ("and", "or", "not", "paren"):
        return [refusal for child in node[1:] for refusal in _condition_refusals(child, names)]
    refusals = []
    if kind == "cmp":
        _, operator, left, right = node
        if left[0] == right[0] == "path" and _name(left[1], names) == _name(right[1], names):
            refusals.append(DISTINCT.format(operator, _name(left[1], names)))
        if operator in ORDERINGS:
            refusals += [
                OPERAND_TYPE.format(operator, kind)
                for kind in (_stated_type(left), _stated_type(right))
                if kind not in (None, "S", "N", "B")
            ]
    elif kind == "fn" and node[3] is not None and node[1] in ("begins_with", "contains"):
        _, function, ref, argument = node
        if argument[0] == "path" and _name(argument[1], names) == _name(ref, names):
            refusals.append(DISTINCT.format(function, _name(ref, names)))
        stated = _stated_type(argument)
        if function == "begins_with" and stated not in (None, "S", "B"):
            refusals.append(OPERAND_TYPE.format(function, stated))
    return refusals


def _stated_type(operand: tuple[str, Any]) -> str | None:
    """An operand's type as the request states it: a value's, size()'s (a number); a path's is the item's."""
    if operand[0] == "value":
        return next(iter(operand[1]))
    return "N" if operand[0] == "size" else None


def _name(ref: tuple[str, bool], names: dict[str, str]) -> str:
    name, hidden = ref
    return names.get(f"#{name or 'empty'}", name) if hidden else name


def _as_moto_judges_it(case: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    reasons: set[str] = set()
    rewritten = dict(case)
    if "condition" in case:
        item = {} if case["start"] is None else {**KEY, **case["start"]}
        rewritten["condition"] = _judged(case["condition"], item, reasons, in_parentheses=False)
    if "update" in case and case["start"] is not None and "SET" in case["update"]:
        actions = [(ref, _keys_read(value, reasons)) for ref, value in case["update"]["SET"]]
        rewritten["update"] = {**case["update"], "SET": actions}
    return rewritten, sorted(reasons)


def _judged(node: tuple[Any, ...], item: dict[str, Any], reasons: set[str], in_parentheses: bool) -> tuple[Any, ...]:
    kind, present = node[0], set(item)
    if kind == "not" and node[1][0] == "not":
        reasons.add("NOT NOT")
        return ("not", ("paren", _judged(node[1], item, reasons, in_parentheses=True)))
    if kind in ("and", "or", "not", "paren"):
        return (kind, *(_judged(child, item, reasons, kind == "paren") for child in node[1:]))
    if kind == "fn" and node[1] == "contains" and node[3][0] == "size":
        # moto cannot parse size() as a function's operand: its value in its place (none: contains is false,
        # as attribute_exists of the missing attribute is)
        reasons.add("size() as an operand of contains")
        sized = node[3][1]
        if sized[0] not in present:
            return ("fn", "attribute_exists", sized, None)
        return ("fn", "contains", node[2], ("value", {"N": str(len(next(iter(item[sized[0]].values()))))}))
    if kind != "cmp":
        return node
    if node[1] in ("=", "<>") and {_type(operand, item) for operand in node[2:]} == {"N", "BOOL"}:
        # moto compares a number and a boolean as Python does (1 = true holds): DynamoDB's answer for two types
        reasons.add("a number compared with a boolean")
        constant = ("or" if node[1] == "<>" else "and", *_EXISTS)  # true, or false, whatever the item
        return constant if in_parentheses else ("paren", constant)
    if node[1] == "<>":
        return node
    paths = [operand[1] for operand in node[2:] if operand[0] in ("path", "size")]
    if all(name in present for name, _ in paths):
        return node
    reasons.add("a comparison with a missing attribute")
    guarded: tuple[Any, ...] = node
    for ref in paths:
        guarded = ("and", ("fn", "attribute_exists", ref, None), guarded)
    return guarded if in_parentheses else ("paren", guarded)


_EXISTS = (("fn", "attribute_exists", ("PK", False), None), ("fn", "attribute_not_exists", ("PK", False), None))


def _type(operand: tuple[str, Any], item: dict[str, Any]) -> str | None:
    """An operand's type, the item's where the request does not state it (None: a missing attribute)."""
    if operand[0] == "path":
        return next(iter(item[operand[1][0]])) if operand[1][0] in item else None
    return _stated_type(operand) if operand[0] == "value" or operand[1][0] in item else None


def _keys_read(node: tuple[Any, ...], reasons: set[str]) -> tuple[Any, ...]:
    if node[0] in ("path", "ine") and node[1][0] == "PK":
        reasons.add("a key read on the right of SET")
        return ("value", KEY["PK"])
    if node[0] == "arith":
        return ("arith", node[1], _keys_read(node[2], reasons), _keys_read(node[3], reasons))
    return node


def _started(client: Any, table: str, start: dict[str, Any] | None) -> bool:
    """The table holding the starting item alone (or nothing), emptied in moto itself: what moto stored may be
    more than botocore reads back."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].items.clear()
    if start is None:
        return True
    try:
        client.put_item(TableName=table, Item={**KEY, **start})
    except ClientError:
        return False
    return True


def _outcome(client: Any, reader: Any, table: str, operation: str, params: dict[str, Any]) -> Outcome:
    try:
        answer = getattr(client, xform_name(operation))(TableName=table, **params)
        result: tuple[Any, ...] = (
            "ok",
            {name: value for name, value in answer.items() if name not in ("ResponseMetadata", "ConsumedCapacity")},
        )
    except ClientError as error:
        failure = error.response["Error"]
        result = ("error", failure["Code"], failure["Message"], error.response.get("Item"))
    except Exception as error:  # moto's own failures (a ValueError from its parser, say), as a value to compare
        result = ("crash", f"{type(error).__name__}: {error}")
    return _unordered(result), _unordered(_read(reader, table))


def _unordered(value: Any) -> Any:
    """Sets in one order: DynamoDB keeps none (moto writes a projected one sorted, the engine as stored)."""
    if isinstance(value, dict):
        return {
            key: sorted(content) if key in ("SS", "NS") and isinstance(content, list) else _unordered(content)
            for key, content in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_unordered(element) for element in value)
    return value


def _read(reader: Any, table: str) -> Any:
    try:
        return reader.get_item(TableName=table, Key=KEY, ConsistentRead=True).get("Item")
    except Exception as error:  # an item botocore cannot read back (an empty attribute name moto stored)
        return f"unreadable: {type(error).__name__}"
