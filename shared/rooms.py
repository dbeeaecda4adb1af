"""Dashboard rooms: which connections are in which dashboard's room, and how many rooms are active.

A membership is ROOM#d / CONN#c, the room's member count its own item ROOM#d / ROOM#d (live=ROOM), and
the connection's own item counts its rooms (`rooms`), against the per-connection limit and its `allowed`
dashboards. A connection's removal (Store.remove_connection) drops its memberships with it.
"""

from __future__ import annotations

from collections.abc import Iterator

from botocore.exceptions import ClientError as BotoClientError

from shared.counters import Counters
from shared.errors import ConnectionNotFound, Forbidden, TooManyRooms
from shared.items import add_members, recipients, registered_connection
from shared.protocols import JSON
from shared.table import (
    CONNECTION_TTL_SECONDS,
    ROOM_KIND,
    Table,
    cancellation_codes,
    connection_key,
    error_code,
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
        """Add the connection to the room; False when it was already a member."""
        now = self.table.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.table.client.transact_write_items(
                TransactItems=[
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
                            "UpdateExpression": "ADD rooms :one",
                            "ConditionExpression": "attribute_exists(PK) AND rooms < :max"
                            " AND (attribute_not_exists(allowed) OR contains(allowed, :dashboard))",
                            "ExpressionAttributeValues": {
                                ":one": num(1),
                                ":max": num(max_rooms),
                                ":dashboard": text(dashboard_id),
                            },
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            item = registered_connection(self.table, connection_id)
            if item is None:
                raise ConnectionNotFound(connection_id) from None
            if "allowed" in item and text(dashboard_id) not in item["allowed"]["L"]:
                raise Forbidden("This connection may not join that dashboard") from None
            raise TooManyRooms(f"A connection may be in at most {max_rooms} dashboards") from None
        if add_members(self.table, room, 1, now, ROOM_KIND) == 1:
            self.counters.add(activeDashboards=1)
        return True

    def leave_room(self, connection_id: str, dashboard_id: str) -> bool:
        now = self.table.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.table.client.transact_write_items(
                TransactItems=[
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
                            "UpdateExpression": "ADD rooms :minus",
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeValues": {":minus": num(-1)},
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            raise ConnectionNotFound(connection_id) from None
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
