"""A Query's page as moto makes it (moto 5.2.5's `Table.query`), from the items of one partition in order: of a table
or of an index (local_gateway/dynamodb/queries.py picks them).

moto goes through the partition and stops at the next item, matching the key condition or not, once it holds
`Limit` items or that item would pass 1 MB; what it holds is the page read (`ScannedCount`, and its last item's key
the `LastEvaluatedKey`). Then, as DynamoDB does, it keeps the attributes the index projects, applies the
`FilterExpression` (`Count`: what passes it) and the `ProjectionExpression`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.expressions import Unsupported, Values
from local_gateway.dynamodb.item_sizes import size_bound
from local_gateway.dynamodb.moto_items import MAX_ITEM_BYTES, answer_attributes

if TYPE_CHECKING:
    from moto.dynamodb.models.dynamo_type import Item

    from local_gateway.dynamodb.conditions import Condition

PAGE_BYTES = 1_000_000  # moto's cut of a page (DynamoDB's 1 MB)
SURELY_SMALL = PAGE_BYTES // MAX_ITEM_BYTES  # this many items of at most 400 KB fit in a page
Entry = tuple[str, "Item", int | None]  # the key condition's sort value, the item, a bound on its size (None: unknown)


@dataclass(frozen=True)
class Reading:
    """What a page keeps of the items it reads, and how it names its last one."""

    key_names: tuple[str, ...]  # the LastEvaluatedKey's attributes: the table's keys, then the index's
    projected: frozenset[str] | None  # the index's attributes (None: all)
    condition: Condition | None  # the FilterExpression
    condition_reads: frozenset[str]
    values: Values
    projection: tuple[str, ...] | None
    count_only: bool  # Select=COUNT


def page(
    entries: Iterable[Entry], count: int, holds: Callable[[str], bool], limit: int | None, reading: Reading
) -> dict[str, Any]:
    """The page of `count` entries in order (read only as far as the page goes)."""
    taken, cut = _taken(entries, count > SURELY_SMALL, holds, limit)
    # (the filter and the ProjectionExpression read only what the index projects: queries.py checks it)
    wanted = reading.projected if reading.projection is None and not reading.count_only else None
    kept = [_projected(item.attrs, wanted) for item in taken]
    if reading.condition is not None:
        kept = [attributes for attributes in kept if _passes(attributes, reading)]
    answer: dict[str, Any] = {"Count": len(kept), "ScannedCount": len(taken)}
    if not reading.count_only:
        answer["Items"] = [answer_attributes(attributes, reading.projection) for attributes in kept]
    if cut:
        answer["LastEvaluatedKey"] = {name: taken[-1].attrs[name].to_regular_json() for name in reading.key_names}
    return answer


def _taken(
    entries: Iterable[Entry], sized: bool, holds: Callable[[str], bool], limit: int | None
) -> tuple[list[Item], bool]:
    """The items a page reads, and whether it was cut. Sizes are bounded cheaply (item_sizes.py), unless too few
    items to pass 1 MB (not `sized`); moto's own `Item.size()` is worked out only once the bounds pass 1 MB."""
    taken: list[Item] = []
    bound = 0  # at least the size of the items taken
    exact: int | None = None  # their size as moto measures it, once needed
    for text, item, item_bound in entries:
        if len(taken) == limit:
            return taken, True
        if sized:
            this_bound = size_bound(item.attrs) if item_bound is None else item_bound
            if exact is None and bound + this_bound > PAGE_BYTES:
                exact = sum(earlier.size() for earlier in taken)
            if exact is not None and exact + item.size() > PAGE_BYTES:
                if not taken:
                    raise Unsupported("a first item beyond a page")  # moto fails on it: its own answer
                return taken, True
        if holds(text):
            taken.append(item)
            if sized:
                bound += this_bound
                if exact is not None:
                    exact += item.size()
    return taken, False


def _projected(attributes: dict[str, Any], projected: frozenset[str] | None) -> dict[str, Any]:
    if projected is None:
        return attributes
    return {name: value for name, value in attributes.items() if name in projected}


def _passes(attributes: dict[str, Any], reading: Reading) -> bool:
    assert reading.condition is not None
    names = reading.condition_reads & attributes.keys()
    read = {name: (attributes[name].type, attributes[name].value) for name in names}
    return reading.condition(read, reading.values)
