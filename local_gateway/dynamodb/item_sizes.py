"""A bound on an item's size as moto measures it (`Item.size()`), cheap enough to take on every write and read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.dynamodb.models.dynamo_type import DynamoType


def size_bound(attributes: dict[str, DynamoType]) -> int:
    """At least moto's size of an item (Item.size(): UTF-8 bytes of names and strings, a number's digits, ...),
    in a fifth of its time: a character is at most 4 bytes, a number's text is its size, a boolean or null 1."""
    return sum(4 * len(name) + _bound(value.value) for name, value in attributes.items())


def _bound(content: Any) -> int:
    if isinstance(content, str):
        return 4 * len(content)
    if isinstance(content, list):  # a set's strings, or a list's DynamoTypes
        return sum(_bound(getattr(element, "value", element)) for element in content)
    if isinstance(content, dict):  # a map's DynamoTypes
        return sum(4 * len(key) + _bound(getattr(element, "value", element)) for key, element in content.items())
    return len(content) if isinstance(content, bytes) else 1
