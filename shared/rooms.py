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

The event's rate-limit token (shared/rate_limit.py) rides the write of the connection's item (a join's second, a
leave's first): its SET and condition join that update's, and a failed condition's item tells which refused. A
join or a leave that does not make that write (a member already, refused, not a member) takes it in one of its own.
Both make that update themselves, not through `Token.update`: a failed condition's item first tells whether their own
write landed already (its answer lost), and a join's refusal comes before a try in the token's other form.
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.counters import Counters
from shared.errors import ClientError, ConditionFailed, ConnectionNotFound, Forbidden, TooManyRooms
from shared.items import add_members, is_registered, room_ids
from shared.protocols import JSON
from shared.rate_limit import RateLimiter, Token
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
        rate: Token | None = None,
    ) -> bool:
        """Add the connection to the room; False when it was already a member. `rate`: the event's rate-limit token,
        taken in the connection item's update (step 2), or when a step refuses, in an update of its own.

        1. Put the membership unless one exists. One does: a member already, told from a connection that is not
           registered (or not allowed, or at the limit) by the connection's item as taking the token returns it.
        2. Add the dashboard to the connection's `roomIds`, on the same conditions as ever (registered, under
           the limit, `allowed`), and take the token. Refused: the membership is deleted again and the refusal
           raised, told by the connection's item as the failed condition returned it.
        3. Count the member, and the room when it has just become active.
        """
        now = self.table.clock()
        conn = connection_key(connection_id)
        rate = rate or RateLimiter(self.table).registration(connection_id)
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
            item = rate.limiter.take_token(rate)  # the item as it stands; raises when it is not registered
            if _has_room(item, dashboard_id, now):
                return False
            refusal = _refusal(item, connection_id, dashboard_id, max_rooms, now)
            if refusal is not None:
                raise refusal  # as the join that wrote the membership will be refused
            return False  # another request's join (or leave) of this room is between its two writes
        try:
            self._add_room(conn, connection_id, dashboard_id, max_rooms, now, rate)
        except BaseException:
            self._take_back(membership, token)
            raise
        if add_members(self.table, membership["PK"]["S"], 1, now, ROOM_KIND) == 1:
            self.counters.add(activeDashboards=1)
        return True

    def _add_room(
        self, conn: str, connection_id: str, dashboard_id: str, max_rooms: int, now: float, rate: Token
    ) -> None:
        """Step 2 of a join, with the token; raises the refusal when the dashboard is not in `roomIds` after it."""
        for _ in range(3):  # idle, then busy: one change of form, and one more for a bucket another request moved
            try:
                self.table.call(
                    "update_item",
                    Key=own_key(conn),
                    UpdateExpression=rate.joined("ADD roomIds :room"),
                    ConditionExpression=f"{rate.condition}"
                    " AND (attribute_not_exists(roomIds) OR size(roomIds) < :max)"
                    " AND (attribute_not_exists(allowed) OR contains(allowed, :dashboard))",
                    ExpressionAttributeValues={
                        ":room": {"SS": [dashboard_id]},
                        ":max": num(max_rooms),
                        ":dashboard": text(dashboard_id),
                        **rate.values,
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                rate.taken()
                return
            except (ConditionFailed, BotoClientError) as error:
                # A failed condition returns the item as it was; any other error may follow an attempt that landed.
                refused = isinstance(error, ConditionFailed)
                item = (
                    error.item if isinstance(error, ConditionFailed) else self.table.get(own_key(conn), consistent=True)
                )
                # While this membership stands, no other request adds the dashboard: when it is there, we did.
                if _has_room(item, dashboard_id, now):
                    return
                if not refused:
                    raise
                other_form = rate.refused(item)  # ConnectionNotFound, RateLimited: before any refusal of the join
                refusal = _refusal(item, connection_id, dashboard_id, max_rooms, now)
                if refusal is None and other_form:
                    continue
                rate.take()  # the join is refused: the token is taken all the same, in an update of its own
                raise refusal or _too_many(max_rooms) from None
        raise RateLimiter.refusal(rate.per_second)  # other requests kept taking the tokens first

    def leave_room(self, connection_id: str, dashboard_id: str, rate: Token | None = None) -> bool:
        """Remove the connection from the room; False when it was not a member. `rate`: the event's rate-limit
        token, taken in step 1 (when the connection is not a member, in an update of its own).

        1. Take the dashboard out of the connection's `roomIds`, on condition that it is there (ConnectionNotFound
           when the connection is not registered), and take the token. 2. Delete the membership. 3. Count it out.
        """
        now = self.table.clock()
        conn = connection_key(connection_id)
        rate = rate or RateLimiter(self.table).registration(connection_id)
        token = _token()
        values = {":room": {"SS": [dashboard_id]}, ":dashboard": text(dashboard_id), ":token": text(token)}
        # When botocore gives up, an attempt whose answer was lost may have landed: the token makes the update
        # safe to send once more, and that answer tells (the leave function may not read the table).
        sent_again = False
        for _ in range(4):  # idle, then busy: one change of form, one more for a bucket moved, one resend
            try:
                self.table.call(
                    "update_item",
                    Key=own_key(conn),
                    UpdateExpression=rate.joined("DELETE roomIds :room SET leaveToken = :token"),
                    # Or our own update, retried by botocore after its answer was lost.
                    ConditionExpression=f"{rate.condition} AND (contains(roomIds, :dashboard) OR leaveToken = :token)",
                    ExpressionAttributeValues={**values, **rate.values},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                rate.taken()
                break
            except ConditionFailed as failed:
                item = failed.item
                if is_registered(item, now) and item is not None and item.get("leaveToken") == text(token):
                    break  # our own update landed, its answer lost; sent again, it met its own token
                rate.refused(item)  # ConnectionNotFound, RateLimited; or the form that holds now
                if item is None or dashboard_id not in room_ids(item):
                    rate.take()  # not a member: the token is taken all the same, in an update of its own
                    return False
            except BotoClientError:
                if sent_again:
                    raise
                sent_again = True
        else:
            raise RateLimiter.refusal(rate.per_second)  # other requests kept taking the tokens first
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
