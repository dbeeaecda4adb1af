"""The item engine's side of moto (local_gateway/dynamodb/item_engine.py): request values checked as plain ones, keys,
and items read from and written into moto's own tables (moto 5.2.5's Table.items, DynamoType and Item), so that
every way into the embedded DynamoDB sees the same items."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from local_gateway.dynamodb.expressions import MAX_DIGITS, Unsupported, Value
from local_gateway.dynamodb.indexes import item_replaced
from local_gateway.dynamodb.item_sizes import size_bound

if TYPE_CHECKING:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

MAX_ITEM_BYTES = 400_000
KEY_LIMITS = (2048, 1024)  # bytes: a partition key, a sort key (of the table or of an index)
# A number as DynamoDB writes it back: no exponent, no leading or trailing zero, no -0 (compared or added to,
# only an integer will do: local_gateway/dynamodb/expressions.py)
_IMMUTABLE = frozenset({"S", "N", "BOOL", "NULL"})
_NUMBER = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?\Z")


def request_value(value: Any) -> Value:
    """A request's attribute value as a (type, value) pair, if it is one the engine handles."""
    if not isinstance(value, dict) or len(value) != 1:
        raise Unsupported("not an attribute value")
    kind, content = next(iter(value.items()))
    if kind == "S" and isinstance(content, str) and content:
        return kind, content
    if kind == "N" and isinstance(content, str) and _NUMBER.match(content) and len(content) <= MAX_DIGITS:
        return kind, content  # written as DynamoDB writes numbers back, so moto's stored text is DynamoDB's too
    if (kind == "BOOL" and isinstance(content, bool)) or (kind == "NULL" and content is True):
        return kind, content
    if kind in ("SS", "NS") and isinstance(content, list) and content:
        elements = [request_value({kind[0]: element})[1] for element in content]
        if len(set(elements)) == len(elements):
            return kind, elements
    if kind in ("L", "M") and isinstance(content, list | dict):
        for element in content if isinstance(content, list) else content.values():
            request_value(element)
        return kind, content
    raise Unsupported(f"attribute value {kind}")


def key_names(table: Table) -> list[str]:
    return [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])


def key_of(table: Table, key: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    """moto's DynamoType for each part of a key the request gives exactly, with the table's types."""
    hash_name, range_name = table.hash_key_attr, table.range_key_attr
    if len(key) != (2 if range_name else 1) or hash_name not in key or (range_name and range_name not in key):
        raise Unsupported("not the table's key")
    hash_key = _key_part(key[hash_name], table.hash_key_type, KEY_LIMITS[0])
    return hash_key, (_key_part(key[range_name], table.range_key_type, KEY_LIMITS[1]) if range_name else None)


def _key_part(value: Any, kind: str | None, limit: int) -> DynamoType:
    found, text = request_value(value)
    # (a character is at most 4 bytes in UTF-8: most keys are measured without encoding them)
    if found != kind or kind not in ("S", "N") or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise Unsupported("a key DynamoDB would refuse")
    return _scalar(kind, text)


def _scalar(kind: str, content: Any) -> DynamoType:
    """A DynamoType of a scalar, as its constructor leaves one (its type and value: only a list or a map is
    converted further), without the constructor's lists and type checks."""
    value = _moto_types()[0].__new__(_moto_types()[0])
    value.type, value.value = kind, content
    return value


@cache
def _moto_types() -> tuple[type[DynamoType], type[Item]]:
    """moto's classes, imported when first needed (moto is imported only where DynamoDB is embedded)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    return DynamoType, Item


def check_index_keys(table: Table, written: Mapping[str, Value | None]) -> None:
    """Unsupported when a written attribute is an index's key with another type than its definition's, or
    longer than a key may be: DynamoDB refuses the write (and moto checks some of it its own way)."""
    defined = {definition["AttributeName"]: definition["AttributeType"] for definition in table.attr}
    for name in (set(table.attribute_keys) - set(key_names(table))) & written.keys():
        value = written[name]
        if value is not None and (value[0] != defined.get(name) or len(str(value[1]).encode()) > KEY_LIMITS[1]):
            raise Unsupported(f"{name} is an index key DynamoDB would refuse")


def item_to_put(table: Table, attributes: Any) -> tuple[DynamoType, DynamoType | None, Item, dict[str, Value]]:
    """A PutItem's (or a PutRequest's) key, the item it writes and its attributes as values; Unsupported (moto
    answers) for anything beyond the engine. An empty attribute name is the caller's to judge."""
    if not isinstance(attributes, dict):
        raise Unsupported("not an item")
    put = {name: request_value(value) for name, value in attributes.items()}
    hash_key, range_key = key_of(table, {name: attributes.get(name) for name in key_names(table)})
    check_index_keys(table, put)
    # DynamoDB (and moto) check the item's size before its condition: beyond 400 KB, moto answers.
    item = make_item(hash_key, range_key, {name: stored_value(value) for name, value in put.items()})
    return hash_key, range_key, item, put


