"""Connections and subscriptions: the state the handlers change, kept in the one table.

A Socket.IO connection's pending registration (its `$connect` before its namespace CONNECT) is
shared/pending_connections.py; the dashboard rooms are shared/rooms.py; the reads and writes both need (a
connection's own item, the member counts, pages of recipients) are shared/items.py; the item layout is in
shared/table.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.counters import Counters, Counts
from shared.items import add_members, recipients, room_ids
from shared.protocols import JSON, SOCKETIO
from shared.rate_limit import RateLimiter, Token
from shared.sessions import Sessions
from shared.table import (
    ANON,
    BY_CONNECTION_INDEX,
    BY_LIVE_KIND_INDEX,
    CONNECTION_TTL_SECONDS,
    LIVE,
    USER_KIND,
    Table,
    connection_key,
    num,
    own_key,
    room_key,
    text,
    user_key,
)

SOCKETIO_KEY = "SOCKETIO"  # SOCKETIO / CONN#c: the Socket.IO connections, which the heartbeat pings


class Store:
    """Connections, subscriptions and the rate-limit token; every change also adds to the counters."""

    def __init__(self, table: Table, counters: Counters | None = None, sessions: Sessions | None = None) -> None:
        self.table = table
        self.counters = counters or Counters(table)
        self.sessions = sessions  # None: no session outlives its connection

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
        }
        if user_id is not None:
            item["userId"] = text(user_id)
        if allowed is not None:
            item["allowed"] = {"L": [text(dashboard) for dashboard in allowed]}
        if protocol != JSON:
            item["protocol"] = text(protocol)
        # A pending item (shared/pending_connections.py) may be put over as well; the namespace CONNECT completes it.
        condition = "attribute_not_exists(PK) OR attribute_exists(pending)"
        if self.table.conditional("put_item", Item=item, ConditionExpression=condition) is None:
            return  # a retried $connect or CONNECT: already registered, counted once
        self.count_in(item, now)

    def count_in(self, item: dict[str, Any], now: float, also: list[dict[str, Any]] | None = None) -> None:
        """A connection just registered, here or by its completed handshake (shared/pending_connections.py), its
        own item as written: its owner's item, the heartbeat's for a Socket.IO one (and `also`, its new session's),
        the owner's count and the counters. The items are unconditional puts that no reader needs in a given order:
        one BatchWriteItem, for the same write units as a PutItem each."""
        user_id = item["userId"]["S"] if "userId" in item else None
        owner = ANON if user_id is None else user_key(user_id)
        footprint = [owner, *([SOCKETIO_KEY] if item.get("protocol") == text(SOCKETIO) else [])]  # whom to ping
        owned = [{"PK": text(pk), "SK": item["PK"], "expiresAt": item["expiresAt"]} for pk in footprint] + (also or [])
        if len(owned) == 1:
            self.table.call("put_item", Item=owned[0])  # through Table.call, which retries a transaction's conflict
        else:
            self.table.batch_put(owned)
        # ANON / ANON counts the anonymous connections, so that the reconciler can heal them as it heals a user.
        users = add_members(self.table, owner, 1, now, None if user_id is None else USER_KIND) == 1
        self.counters.add(connections=1, activeUsers=int(users or user_id is None))

    def remove_connection(self, connection_id: str, deliberate: bool = False) -> bool:
        """Delete everything the connection owns; False when another call already did.

        Its session (shared/sessions.py) is kept for the recovery window, unless the client left `deliberate`ly.
        """
        key = connection_key(connection_id)
        deleted = self.table.conditional(
            "delete_item", Key=own_key(key), ConditionExpression="attribute_exists(PK)", ReturnValues="ALL_OLD"
        )
        if deleted is None:
            if deliberate and self.sessions is not None:
                # Removed first as for a drop (its `$disconnect` before its `41`, or a publisher's 410), which kept
                # its session: the client meant to leave, so the session ends all the same.
                self.sessions.end_for(connection_id)
            return False
        old: dict[str, Any] = deleted.get("Attributes", {})
        if "pending" in old:
            return True  # a Socket.IO connection that never completed its handshake: nothing was counted
        if self.sessions is not None and "session" in old:
            (self.sessions.end if deliberate else self.sessions.keep)(old)
        now = self.table.clock()
        # The connection's footprint comes from its own item as the delete read it back, never from the
        # eventually consistent ByConnection index, which can miss a membership written a moment ago.
        rooms = [room_key(dashboard) for dashboard in room_ids(old)]
        owner = user_key(old["userId"]["S"]) if "userId" in old else ANON
        footprint = [*rooms, owner, *([SOCKETIO_KEY] if old.get("protocol") == text(SOCKETIO) else [])]
        if "roomIds" not in old and int(old.get("rooms", {"N": "0"})["N"]) > 0:
            # An item written before `roomIds` existed (at most one connection lifetime after the upgrade).
            footprint = [pk for pk in self._connection_footprint(key) if pk != key]
            rooms = [pk for pk in footprint if pk.startswith("ROOM#")]
        self.table.batch_delete([{"PK": text(pk), "SK": text(key)} for pk in footprint])
        emptied = sum(1 for pk in rooms if add_members(self.table, pk, -1, now) == 0)
        users = -int(add_members(self.table, owner, -1, now) == 0 or owner == ANON)
        self.counters.add(
            connections=-1,
            activeUsers=users,
            subscribers=-int("live" in old),
            activeDashboards=-emptied,
        )
        return True

    # -- live metrics subscriptions ----------------------------------------------------------
    def subscribe(self, connection_id: str, token: Token | None = None) -> Counts | None:
        """Mark the connection a subscriber, taking the event's rate-limit `token` in the same write; the counts as
        of its own (the counters' update answers them), or None when it already was. ConnectionNotFound when it is
        not registered (a pending item's CONNECT would drop the mark, and its removal would not count it back)."""
        if self._mark(connection_id, token, "SET live = :live", {":live": text(LIVE)}) is not None:
            return None
        return self.counters.add(subscribers=1)

    def unsubscribe(self, connection_id: str, token: Token | None = None) -> bool:
        """Unmark it, taking the event's rate-limit `token` in the same write; False when it was not a subscriber."""
        if self._mark(connection_id, token, "REMOVE live", {}) is None:
            return False
        self.counters.add(subscribers=-1)
        return True

    def _mark(self, connection_id: str, token: Token | None, change: str, values: dict[str, Any]) -> Any:
        """Set or remove `live` on a registered connection's item, with the token; `live` as it was (None: absent)."""
        token = token or RateLimiter(self.table).registration(connection_id)
        old = token.update(change, values=values, return_values="ALL_OLD")  # as it was: subscribed already, or not
        return old.get("live")

    def subscribers(self) -> Iterator[list[tuple[str, str]]]:
        """Pages of (connection id, protocol) of the subscribers, from the sparse index; expired ones left out."""
        return recipients(
            self.table,
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
