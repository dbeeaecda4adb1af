"""Dashboard rooms: which connections are in which dashboard's room, and how many rooms are active.

A membership is ROOM#d / CONN#c, the room's member count its own item ROOM#d / ROOM#d (live=ROOM), and
the connection's own item lists its rooms (`roomIds`, a string set), checked against the per-connection
limit and its `allowed` dashboards. A connection's removal (Store.remove_connection) reads that set back
as it deletes the connection item and drops the memberships with it, never asking an index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.counters import Counters
from shared.errors import ConnectionNotFound, Forbidden, TooManyRooms
from shared.items import add_members, is_registered, recipients
from shared.protocols import JSON
from shared.table import (
    CONNECTION_TTL_SECONDS,
    ROOM_KIND,
    Table,
    cancellation_reasons,
    connection_key,
    error_code,
    failed_check,
    num,
    own_key,
    room_key,
    text,
)


class Rooms:
    """Join, leave and list a dashboard's room; every change also adds to the counters."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.counters = Counters(table)

    def join_room(self, connection_id: str, dashboard_id: str, max_rooms: int, protocol: str = JSON) -> bool:
        """Add the connection to the room; False when it was already a member.

        One transaction: the membership (unless it exists) and the dashboard added to the connection's own
        `roomIds` (its footprint, which its removal reads back), checked against the limit and `allowed`.
        Conflicts and throttling are retried (Table.transact); a failed condition is told by the item that
        failed, the connection's as it was (ReturnValuesOnConditionCheckFailure), without another read.
        """
        now = self.table.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.table.transact(
                [
                    {
                        "Put": {
                            "TableName": self.table.table_name,
                            "Item": {
                                "PK": text(room),
                                "SK": text(conn),
                                "expiresAt": num(now + CONNECTION_TTL_SECONDS),
                                **({} if protocol == JSON else {"protocol": text(protocol)}),
                            },
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table.table_name,
                            "Key": own_key(conn),
                            "UpdateExpression": "ADD roomIds :room",
                            "ConditionExpression": f"{REGISTERED}"
                            " AND (attribute_not_exists(roomIds) OR size(roomIds) < :max)"
                            " AND (attribute_not_exists(allowed) OR contains(allowed, :dashboard))",
                            "ExpressionAttributeValues": {
                                ":room": {"SS": [dashboard_id]},
                                ":max": num(max_rooms),
                                ":dashboard": text(dashboard_id),
                                ":now": num(now),
                            },
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            membership, connection = _reasons(error)
            if failed_check(connection):
                item = connection.get("Item")
                if not is_registered(item, now):
                    raise ConnectionNotFound(connection_id) from None
                if failed_check(membership):
                    return False  # already a member, and the connection's set is full or holds it
                if item is not None and "allowed" in item and text(dashboard_id) not in item["allowed"]["L"]:
                    raise Forbidden("This connection may not join that dashboard") from None
                raise TooManyRooms(f"A connection may be in at most {max_rooms} dashboards") from None
            if failed_check(membership):
                return False
            raise
        if add_members(self.table, room, 1, now, ROOM_KIND) == 1:
            self.counters.add(activeDashboards=1)
        return True

    def leave_room(self, connection_id: str, dashboard_id: str) -> bool:
        """Remove the connection from the room; False when it was not a member."""
        now = self.table.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.table.transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table.table_name,
                            "Key": {"PK": text(room), "SK": text(conn)},
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table.table_name,
                            "Key": own_key(conn),
                            "UpdateExpression": "DELETE roomIds :room",
                            "ConditionExpression": REGISTERED,
                            "ExpressionAttributeValues": {":room": {"SS": [dashboard_id]}, ":now": num(now)},
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            membership, connection = _reasons(error)
            if failed_check(connection):
                raise ConnectionNotFound(connection_id) from None
            if failed_check(membership):
                return False
            raise
        if add_members(self.table, room, -1, now) == 0:
            self.counters.add(activeDashboards=-1)
        return True

    def room_members(self, dashboard_id: str) -> Iterator[list[tuple[str, str]]]:
        """Pages of (connection id, protocol) of a dashboard's members."""
        return recipients(
            self.table,
            "SK",
            KeyConditionExpression="PK = :room AND begins_with(SK, :conn)",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={
                ":room": text(room_key(dashboard_id)),
                ":conn": text("CONN#"),
                ":now": num(self.table.clock()),
            },
            ProjectionExpression="SK, protocol",
        )


# The connection's own item is a registration: present, past its Socket.IO handshake, not expired.
REGISTERED = "attribute_exists(PK) AND attribute_not_exists(pending) AND expiresAt > :now"


def _reasons(error: BotoClientError) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cancellation reasons of a (membership, connection) transaction; empty when DynamoDB gave none."""
    reasons = cancellation_reasons(error)
    return (reasons[0], reasons[1]) if len(reasons) == 2 else ({}, {})