def item_at(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    """The item under the key, without adding the empty partition moto's defaultdict would."""
    if range_key is None:  # moto types a partition as an item or its items by sort key: the table's key says which
        return cast("Item | None", table.items.get(hash_key))
    return table.items.get(hash_key, {}).get(range_key)


def stored_value(value: Value) -> DynamoType:
    """A new DynamoType for a changed attribute, sharing no list with any other: moto changes sets and lists in
    place. (An update's unchanged attributes keep their objects: the item they leave is dropped.)"""
    kind, content = value
    if isinstance(content, list | dict):
        return _moto_types()[0]({kind: copy.deepcopy(content)})
    return _scalar(kind, content)


def make_item(hash_key: DynamoType, range_key: DynamoType | None, attributes: dict[str, DynamoType]) -> Item:
    item = _moto_types()[1](hash_key, range_key, {})
    dict.update(item.attrs, attributes)  # moto's size check, once for the whole item below
    if size_bound(attributes) > MAX_ITEM_BYTES and item.size() > MAX_ITEM_BYTES:
        raise Unsupported("an item beyond 400 KB")
    return item


def write_item(
    table: Table, hash_key: DynamoType, range_key: DynamoType | None, old: Item | None, new: Item | None
) -> None:
    """Put `new` (None: delete) where `old` was, as moto's own writes do, streams included; the engine's
    indexes follow (local_gateway/dynamodb/indexes.py)."""
    partition, key = (table.items, hash_key) if range_key is None else (table.items[hash_key], range_key)
    partition = cast("dict[DynamoType, Item]", partition)  # moto's union of an item and a partition, as above
    if new is None:
        partition.pop(key, None)
    else:
        partition[key] = new
    if table.stream_shard is not None:
        table.stream_shard.add(old, new)
    item_replaced(table, old, new)


def answer_attributes(attributes: dict[str, DynamoType], projection: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Attributes as botocore hands them to the caller (binary as bytes)."""
    names = attributes.keys() if projection is None else [name for name in projection if name in attributes]
    return {name: _regular(attributes[name]) for name in names}


def _regular(value: DynamoType) -> dict[str, Any]:
    """moto's `to_regular_json`, without its deep copy of a value nothing can change (a string, a number's text)."""
    if value.type in _IMMUTABLE:
        return {value.type: value.value}
    return value.to_regular_json()


class _Untracked(list[Any]):
    """A record that keeps nothing."""

    def append(self, _: Any) -> None:
        pass


def stop_tracking_instances() -> None:
    """moto keeps every DynamoDB model it ever makes (each Item written, copied for a Query's answer or projected)
    in `instances_tracked`, for its dashboard at `/moto-api/`, which nothing in the embedded DynamoDB serves
    (local_gateway/dynamodb/http_port.py): in a gateway, a leak of every item version ever written, which the
    garbage collector walks again and again. Idempotent; moto's own reset starts a new list."""
    import moto.dynamodb.models  # noqa: F401  (its models register themselves in model_data)
    from moto.core.model_instances import model_data

    for model in model_data["dynamodb"].values():
        if not isinstance(getattr(model, "instances_tracked", None), _Untracked):
            model.instances_tracked = _Untracked()  # type: ignore[attr-defined]
