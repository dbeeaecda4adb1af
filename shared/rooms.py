"""Dashboard rooms: which connections are in which dashboard's room, and how many rooms are active.

A membership is ROOM#d / CONN#c, the room's member count its own item ROOM#d / ROOM#d (live=ROOM), and
the connection's own item lists its rooms (`roomIds`, a string set), checked against the per-connection
limit and its `allowed` dashboards. A connection's removal (Store.remove_connection) reads that set back
as it deletes the connection item and drops the memberships with it, never asking an index.

No transaction (a two-item one costs twice the write units, and moto copies the whole table for each): a join
puts the membership, then adds the dashboard to `roomIds`; a leave takes it out of `roomIds`, then deletes the
membership. So `roomIds` never names a room without its membership. Between a join's two writes, `roomIds`
does not name it yet: a removal landing there leaves it, and the join's second write, finding no registration,
deletes it again, as it does whenever that write is refused. Between a leave's two writes, the leave deletes it
itself. A request that dies between its two writes (its process gone, or DynamoDB failing the rest of it) leaves
a membership `roomIds` does not name, until its TTL. Each first write carries a token of its request
(`joinToken` on the membership, `leaveToken` on the connection), so that botocore's retry of a write that landed
but lost its answer passes its own condition instead of meeting itself as another request's write.
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.counters import Counters
from shared.errors import ClientError, ConditionFailed, ConnectionNotFound, Forbidden, TooManyRooms
from shared.items import add_members, is_registered, room_ids
from shared.protocols import JSON
from shared.table import (
    CONNECTION_TTL_SECONDS,
    ROOM_KIND,
    Table,
    connection_key,
    num,
    own_key,
    room_key,
    text,
)


class Rooms:
    """Join, leave and list a dashboard's room; every change also adds to the counters."""

    def __init__(self, table: Table, counters: Counters | None = None) -> None:
        self.table = table
        self.counters = counters or Counters(table)

    def join_room(
        self,
        connection_id: str,
        dashboard_id: str,
        max_rooms: int,
        protocol: str = JSON,
        recovering_until: int | None = None,
    ) -> bool:
        """Add the connection to the room; False when it was already a member.

        1. Put the membership unless one exists. One does: a member already, told from a connection that is not
           registered (or not allowed, or at the limit) by one read of the connection's item.
        2. Add the dashboard to the connection's `roomIds`, on the same conditions as ever (registered, under
           the limit, `allowed`). Refused: the membership is deleted again and the refusal raised, told by the
           connection's item as the failed condition returned it.
        3. Count the member, and the room when it has just become active.
        """
        now = self.table.clock()
        conn = connection_key(connection_id)
        membership = {"PK": text(room_key(dashboard_id)), "SK": text(conn)}
        token = _token()
        try:
            put = self.table.conditional(
                "put_item",
                Item={
                    **membership,
                    "expiresAt": num(now + CONNECTION_TTL_SECONDS),
                    "joinToken": text(token),
                    **({} if protocol == JSON else {"protocol": text(protocol)}),
                    # A replay delivers to it until the hand-over, or this deadline (shared/handover.py).
                    **({"recovering": num(recovering_until)} if recovering_until is not None else {}),
                },
                # Or our own put, retried by botocore after its answer was lost.
                ConditionExpression="attribute_not_exists(PK) OR joinToken = :token",
                ExpressionAttributeValues={":token": text(token)},
            )
        except BotoClientError:
            self._take_back(membership, token)  # an attempt whose answer was lost may have written it
            raise
        if put is None:
            item = self.table.get(own_key(conn), consistent=True)
            if _has_room(item, dashboard_id, now):
                return False
            refusal = _refusal(item, connection_id, dashboard_id, max_rooms, now)
            if refusal is not None:
                raise refusal  # as the join that wrote the membership will be refused
            return False  # another request's join (or leave) of this room is between its two writes
        try:
            self.table.call(
                "update_item",
                Key=own_key(conn),
                UpdateExpression="ADD roomIds :room",
                ConditionExpression=f"{REGISTERED}"
                " AND (attribute_not_exists(roomIds) OR size(roomIds) < :max)"
                " AND (attribute_not_exists(allowed) OR contains(allowed, :dashboard))",
                ExpressionAttributeValues={
                    ":room": {"SS": [dashboard_id]},
                    ":max": num(max_rooms),
                    ":dashboard": text(dashboard_id),
                    ":now": num(now),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except (ConditionFailed, BotoClientError) as error:
            refused = isinstance(error, ConditionFailed)
            # A failed condition returns the item as it was; any other error may follow an attempt that landed.
            item = error.item if isinstance(error, ConditionFailed) else self.table.get(own_key(conn), consistent=True)
            # While this membership stands, no other request adds the dashboard: when it is there, we did.
            if not _has_room(item, dashboard_id, now):
                self._take_back(membership, token)
                if not refused:
                    raise
                raise _refusal(item, connection_id, dashboard_id, max_rooms, now) or _too_many(max_rooms) from None
        if add_members(self.table, membership["PK"]["S"], 1, now, ROOM_KIND) == 1:
            self.counters.add(activeDashboards=1)
        return True

    def leave_room(self, connection_id: str, dashboard_id: str) -> bool:
        """Remove the connection from the room; False when it was not a member.

        1. Take the dashboard out of the connection's `roomIds`, on condition that it is there (ConnectionNotFound
           when the connection is not registered). 2. Delete the membership. 3. Count it out.
        """
        now = self.table.clock()
        conn = connection_key(connection_id)
        token = _token()
        update = {
            "Key": own_key(conn),
            "UpdateExpression": "DELETE roomIds :room SET leaveToken = :token",
            # Or our own update, retried by botocore after its answer was lost.
            "ConditionExpression": f"{REGISTERED} AND (contains(roomIds, :dashboard) OR leaveToken = :token)",
            "ExpressionAttributeValues": {
                ":room": {"SS": [dashboard_id]},
                ":dashboard": text(dashboard_id),
                ":token": text(token),
                ":now": num(now),
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        # When botocore gives up, an attempt whose answer was lost may have landed: the token makes the update
        # safe to send once more, and that answer tells (the leave function may not read the table).
        for last in (False, True):
            try:
                self.table.call("update_item", **update)
                break
            except ConditionFailed as failed:
                if not is_registered(failed.item, now):
                    raise ConnectionNotFound(connection_id) from None
                return False
            except BotoClientError:
                if last:
                    raise
        room = room_key(dashboard_id)
        self.table.call("delete_item", Key={"PK": text(room), "SK": text(conn)})
        if add_members(self.table, room, -1, now) == 0:
            self.counters.add(activeDashboards=-1)
        return True

    def _take_back(self, membership: dict[str, Any], token: str) -> None:
        """Delete the membership this join wrote, and no other."""
        self.table.conditional(
            "delete_item",
            Key=membership,
            ConditionExpression="joinToken = :token",
            ExpressionAttributeValues={":token": text(token)},
        )


# The connection's own item is a registration: present, past its Socket.IO handshake, not expired.
REGISTERED = "attribute_exists(PK) AND attribute_not_exists(pending) AND expiresAt > :now"


def _token() -> str:
    return secrets.token_urlsafe(12)


def _too_many(max_rooms: int) -> TooManyRooms:
    return TooManyRooms(f"A connection may be in at most {max_rooms} dashboards")


def _has_room(item: dict[str, Any] | None, dashboard_id: str, now: float) -> bool:
    """Whether a connection's item is a registration whose `roomIds` holds the dashboard."""
    return item is not None and is_registered(item, now) and dashboard_id in room_ids(item)


def _refusal(
    item: dict[str, Any] | None, connection_id: str, dashboard_id: str, max_rooms: int, now: float
) -> ClientError | None:
    """Why this connection's item (as read, or as a failed condition returned it) refuses the join; None if not."""
    if item is None or not is_registered(item, now):
        return ConnectionNotFound(connection_id)
    if "allowed" in item and text(dashboard_id) not in item["allowed"]["L"]:
        return Forbidden("This connection may not join that dashboard")
    if len(room_ids(item)) >= max_rooms:
        return _too_many(max_rooms)
    return None
