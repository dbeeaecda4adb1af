"""The item engine's global secondary indexes (local_gateway/dynamodb/queries.py reads them): each index's
partitions in moto's order, kept as items are written, so that a Query of an index reads its partition alone.

moto keeps no index: it answers a Query of one by sorting every item of the table (`Table.query`), then picking
those that carry the index's keys. Here an index is built from the table's items when first read, then kept by
the engine's own writes (`moto_items.write_item` calls `item_replaced`). moto writes in place (an UpdateItem changes
its item's attributes), so a request moto answers, whichever way it came in (moto_transports.py, http_port.py),
calls `moto_answered`, and each index is built again on its next read: O(table) once, where moto sorts the table
for every Query.

An index holds an item when the item has both of its keys (a sparse index leaves the others out), ordered as moto
orders them: by the index's sort key, then the table's partition and sort keys. Only indexes whose keys and the
table's are all strings are kept; an item whose index key is of another type makes its index unsure (None).
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

Order = tuple[str, str, str]  # the index's sort key, the table's partition key, the table's sort key
_generation = 0  # bumped by each request moto answers


MOTO_READS = frozenset({"GetItem", "BatchGetItem", "Query"})  # what moto answers without writing


def moto_answered(operation: str) -> None:
    """moto answered a request: unless it was a read, it may have written anything, in place, and every index is
    built again when next read."""
    if operation in MOTO_READS:
        return
    global _generation
    _generation += 1


@dataclass
class Partition:
    order: list[Order] = field(default_factory=list)  # sorted
    items: dict[Order, tuple[Item, int | None]] = field(default_factory=dict)  # each item, its size_bound once known


@dataclass
class Index:
    name: str
    hash_name: str  # the index's partition key
    range_name: str  # its sort key
    projected: frozenset[str] | None  # the attributes it projects (None: ALL)
    keys: tuple[str, str]  # the table's partition and sort key
    partitions: dict[str, Partition] = field(default_factory=dict)
    sure: bool = True  # False: an item whose index key is not a string; moto answers

    def order_of(self, item: Item) -> tuple[str, Order] | None:
        """The item's partition and place in this index, or None when it is not in it."""
        hash_value, range_value = item.attrs.get(self.hash_name), item.attrs.get(self.range_name)
        if hash_value is None or range_value is None:
            return None
        if hash_value.type != "S" or range_value.type != "S":
            self.sure = False
            return None
        return hash_value.value, (range_value.value, item.attrs[self.keys[0]].value, item.attrs[self.keys[1]].value)

    def add(self, item: Item) -> None:
        place = self.order_of(item)
        if place is None:
            return
        partition = self.partitions.setdefault(place[0], Partition())
        if place[1] not in partition.items:
            bisect.insort(partition.order, place[1])
        partition.items[place[1]] = (item, None)

    def remove(self, item: Item) -> None:
        place = self.order_of(item)
        partition = None if place is None else self.partitions.get(place[0])
        if place is None or partition is None or partition.items.pop(place[1], None) is None:
            return
        del partition.order[bisect.bisect_left(partition.order, place[1])]
        if not partition.items:
            del self.partitions[place[0]]


# each table's indexes (those read since), each with the generation it was built in
_INDEXES: weakref.WeakKeyDictionary[Table, dict[str, tuple[int, Index | None]]] = weakref.WeakKeyDictionary()


def index_of(table: Table, name: str) -> Index | None:
    """The table's global secondary index of that name, current, or None when the engine does not keep it."""
    indexes = _INDEXES.setdefault(table, {})
    built = indexes.get(name)
    if built is None or built[0] != _generation:
        built = indexes[name] = (_generation, _built(table, name))
    index = built[1]
    return index if index is not None and index.sure else None


def item_replaced(table: Table, old: Item | None, new: Item | None) -> None:
    """The engine replaced `old` with `new` (either None) in the table: its indexes follow (those moto wrote
    since they were built are built again when next read)."""
    for generation, index in _INDEXES.get(table, {}).values():
        if index is None or generation != _generation:
            continue
        if old is not None:
            index.remove(old)
        if new is not None:
            index.add(new)


def _built(table: Table, name: str) -> Index | None:
    definition = next((index for index in table.global_indexes or [] if index.name == name), None)
    index = None if definition is None else _index(table, definition)
    if index is None:
        return None
    places: dict[str, list[tuple[Order, Item]]] = {}
    for item in _items(table):
        place = index.order_of(item)
        if place is not None:
            places.setdefault(place[0], []).append((place[1], item))
    for value, entries in places.items():
        entries.sort(key=lambda entry: entry[0])
        index.partitions[value] = Partition(
            [order for order, _ in entries], {order: (item, None) for order, item in entries}
        )
    return index


def _index(table: Table, definition: Any) -> Index | None:
    """An index the engine keeps: one partition key and one sort key, strings as the table's keys are."""
    schema = {key["KeyType"]: key["AttributeName"] for key in definition.schema}
    types = {attribute["AttributeName"]: attribute["AttributeType"] for attribute in table.attr}
    names = [schema.get("HASH"), schema.get("RANGE"), table.hash_key_attr, table.range_key_attr]
    if len(definition.schema) != 2 or any(name is None or types.get(name) != "S" for name in names):
        return None
    kind = (definition.projection or {}).get("ProjectionType", "ALL")
    projected = None
    if kind in ("KEYS_ONLY", "INCLUDE"):
        extra = definition.projection.get("NonKeyAttributes", []) if kind == "INCLUDE" else []
        projected = frozenset([*names, *extra])
    elif kind != "ALL":
        return None
    return Index(definition.name, schema["HASH"], schema["RANGE"], projected, (table.hash_key_attr, str(names[3])))


def _items(table: Table) -> list[Item]:
    return [item for partition in table.items.values() for item in partition.values()]
