"""Connections, subscriptions and dashboard rooms: the state the handlers change, kept in the one table.

Item layout (one table, PK/SK strings, TTL on expiresAt):
  CONN#c / CONN#c      a connection; `live` marks a subscriber (sparse index ByLiveKind); `protocol` is
                       socketio for Socket.IO (absent: JSON frames); `pending` until Socket.IO's CONNECT
  SOCKETIO / CONN#c    c speaks Socket.IO: the heartbeat pings it
  ROOM#d / CONN#c      membership of connection c in dashboard d
  ROOM#d / ROOM#d      member count of d;   USER#u / USER#u  live connections of user u
  USER#u / CONN#c      connection c belongs to user u;    ANON / CONN#c  c is anonymous
  METRICS / COUNTS     the counters behind the metrics (shared/counters.py)
  METRICS / LATEST     the latest snapshot (shared/snapshots.py)
The room and user counter items also carry live=ROOM / live=USER, so the sparse index lists them: the
reconciler (shared/reconciler.py) recounts everything from the items themselves every
RECONCILE_INTERVAL_SECONDS, without a Scan. An entity's own item has SK = PK, so the inverted index
ByConnection (SK -> PK) holds each connection's whole footprint in one partition of its own, and no
unrelated items pile into one hot partition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.counters import Counters
from shared.errors import ConnectionNotFound, Forbidden, RateLimited, TooManyRooms
from shared.protocols import JSON, SOCKETIO
from shared.table import (
    ANON,
    BY_CONNECTION_INDEX,
    BY_LIVE_KIND_INDEX,
    CONNECTION_TTL_SECONDS,
    LIVE,
    ROOM_KIND,
    USER_KIND,
    Table,
    cancellation_codes,
    connection_key,
    error_code,
    num,
    own_key,
    room_key,
    text,
    user_key,
)

logger = logging.getLogger(__name__)

SOCKETIO_KEY = "SOCKETIO"  # SOCKETIO / CONN#c: the Socket.IO connections, which the heartbeat pings
PENDING_TTL_SECONDS = 15 * 60  # a handshake that never completes: gone after API Gateway's idle timeout


@dataclass(frozen=True)
class Pending:
    """A Socket.IO connection between `$connect` and its namespace CONNECT."""

    user_id: str | None
    allowed: list[str] | None
    authenticated: bool


class Store:
    """Connections, subscriptions and dashboard rooms; every change also adds to the counters."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.counters = Counters(table)

    # -- connections -------------------------------------------------------------------------
    def add_connection(
        self, connection_id: str, user_id: str | None, allowed: list[str] | None = None, protocol: str = JSON
    ) -> None:
        """Register the connection; `allowed`, when given, is the only dashboards it may join."""
        now = self.table.clock()
        item: dict[str, Any] = {
            "PK": text(connection_key(connection_id)),
            "SK": text(connection_key(connection_id)),
            "connectedAt": num(now),
            "expiresAt": num(now + CONNECTION_TTL_SECONDS),
            "rooms": num(0),
        }
        if user_id is not None:
            item["userId"] = text(user_id)
        if allowed is not None:
            item["allowed"] = {"L": [text(dashboard) for dashboard in allowed]}
        if protocol != JSON:
            item["protocol"] = text(protocol)
        # A Socket.IO connection's pending item (see add_pending) becomes its registration here.
        condition = "attribute_not_exists(PK) OR attribute_exists(pending)"
        if self.table.conditional("put_item", Item=item, ConditionExpression=condition) is None:
            return  # a retried $connect or CONNECT: already registered, counted once
        owner = ANON if user_id is None else user_key(user_id)
        self.table.client.put_item(
            TableName=self.table.table_name,
            Item={"PK": text(owner), "SK": item["PK"], "expiresAt": item["expiresAt"]},
        )
        if protocol == SOCKETIO:  # the heartbeat's list of whom to ping
            self.table.client.put_item(
                TableName=self.table.table_name,
                Item={"PK": text(SOCKETIO_KEY), "SK": item["PK"], "expiresAt": item["expiresAt"]},
            )
        users = 1 if user_id is None else self._add_members(owner, 1, now, USER_KIND) == 1
        self.counters.add(connections=1, activeUsers=int(users))

    def remove_connection(self, connection_id: str) -> bool:
        """Delete everything the connection owns; False when another call already did."""
        key = connection_key(connection_id)
        deleted = self.table.conditional(
            "delete_item", Key=own_key(key), ConditionExpression="attribute_exists(PK)", ReturnValues="ALL_OLD"
        )
        if deleted is None:
            return False
        old = deleted.get("Attributes", {})
        if "pending" in old:
            return True  # a Socket.IO connection that never completed its handshake: nothing was counted
        now = self.table.clock()
        footprint = [pk for pk in self._connection_footprint(key) if pk != key]
        rooms = [pk for pk in footprint if pk.startswith("ROOM#")]
        self.table.batch_delete([{"PK": text(pk), "SK": text(key)} for pk in footprint])
        emptied = sum(1 for pk in rooms if self._add_members(pk, -1, now) == 0)
        users = -1
        if "userId" in old:
            users = -int(self._add_members(user_key(old["userId"]["S"]), -1, now) == 0)
        self.counters.add(
            connections=-1,
            activeUsers=users,
            subscribers=-int("live" in old),
            activeDashboards=-emptied,
        )
        return True

    def connection_exists(self, connection_id: str) -> bool:
        item = self._connection_item(connection_id)
        return item is not None and "pending" not in item

    def add_pending(
        self, connection_id: str, user_id: str | None, allowed: list[str] | None, authenticated: bool
    ) -> None:
        """What a Socket.IO `$connect` learnt (the query string), kept uncounted until the namespace CONNECT."""
        item = {
            **own_key(connection_key(connection_id)),
            "pending": {"BOOL": True},
            "protocol": text(SOCKETIO),
            "authenticated": {"BOOL": authenticated},
            "expiresAt": num(self.table.clock() + PENDING_TTL_SECONDS),
        }
        if user_id is not None:
            item["userId"] = text(user_id)
        if allowed is not None:
            item["allowed"] = {"L": [text(dashboard) for dashboard in allowed]}
        self.table.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(PK)")

    def pending(self, connection_id: str) -> Pending | None:
        item = self._connection_item(connection_id)
        if item is None or "pending" not in item:
            return None
        return Pending(
            user_id=item["userId"]["S"] if "userId" in item else None,
            allowed=[entry["S"] for entry in item["allowed"]["L"]] if "allowed" in item else None,
            authenticated=bool(item.get("authenticated", {}).get("BOOL")),
        )

    def _connection_item(self, connection_id: str) -> dict[str, Any] | None:
        item = self.table.get(own_key(connection_key(connection_id)), consistent=True)
        return item if item is not None and int(item["expiresAt"]["N"]) > self.table.clock() else None

    def _add_members(self, pk: str, delta: int, now: float, kind: str | None = None) -> int:
        """Atomically add to the `members` count of a room's or user's own item; return the new count."""
        values = {":delta": num(delta), ":exp": num(now + CONNECTION_TTL_SECONDS)}
        tag = ""
        if kind is not None:
            tag, values[":kind"] = ", live = :kind", text(kind)
        result = self.table.client.update_item(
            TableName=self.table.table_name,
            Key=own_key(pk),
            UpdateExpression=f"ADD members :delta SET expiresAt = :exp{tag}",
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["members"]["N"])

    def take_token(self, connection_id: str, per_second: float, burst: int) -> None:
        """A token bucket on the connection's own item (GCRA: one number, `rateTat`); RateLimited when empty.

        An unregistered connection is not limited here: the action itself answers it.
        """
        if per_second <= 0:
            return
        key = own_key(connection_key(connection_id))
        now_ms, interval = int(self.table.clock() * 1000), max(1, int(1000 / per_second))
        attempts = [  # idle: the bucket has refilled; busy: take one more token if any is left
            (
                "SET rateTat = :next",
                "attribute_exists(PK) AND (attribute_not_exists(rateTat) OR rateTat <= :now)",
                {":next": num(now_ms + interval), ":now": num(now_ms)},
            ),
            (
                "SET rateTat = rateTat + :interval",
                "rateTat > :now AND rateTat <= :ceiling",
                {":interval": num(interval), ":now": num(now_ms), ":ceiling": num(now_ms + (burst - 1) * interval)},
            ),
        ]
        for update, condition, values in attempts:
            try:
                self.table.client.update_item(
                    TableName=self.table.table_name,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            except BotoClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                registered = "Item" in error.response
        if registered:
            raise RateLimited(f"Too many requests: at most {per_second:g} a second; slow down and retry")

    # -- live metrics subscriptions ----------------------------------------------------------
    def subscribe(self, connection_id: str) -> bool:
        """Mark the connection a subscriber; False when it already was."""
        marked = self.table.conditional(
            "update_item",
            Key=own_key(connection_key(connection_id)),
            UpdateExpression="SET live = :live",
            # Not a pending item: its CONNECT would drop the mark, and its removal would not count it back.
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(live) AND attribute_not_exists(pending)",
            ExpressionAttributeValues={":live": text(LIVE)},
        )
        if marked is None:
            if self.connection_exists(connection_id):
                return False
            raise ConnectionNotFound(connection_id)
        self.counters.add(subscribers=1)
        return True

    def unsubscribe(self, connection_id: str) -> bool:
        unmarked = self.table.conditional(
            "update_item",
            Key=own_key(connection_key(connection_id)),
            UpdateExpression="REMOVE live",
            ConditionExpression="attribute_exists(live)",
        )
        if unmarked is None:
            return False
        self.counters.add(subscribers=-1)
        return True

    def subscribers(self) -> Iterator[list[tuple[str, str]]]:
        """Pages of (connection id, protocol) of the subscribers, from the sparse index; expired ones left out."""
        return self._recipients(
            "PK",
            IndexName=BY_LIVE_KIND_INDEX,
            KeyConditionExpression="live = :live",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":live": text(LIVE), ":now": num(self.table.clock())},
            ProjectionExpression="PK, protocol",
        )

    def socketio_connections(self) -> Iterator[list[str]]:
        """Pages of the Socket.IO connections' ids: whom the heartbeat pings."""
        return self.table.pages(
            KeyConditionExpression="PK = :sio",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":sio": text(SOCKETIO_KEY), ":now": num(self.table.clock())},
            ProjectionExpression="SK",
            field="SK",
            prefix="CONN#",
        )

    def _recipients(self, field: str, **query: Any) -> Iterator[list[tuple[str, str]]]:
        for page in self.table.items(**query):
            yield [(item[field]["S"].removeprefix("CONN#"), item.get("protocol", {}).get("S", JSON)) for item in page]

    # -- dashboard rooms ---------------------------------------------------------------------
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
            item = self._connection_item(connection_id)
            if item is None or "pending" in item:
                raise ConnectionNotFound(connection_id) from None
            if "allowed" in item and text(dashboard_id) not in item["allowed"]["L"]:
                raise Forbidden("This connection may not join that dashboard") from None
            raise TooManyRooms(f"A connection may be in at most {max_rooms} dashboards") from None
        if self._add_members(room, 1, now, ROOM_KIND) == 1:
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
        if self._add_members(room, -1, now) == 0:
            self.counters.add(activeDashboards=-1)
        return True

    def room_members(self, dashboard_id: str) -> Iterator[list[tuple[str, str]]]:
        """Pages of (connection id, protocol) of a dashboard's members."""
        return self._recipients(
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

    def _connection_footprint(self, key: str) -> list[str]:
        """Every PK whose item has SK = key: the connection itself and its room memberships."""
        return [
            pk
            for page in self.table.pages(
                IndexName=BY_CONNECTION_INDEX,
                KeyConditionExpression="SK = :key",
                ExpressionAttributeValues={":key": text(key)},
                field="PK",
            )
            for pk in page
        ]
