"""The reads and writes of the item layout (see shared/table.py) that Store and Rooms both need.

Plain functions over the one Table: a connection's own item, the member count on a room's or user's own
item, and pages of recipients, so that neither Store nor Rooms keeps a copy of the other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.protocols import JSON
from shared.table import CONNECTION_TTL_SECONDS, Table, connection_key, num, own_key, text


def connection_item(table: Table, connection_id: str) -> dict[str, Any] | None:
    """The connection's own item (strongly consistent), or None when it is absent or expired."""
    item = table.get(own_key(connection_key(connection_id)), consistent=True)
    return item if item is not None and int(item["expiresAt"]["N"]) > table.clock() else None


def registered_connection(table: Table, connection_id: str) -> dict[str, Any] | None:
    """The connection's own item once it is registered; None when absent, expired or still pending.

    A pending Socket.IO connection (between `$connect` and its namespace CONNECT) is not found yet.
    """
    item = connection_item(table, connection_id)
    return item if is_registered(item, table.clock()) else None


def is_registered(item: dict[str, Any] | None, now: float) -> bool:
    """Whether a connection's own item (as read, or as a failed condition returned it) is a registration."""
    return item is not None and "pending" not in item and int(item["expiresAt"]["N"]) > now


def room_ids(item: dict[str, Any]) -> list[str]:
    """The dashboards a connection's own item says it is in (`roomIds`, a string set kept by join and leave)."""
    return sorted(item.get("roomIds", {}).get("SS", []))


def add_members(table: Table, pk: str, delta: int, now: float, kind: str | None = None) -> int:
    """Atomically add to the `members` count of a room's or user's own item (or ANON's); return the new count.

    `version` counts the changes, so that the reconciler can tell a counter that moved between two looks.
    """
    values = {":delta": num(delta), ":exp": num(now + CONNECTION_TTL_SECONDS), ":one": num(1)}
    tag = ""
    if kind is not None:
        tag, values[":kind"] = ", live = :kind", text(kind)
    result = table.call(
        "update_item",
        Key=own_key(pk),
        UpdateExpression=f"ADD members :delta, version :one SET expiresAt = :exp{tag}",
        ExpressionAttributeValues=values,
        ReturnValues="UPDATED_NEW",
    )
    return int(result["Attributes"]["members"]["N"])


def recipients(table: Table, field: str, **query: Any) -> Iterator[list[tuple[str, str]]]:
    """Pages of (connection id, protocol): the connection key in `field` of each item the query finds."""
    for page in table.items(**query):
        yield [(item[field]["S"].removeprefix("CONN#"), item.get("protocol", {}).get("S", JSON)) for item in page]
