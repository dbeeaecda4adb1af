"""The table underneath the store: keys, attribute helpers, counters, the snapshot, paging and batches."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

CONNECTION_TTL_SECONDS = 2 * 3600 + 300  # API Gateway ends every connection after 2 h
COUNTER_TTL_SECONDS = 24 * 3600
SUBSCRIBERS_INDEX = "Subscribers"
BY_CONNECTION_INDEX = "ByConnection"
LIVE = "LIVE"
ROOM_KIND, USER_KIND = "ROOM", "USER"  # values of `live` on counter items (see shared/reconciler.py)
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


def num(value: int | float) -> dict[str, str]:
    return {"N": str(int(value))}


def text(value: str) -> dict[str, str]:
    return {"S": value}


def error_code(error: BotoClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def own_key(pk: str) -> dict[str, Any]:
    """The key of an entity's own item, whose SK is its PK."""
    return {"PK": text(pk), "SK": text(pk)}


def cancellation_codes(error: BotoClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [reason.get("Code", "None") for reason in reasons]


class Table:
    """One DynamoDB table through the low-level client (thread-safe, unlike boto3's resources)."""

    def __init__(self, client: Any, table_name: str, clock: Any = time.time, page_size: int | None = None) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock
        self.page_size = page_size  # None: DynamoDB's own 1 MB pages

    def _conditional(self, operation: str, **request: Any) -> dict[str, Any] | None:
        """A conditional write on this table; its answer, or None when the condition did not hold."""
        try:
            return getattr(self.client, operation)(TableName=self.table_name, **request)
        except BotoClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise


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
                "snapshot": text(json.dumps(snapshot, separators=(",", ":"))),
                "expiresAt": num(now + COUNTER_TTL_SECONDS),
            },
        )

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
                **{f":{name}": num(delta) for name, delta in deltas.items()},
                ":one": num(1),
                ":exp": num(now + COUNTER_TTL_SECONDS),
                ":now": num(now * 1000),
            },
        )

    def _add_to_own_counter(self, pk: str, delta: int, now: float, kind: str | None = None) -> int:
        """Atomically add to the `members` count of an entity's own item; return the new count."""
        values = {":delta": num(delta), ":exp": num(now + CONNECTION_TTL_SECONDS)}
        tag = ""
        if kind is not None:
            tag, values[":kind"] = ", live = :kind", text(kind)
        result = self.client.update_item(
            TableName=self.table_name,
            Key=own_key(pk),
            UpdateExpression=f"ADD members :delta SET expiresAt = :exp{tag}",
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["members"]["N"])

    def _pages(self, field: str, prefix: str = "", **query: Any) -> Iterator[list[str]]:
        """Follow LastEvaluatedKey to the end, yielding one page of `field` values (less `prefix`)."""
        for items in self._items(**query):
            yield [item[field]["S"].removeprefix(prefix) for item in items]

    def _items(self, **query: Any) -> Iterator[list[dict[str, Any]]]:
        """Follow LastEvaluatedKey to the end, yielding each page's items."""
        kwargs: dict[str, Any] = {"TableName": self.table_name, **query}
        if self.page_size:
            kwargs["Limit"] = self.page_size
        while True:
            page = self.client.query(**kwargs)
            yield page.get("Items", [])
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
