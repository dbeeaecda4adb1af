"""Requests for the item engine's differential test (tests/test_engine_fuzz.py): hypothesis strategies for a
starting item and for condition, update and projection expressions as small trees, rendered to DynamoDB's text.
Mostly within the grammar the engine answers (local_gateway/dynamodb/expressions.py), and some beyond it (BETWEEN, IN,
attribute_type, nested paths, list_append, numbers DynamoDB would rewrite, unused placeholders), which the
engine must leave to moto.

A tree is tuples: an operand is ("path", ref), ("value", attribute value) or ("size", ref), where a ref is
(attribute name, through a `#placeholder`?); a condition is ("cmp", operator, left, right), ("fn", function,
ref, operand or None), ("and"|"or", a, b), ("not", a), ("paren", a), or one beyond the grammar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

KEY = {"PK": {"S": "k"}, "SK": {"S": "k"}}
NAMES = ("PK", "a", "b", "s", "n", "t", "l", "m", "ss", "ns", "live")  # live: an index key (S)
OPERATORS = ("=", "<>", "<", "<=", ">", ">=")
ORDERINGS = ("<", "<=", ">", ">=")


def _now_and_then(times: int) -> st.SearchStrategy[bool]:
    """True once in about `times + 1` draws; False is the simplest, where hypothesis starts and shrinks to."""
    return st.sampled_from([False] * times + [True])


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], times: int) -> st.SearchStrategy[Any]:
    """`rare` once in about `times + 1` draws (st.one_of weighs its strategies alike, repeated or not)."""
    return _now_and_then(times).flatmap(lambda now: rare if now else common)


_strings = st.text(alphabet="abk", min_size=1, max_size=3)
_integers = st.integers(-3, 12).map(str)


_sets = st.one_of(
    st.lists(_strings, min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(_integers, min_size=1, max_size=3, unique=True).map(lambda v: {"NS": v}),
)


def _values(numbers: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    scalars = st.one_of(
        _strings.map(lambda v: {"S": v}),
        numbers.map(lambda v: {"N": v}),
        st.booleans().map(lambda v: {"BOOL": v}),
        st.just({"NULL": True}),
    )
    return st.one_of(
        scalars,
        scalars,
        _sets,
        st.lists(scalars, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.sampled_from("ab"), scalars, max_size=2).map(lambda v: {"M": v}),
    )


# A starting item is one DynamoDB could hold: its numbers as DynamoDB writes them back (moto keeps what it is
# given, which DynamoDB never would: "1e2" is "100" there). A request's values go beyond, for the engine to decline.
_STORED = _values(_mostly(_integers, st.sampled_from(["2.5", "-0.5"]), 4))
VALUES = _values(_mostly(_mostly(_integers, st.just("2.5"), 4), st.sampled_from(["1.50", "1e2", "9" * 39]), 8))
REFS = st.tuples(st.sampled_from(NAMES), st.booleans())
TARGETS = st.tuples(_mostly(st.sampled_from(NAMES[1:]), st.just("PK"), 10), st.booleans())  # a key, now and then
_OPERANDS = st.one_of(
    REFS.map(lambda ref: ("path", ref)),
    REFS.map(lambda ref: ("path", ref)),
    VALUES.map(lambda value: ("value", value)),
    VALUES.map(lambda value: ("value", value)),
    REFS.map(lambda ref: ("size", ref)),
)
_WITHIN = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(OPERATORS), _OPERANDS, _OPERANDS),
    st.tuples(st.just("cmp"), st.sampled_from(OPERATORS), _OPERANDS, _OPERANDS),
    st.tuples(st.just("fn"), st.sampled_from(["attribute_exists", "attribute_not_exists"]), REFS, st.none()),
    st.tuples(st.just("fn"), st.sampled_from(["begins_with", "contains"]), REFS, _OPERANDS),
)
_BEYOND = st.one_of(
    st.tuples(st.just("between"), _OPERANDS, _OPERANDS, _OPERANDS),
    st.tuples(st.just("in"), _OPERANDS, _OPERANDS),
    st.tuples(st.just("fn"), st.just("attribute_type"), REFS, st.just(("value", {"S": "N"}))),
    st.tuples(st.just("nested"), st.sampled_from(OPERATORS), VALUES.map(lambda value: ("value", value))),
)
CONDITIONS = st.recursive(
    _mostly(_WITHIN, _BEYOND, 8),
    lambda inner: st.one_of(
        st.tuples(st.just("and"), inner, inner),
        st.tuples(st.just("or"), inner, inner),
        st.tuples(st.just("not"), inner),
        st.tuples(st.just("paren"), inner),
    ),
    max_leaves=4,
)
_SET_SOURCES = st.one_of(
    VALUES.map(lambda value: ("value", value)),
    REFS.map(lambda ref: ("path", ref)),
    st.tuples(st.just("ine"), REFS, VALUES.map(lambda value: ("value", value))),
)
_SET_VALUES = _mostly(
    st.one_of(_SET_SOURCES, st.tuples(st.just("arith"), st.sampled_from("+-"), _SET_SOURCES, _SET_SOURCES)),
    st.tuples(st.just("list_append"), REFS, VALUES.map(lambda value: ("value", value))),  # beyond
    8,
)
_ADDED = _mostly(st.one_of(_integers.map(lambda v: {"N": v}), _sets), VALUES, 4)
UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "SET": st.lists(st.tuples(TARGETS, _SET_VALUES), min_size=1, max_size=2),
        "REMOVE": st.lists(TARGETS, min_size=1, max_size=2),
        "ADD": st.lists(st.tuples(TARGETS, _ADDED), min_size=1, max_size=2),
        "DELETE": st.lists(st.tuples(TARGETS, _mostly(_sets, VALUES, 4)), min_size=1, max_size=2),
    },
).filter(bool)
_ATTRIBUTES = st.dictionaries(st.sampled_from(NAMES[1:]), VALUES, max_size=5)
_STORED_ATTRIBUTES = st.dictionaries(st.sampled_from(NAMES[1:]), _STORED, max_size=5)
STARTS = st.one_of(st.none(), _STORED_ATTRIBUTES, _STORED_ATTRIBUTES, _STORED_ATTRIBUTES)


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    """An operation, the item under KEY before it (None: no item) and the request's parts as trees."""
    operation = draw(st.sampled_from(["UpdateItem"] * 6 + ["PutItem"] * 2 + ["DeleteItem", "GetItem"]))
    case: dict[str, Any] = {"operation": operation, "start": draw(STARTS)}
    if operation != "GetItem" and not draw(_now_and_then(3)):
        case["condition"] = draw(CONDITIONS)
    if operation == "UpdateItem":
        case["update"] = draw(UPDATES)
        if not draw(_now_and_then(9)):  # two actions on one attribute, now and then (DynamoDB's refusal, moto's)
            case["update"] = _one_action_each(case["update"])
        case["return"] = draw(st.sampled_from(["NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"]))
    elif operation == "PutItem":
        case["item"] = draw(_ATTRIBUTES)
        if draw(_now_and_then(15)):
            case["item"][""] = {"N": "1"}  # an empty attribute name: DynamoDB refuses it
        case["return"] = draw(st.sampled_from(["NONE", "ALL_OLD"]))
    elif operation == "DeleteItem":
        case["return"] = draw(st.sampled_from(["NONE", "ALL_OLD"]))
    elif draw(st.booleans()):
        case["projection"] = draw(st.lists(REFS, min_size=1, max_size=3))
    if operation != "GetItem" and draw(st.booleans()):
        case["on_failure"] = "ALL_OLD"
    case["empty_name"] = draw(_now_and_then(25))  # a placeholder for "" (DynamoDB refuses it)
    case["unused_value"] = draw(_now_and_then(30))  # beyond: moto's error, left to it
    return case


