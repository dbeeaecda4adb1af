"""All state lives here: connections, subscriptions, dashboard rooms, counters and the latest snapshot.

Item layout (one table, PK/SK strings, TTL on expiresAt):
  CONN#c / CONN#c      a connection; `live` marks a subscriber (sparse index Subscribers)
  ROOM#d / CONN#c      membership of connection c in dashboard d
  ROOM#d / ROOM#d      member count of d;   USER#u / USER#u  live connections of user u
  USER#u / CONN#c      connection c belongs to user u;    ANON / CONN#c  c is anonymous
  METRICS / COUNTS     the counters behind the metrics;   METRICS / LATEST  the latest snapshot
The room and user counter items also carry live=ROOM / live=USER, so the sparse index lists them: the
reconciler recounts everything from the items themselves every RECONCILE_INTERVAL_SECONDS, without a Scan.
An entity's own item has SK = PK, so the inverted index ByConnection (SK -> PK) holds each connection's
whole footprint in one partition of its own, and no unrelated items pile into one hot partition.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.errors import ConnectionNotFound, Forbidden, RateLimited, TooManyRooms

logger = logging.getLogger(__name__)

CONNECTION_TTL_SECONDS = 2 * 3600 + 300  # API Gateway ends every connection after 2 h
COUNTER_TTL_SECONDS = 24 * 3600
SUBSCRIBERS_INDEX = "Subscribers"
BY_CONNECTION_INDEX = "ByConnection"
LIVE = "LIVE"
ROOM_KIND, USER_KIND = "ROOM", "USER"  # values of `live` on counter items (see the module docstring)
ANON = "ANON"
COUNTS_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "COUNTS"}}
LATEST_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "LATEST"}}
BATCH_LIMIT = 25


def connection_key(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def room_key(dashboard_id: str) -> str:
    return f"ROOM#{dashboard_id}"


def user_key(user_id: str) -> str:
    return f"USER#{user_id}"


@dataclass(frozen=True)
class Counts:
    connections: int = 0
    active_users: int = 0
    subscribers: int = 0
    active_dashboards: int = 0
    reconciled_at: int = field(default=0, compare=False)  # epoch milliseconds


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(int(value))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _error_code(error: BotoClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _cancellation_codes(error: BotoClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [reason.get("Code", "None") for reason in reasons]


class Store:
    def __init__(self, client: Any, table_name: str, clock: Any = time.time, page_size: int | None = None) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock
        self.page_size = page_size  # None: DynamoDB's own 1 MB pages

    # -- connections -------------------------------------------------------------------------
    def add_connection(self, connection_id: str, user_id: str | None, allowed: list[str] | None = None) -> None:
        """Register the connection; `allowed`, when given, is the only dashboards it may join."""
        now = self.clock()
        item = {
            "PK": _s(connection_key(connection_id)),
            "SK": _s(connection_key(connection_id)),
            "connectedAt": _n(now),
            "expiresAt": _n(now + CONNECTION_TTL_SECONDS),
            "rooms": _n(0),
        }
        if user_id is not None:
            item["userId"] = _s(user_id)
        if allowed is not None:
            item["allowed"] = {"L": [_s(dashboard) for dashboard in allowed]}
        try:
            self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(PK)"
            )
        except BotoClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return  # a retried $connect: already registered, counted once
            raise
        owner = ANON if user_id is None else user_key(user_id)
        self.client.put_item(
            TableName=self.table_name,
            Item={"PK": _s(owner), "SK": item["PK"], "expiresAt": item["expiresAt"]},
        )
        users = 1 if user_id is None else self._add_to_own_counter(owner, 1, now, USER_KIND) == 1
        self._add_counts(connections=1, activeUsers=int(users))

    def remove_connection(self, connection_id: str) -> bool:
        """Delete everything the connection owns; False when another call already did."""
        key = connection_key(connection_id)
        try:
            old = self.client.delete_item(
                TableName=self.table_name,
                Key={"PK": _s(key), "SK": _s(key)},
                ConditionExpression="attribute_exists(PK)",
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        except BotoClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        now = self.clock()
        footprint = [pk for pk in self._connection_footprint(key) if pk != key]
        rooms = [pk for pk in footprint if pk.startswith("ROOM#")]
        self._batch_delete([{"PK": _s(pk), "SK": _s(key)} for pk in footprint])
        emptied = sum(1 for pk in rooms if self._add_to_own_counter(pk, -1, now) == 0)
        users = -1
        if "userId" in old:
            users = -int(self._add_to_own_counter(user_key(old["userId"]["S"]), -1, now) == 0)
        self._add_counts(
            connections=-1,
            activeUsers=users,
            subscribers=-int("live" in old),
            activeDashboards=-emptied,
        )
        return True

    def connection_exists(self, connection_id: str) -> bool:
        return self._connection_item(connection_id) is not None

    def _connection_item(self, connection_id: str) -> dict[str, Any] | None:
        key = connection_key(connection_id)
        item = self.client.get_item(
            TableName=self.table_name, Key={"PK": _s(key), "SK": _s(key)}, ConsistentRead=True
        ).get("Item")
        return item if item is not None and int(item["expiresAt"]["N"]) > self.clock() else None

    def take_token(self, connection_id: str, per_second: float, burst: int) -> None:
        """A token bucket on the connection's own item (GCRA: one number, `rateTat`); RateLimited when empty.

        An unregistered connection is not limited here: the action itself answers it.
        """
        if per_second <= 0:
            return
        key = {"PK": _s(connection_key(connection_id)), "SK": _s(connection_key(connection_id))}
        now_ms, interval = int(self.clock() * 1000), max(1, int(1000 / per_second))
        attempts = [  # idle: the bucket has refilled; busy: take one more token if any is left
            ("SET rateTat = :next", "attribute_exists(PK) AND (attribute_not_exists(rateTat) OR rateTat <= :now)",
             {":next": _n(now_ms + interval), ":now": _n(now_ms)}),
            ("SET rateTat = rateTat + :interval", "rateTat > :now AND rateTat <= :ceiling",
             {":interval": _n(interval), ":now": _n(now_ms), ":ceiling": _n(now_ms + (burst - 1) * interval)}),
        ]
        for update, condition, values in attempts:
            try:
                self.client.update_item(
                    TableName=self.table_name, Key=key, UpdateExpression=update,
                    ConditionExpression=condition, ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            except BotoClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                registered = "Item" in error.response
        if registered:
            raise RateLimited(f"Too many requests: at most {per_second:g} a second; slow down and retry")

    # -- live metrics subscriptions ----------------------------------------------------------
    def subscribe(self, connection_id: str) -> bool:
        """Mark the connection a subscriber; False when it already was."""
        key = connection_key(connection_id)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"PK": _s(key), "SK": _s(key)},
                UpdateExpression="SET live = :live",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(live)",
                ExpressionAttributeValues={":live": _s(LIVE)},
            )
        except BotoClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            if self.connection_exists(connection_id):
                return False
            raise ConnectionNotFound(connection_id) from None
        self._add_counts(subscribers=1)
        return True

    def unsubscribe(self, connection_id: str) -> bool:
        key = connection_key(connection_id)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"PK": _s(key), "SK": _s(key)},
                UpdateExpression="REMOVE live",
                ConditionExpression="attribute_exists(live)",
            )
        except BotoClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        self._add_counts(subscribers=-1)
        return True

    def subscribers(self) -> Iterator[list[str]]:
        """Pages of subscribed connection ids, from the sparse index; expired connections left out."""
        return self._pages(
            IndexName=SUBSCRIBERS_INDEX,
            KeyConditionExpression="live = :live",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":live": _s(LIVE), ":now": _n(self.clock())},
            ProjectionExpression="PK",
            field="PK",
            prefix="CONN#",
        )

    # -- dashboard rooms ---------------------------------------------------------------------
    def join_room(self, connection_id: str, dashboard_id: str, max_rooms: int) -> bool:
        """Add the connection to the room; False when it was already a member."""
        now = self.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                "PK": _s(room),
                                "SK": _s(conn),
                                "expiresAt": _n(now + CONNECTION_TTL_SECONDS),
                            },
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"PK": _s(conn), "SK": _s(conn)},
                            "UpdateExpression": "ADD rooms :one",
                            "ConditionExpression": "attribute_exists(PK) AND rooms < :max"
                            " AND (attribute_not_exists(allowed) OR contains(allowed, :dashboard))",
                            "ExpressionAttributeValues": {
                                ":one": _n(1),
                                ":max": _n(max_rooms),
                                ":dashboard": _s(dashboard_id),
                            },
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            item = self._connection_item(connection_id)
            if item is None:
                raise ConnectionNotFound(connection_id) from None
            if "allowed" in item and _s(dashboard_id) not in item["allowed"]["L"]:
                raise Forbidden("This connection may not join that dashboard") from None
            raise TooManyRooms(f"A connection may be in at most {max_rooms} dashboards") from None
        if self._add_to_own_counter(room, 1, now, ROOM_KIND) == 1:
            self._add_counts(activeDashboards=1)
        return True

    def leave_room(self, connection_id: str, dashboard_id: str) -> bool:
        now = self.clock()
        conn, room = connection_key(connection_id), room_key(dashboard_id)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": {"PK": _s(room), "SK": _s(conn)},
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {"PK": _s(conn), "SK": _s(conn)},
                            "UpdateExpression": "ADD rooms :minus",
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeValues": {":minus": _n(-1)},
                        }
                    },
                ]
            )
        except BotoClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            raise ConnectionNotFound(connection_id) from None
        if self._add_to_own_counter(room, -1, now) == 0:
            self._add_counts(activeDashboards=-1)
        return True

    def room_members(self, dashboard_id: str) -> Iterator[list[str]]:
        return self._pages(
            KeyConditionExpression="PK = :room AND begins_with(SK, :conn)",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={
                ":room": _s(room_key(dashboard_id)),
                ":conn": _s("CONN#"),
                ":now": _n(self.clock()),
            },
            ProjectionExpression="SK",
            field="SK",
            prefix="CONN#",
        )

    def connection_rooms(self, connection_id: str) -> list[str]:
        rooms = self._connection_footprint(connection_key(connection_id))
        return sorted(pk.removeprefix("ROOM#") for pk in rooms if pk.startswith("ROOM#"))

    # -- counters and snapshot ---------------------------------------------------------------
    def counts(self) -> Counts:
        item = self.client.get_item(TableName=self.table_name, Key=COUNTS_KEY, ConsistentRead=True).get(
            "Item", {}
        )

        def read(name: str) -> int:
            return max(0, int(item.get(name, {"N": "0"})["N"]))

        return Counts(
            connections=read("connections"),
            active_users=read("activeUsers"),
            subscribers=read("subscribers"),
            active_dashboards=read("activeDashboards"),
            reconciled_at=read("reconciledAt"),
        )

    # -- reconciliation ----------------------------------------------------------------------
    def claim_reconciliation(self, seen: Counts, interval: float) -> bool:
        """True for the one caller that may reconcile now: the last pass is `interval` old and nobody claimed it."""
        now = int(self.clock() * 1000)
        if now - seen.reconciled_at < interval * 1000:
            return False
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=COUNTS_KEY,
                UpdateExpression="SET reconciledAt = :now, expiresAt = :exp",
                ConditionExpression="attribute_not_exists(reconciledAt) OR reconciledAt = :seen",
                ExpressionAttributeValues={
                    ":now": _n(now),
                    ":seen": _n(seen.reconciled_at),
                    ":exp": _n(now // 1000 + COUNTER_TTL_SECONDS),
                },
            )
        except BotoClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def reconcile(self) -> Counts | None:
        """Recount from the items (expired ones left out) and overwrite the counters; None if they moved meanwhile."""
        version = self.client.get_item(TableName=self.table_name, Key=COUNTS_KEY, ConsistentRead=True).get(
            "Item", {}
        ).get("version")
        now = self.clock()
        anonymous = self._live_members(ANON, now)
        users = [self._heal_members(pk, now) for page in self._kind(USER_KIND) for pk in page]
        rooms = [self._heal_members(pk, now) for page in self._kind(ROOM_KIND) for pk in page]
        counts = Counts(
            connections=anonymous + sum(users),
            active_users=anonymous + sum(1 for n in users if n),
            subscribers=self._count(
                IndexName=SUBSCRIBERS_INDEX,
                KeyConditionExpression="live = :live",
                FilterExpression="expiresAt > :now",
                ExpressionAttributeValues={":live": _s(LIVE), ":now": _n(now)},
            ),
            active_dashboards=sum(1 for n in rooms if n),
        )
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=COUNTS_KEY,
                UpdateExpression="SET connections = :c, activeUsers = :u, subscribers = :s, activeDashboards = :d"
                ", expiresAt = :exp ADD version :one",
                ConditionExpression="attribute_not_exists(version)" if version is None else "version = :v",
                ExpressionAttributeValues={
                    ":c": _n(counts.connections),
                    ":u": _n(counts.active_users),
                    ":s": _n(counts.subscribers),
                    ":d": _n(counts.active_dashboards),
                    ":exp": _n(now + COUNTER_TTL_SECONDS),
                    ":one": _n(1),
                    **({} if version is None else {":v": version}),
                },
            )
        except BotoClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            logger.info("counts changed during reconciliation; the next pass will settle them")
            return None
        return counts

    def _kind(self, kind: str) -> Iterator[list[str]]:
        return self._pages(
            IndexName=SUBSCRIBERS_INDEX,
            KeyConditionExpression="live = :kind",
            ExpressionAttributeValues={":kind": _s(kind)},
            ProjectionExpression="PK",
            field="PK",
        )

    def _live_members(self, pk: str, now: float) -> int:
        return self._count(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :conn)",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":pk": _s(pk), ":conn": _s("CONN#"), ":now": _n(now)},
            ConsistentRead=True,
        )

    def _heal_members(self, pk: str, now: float) -> int:
        """The live members of a room or user; its own `members` counter is set to that number if it drifted."""
        key = {"PK": _s(pk), "SK": _s(pk)}
        old = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item", {})
        live = self._live_members(pk, now)
        if "members" in old and int(old["members"]["N"]) != live:
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression="SET members = :live",
                    ConditionExpression="members = :old",
                    ExpressionAttributeValues={":live": _n(live), ":old": old["members"]},
                )
            except BotoClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
        return live

    def _count(self, **query: Any) -> int:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Select": "COUNT", **query}
        if self.page_size:
            kwargs["Limit"] = self.page_size
        total = 0
        while True:
            page = self.client.query(**kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def latest_snapshot(self) -> tuple[float, list[dict[str, Any]]] | None:
        item = self.client.get_item(TableName=self.table_name, Key=LATEST_KEY).get("Item")
        if item is None:
            return None
        return float(item["computedAt"]["N"]), json.loads(item["snapshot"]["S"])

    def save_snapshot(self, snapshot: list[dict[str, Any]]) -> None:
        now = self.clock()
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **LATEST_KEY,
                "computedAt": {"N": repr(now)},
                "snapshot": _s(json.dumps(snapshot, separators=(",", ":"))),
                "expiresAt": _n(now + COUNTER_TTL_SECONDS),
            },
        )

    # -- internals ---------------------------------------------------------------------------
    def _add_counts(self, **deltas: int) -> None:
        deltas = {name: delta for name, delta in deltas.items() if delta}
        if not deltas:
            return
        adds = ", ".join(f"{name} :{name}" for name in deltas)
        now = self.clock()
        # `version` lets the reconciler see a concurrent change; the first change starts its clock.
        self.client.update_item(
            TableName=self.table_name,
            Key=COUNTS_KEY,
            UpdateExpression=f"ADD {adds}, version :one SET expiresAt = :exp, "
            "reconciledAt = if_not_exists(reconciledAt, :now)",
            ExpressionAttributeValues={
                **{f":{name}": _n(delta) for name, delta in deltas.items()},
                ":one": _n(1),
                ":exp": _n(now + COUNTER_TTL_SECONDS),
                ":now": _n(now * 1000),
            },
        )

    def _add_to_own_counter(self, pk: str, delta: int, now: float, kind: str | None = None) -> int:
        """Atomically add to the `members` count of an entity's own item; return the new count."""
        values = {":delta": _n(delta), ":exp": _n(now + CONNECTION_TTL_SECONDS)}
        tag = ""
        if kind is not None:
            tag, values[":kind"] = ", live = :kind", _s(kind)
        result = self.client.update_item(
            TableName=self.table_name,
            Key={"PK": _s(pk), "SK": _s(pk)},
            UpdateExpression=f"ADD members :delta SET expiresAt = :exp{tag}",
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["members"]["N"])

    def _connection_footprint(self, key: str) -> list[str]:
        """Every PK whose item has SK = key: the connection itself and its room memberships."""
        return [
            pk
            for page in self._pages(
                IndexName=BY_CONNECTION_INDEX,
                KeyConditionExpression="SK = :key",
                ExpressionAttributeValues={":key": _s(key)},
                field="PK",
            )
            for pk in page
        ]

    def _pages(self, field: str, prefix: str = "", **query: Any) -> Iterator[list[str]]:
        """Follow LastEvaluatedKey to the end, yielding one page of `field` values (less `prefix`)."""
        kwargs: dict[str, Any] = {"TableName": self.table_name, **query}
        if self.page_size:
            kwargs["Limit"] = self.page_size
        while True:
            page = self.client.query(**kwargs)
            yield [item[field]["S"].removeprefix(prefix) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_delete(self, keys: Iterable[dict[str, Any]]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), BATCH_LIMIT):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + BATCH_LIMIT]]
            self._batch_write(requests)

    def _batch_write(self, requests: list[dict[str, Any]], attempts: int = 8) -> None:
        pending = {self.table_name: requests}
        for attempt in range(attempts):
            pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(1.0, 0.02 * 2**attempt))
        raise RuntimeError(f"DynamoDB left {len(pending[self.table_name])} deletes unprocessed")