def _one_action_each(update: dict[str, list[Any]]) -> dict[str, list[Any]]:
    seen: set[str] = set()
    kept: dict[str, list[Any]] = {}
    for clause, actions in update.items():
        for action in actions:
            name = (action if clause == "REMOVE" else action[0])[0]
            if name not in seen:
                seen.add(name)
                kept.setdefault(clause, []).append(action)
    return kept


@dataclass
class Rendered:
    """Expression texts, with the placeholders they use."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def ref(self, ref: tuple[str, bool]) -> str:
        name, hidden = ref
        if not hidden and name:
            return name
        placeholder = f"#{name or 'empty'}"
        self.names[placeholder] = name
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def operand(self, operand: tuple[Any, ...]) -> str:
        kind, content = operand
        if kind == "path":
            return self.ref(content)
        if kind == "size":
            return f"size({self.ref(content)})"
        return self.value(content)

    def condition(self, node: tuple[Any, ...]) -> str:
        kind = node[0]
        if kind in ("and", "or"):
            left, right = (self._inside(child, kind) for child in node[1:])
            return f"{left} {kind.upper()} {right}"
        if kind == "not":
            return f"NOT {self._inside(node[1], kind)}"
        if kind == "paren":
            return f"({self.condition(node[1])})"
        if kind == "cmp":
            return f"{self.operand(node[2])} {node[1]} {self.operand(node[3])}"
        if kind == "fn":
            argument = "" if node[3] is None else f", {self.operand(node[3])}"
            return f"{node[1]}({self.ref(node[2])}{argument})"
        if kind == "between":
            return f"{self.operand(node[1])} BETWEEN {self.operand(node[2])} AND {self.operand(node[3])}"
        if kind == "in":
            return f"{self.operand(node[1])} IN ({self.operand(node[2])})"
        assert kind == "nested"
        return f"m.a {node[1]} {self.operand(node[2])}"

    def _inside(self, child: tuple[Any, ...], parent: str) -> str:
        """A child in parentheses where DynamoDB's precedence (NOT, then AND, then OR) needs them."""
        binds_less = {"not": ("and", "or"), "and": ("or",), "or": ()}[parent]
        text = self.condition(child)
        return f"({text})" if child[0] in binds_less else text

    def update(self, clauses: dict[str, list[Any]]) -> str:
        parts = []
        for clause, actions in clauses.items():
            if clause == "SET":
                texts = [f"{self.ref(ref)} = {self.set_value(value)}" for ref, value in actions]
            elif clause == "REMOVE":
                texts = [self.ref(ref) for ref in actions]
            else:
                texts = [f"{self.ref(ref)} {self.value(value)}" for ref, value in actions]
            parts.append(f"{clause} {', '.join(texts)}")
        return " ".join(parts)

    def set_value(self, node: tuple[Any, ...]) -> str:
        kind = node[0]
        if kind == "arith":
            return f"{self.set_value(node[2])} {node[1]} {self.set_value(node[3])}"
        if kind in ("ine", "list_append"):
            name = "if_not_exists" if kind == "ine" else kind
            return f"{name}({self.ref(node[1])}, {self.set_value(node[2])})"
        return self.operand(node)


def request(case: dict[str, Any]) -> dict[str, Any]:
    """The case's request, less its TableName."""
    rendered = Rendered()
    params: dict[str, Any] = {}
    if case["operation"] == "PutItem":
        params["Item"] = {**KEY, **case["item"]}
    else:
        params["Key"] = KEY
    if "condition" in case:
        params["ConditionExpression"] = rendered.condition(case["condition"])
    if "update" in case:
        params["UpdateExpression"] = rendered.update(case["update"])
    if "projection" in case:
        params["ProjectionExpression"] = ", ".join(rendered.ref(ref) for ref in case["projection"])
    if case.get("return", "NONE") != "NONE":
        params["ReturnValues"] = case["return"]
    if "on_failure" in case:
        params["ReturnValuesOnConditionCheckFailure"] = case["on_failure"]
    if case["empty_name"] and rendered.names:
        rendered.names[next(iter(rendered.names))] = ""
    if case["unused_value"]:
        rendered.value({"N": "1"})
    if rendered.names:
        params["ExpressionAttributeNames"] = rendered.names
    if rendered.values:
        params["ExpressionAttributeValues"] = rendered.values
    return params
