"""The one DynamoDB table: item keys, attribute helpers, and the reads and writes its users share.

Item layout (one table, PK/SK strings, TTL on expiresAt):
  CONN#c / CONN#c      a connection; `live` marks a subscriber (sparse index ByLiveKind); `protocol` is
                       socketio for Socket.IO (absent: JSON frames); `pending` until Socket.IO's CONNECT;
                       `roomIds` the string set of its dashboards (its footprint, read back by its delete)
  SOCKETIO / CONN#c    c speaks Socket.IO: the heartbeat pings it
  ROOM#d / CONN#c      membership of connection c in dashboard d
  ROOM#d / ROOM#d      member count of d;   USER#u / USER#u  live connections of user u
  USER#u / CONN#c      connection c belongs to user u;    ANON / CONN#c  c is anonymous
  ANON / ANON          the count of anonymous connections
  METRICS / COUNTS     the counters behind the metrics (shared/counters.py)
  METRICS / LATEST     the latest tick's snapshot (shared/snapshots.py)
  METRICS / REPORTED   the reported metrics: a map name -> {value, at} (shared/reported.py)
  METRICS / RECONCILE  where the reconciler's pass is (shared/reconciler.py)
The room and user counter items also carry live=ROOM / live=USER, so the sparse index lists them: the
reconciler (shared/reconciler.py) recounts everything from the items themselves, without a Scan. An
entity's own item has SK = PK, so the inverted index ByConnection (SK -> PK) holds each connection's whole
footprint in one partition of its own; cleanup reads the footprint from the connection item instead (an
index is eventually consistent), and asks the index only for items written before `roomIds` existed.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError as BotoClientError

from shared.errors import ConditionFailed

CONNECTION_TTL_SECONDS = 2 * 3600 + 300  # API Gateway ends every connection after 2 h
COUNTER_TTL_SECONDS = 24 * 3600
# Sparse: only items with `live` are in it. Subscribers carry live=LIVE, room and user counter items
# live=ROOM / live=USER, so one Query by kind lists either without a Scan.
BY_LIVE_KIND_INDEX = "ByLiveKind"
BY_CONNECTION_INDEX = "ByConnection"  # SK -> PK: every item a connection owns, in one partition
LIVE = "LIVE"
ROOM_KIND, USER_KIND = "ROOM", "USER"  # values of `live` on counter items (see shared/reconciler.py)
ANON = "ANON"
BATCH_LIMIT = 25
# What DynamoDB answers a single-item write while a transaction is changing the same item; botocore does not
# retry it. The product writes no transaction, but a table may be shared with tools that do.
RETRYABLE_CODES = frozenset({"TransactionConflictException"})
CONFLICT_ATTEMPTS = 8  # the first one included
CONFLICT_BACKOFF_SECONDS = 0.025  # full jitter: random() * min(base * 2 ** retry, cap)
CONFLICT_BACKOFF_CAP_SECONDS = 1.0
# (the same bound and backoff for what a BatchGetItem or a BatchWriteItem leaves unprocessed)


def connection_key(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def room_key(dashboard_id: str) -> str:
    return f"ROOM#{dashboard_id}"


def user_key(user_id: str) -> str:
    return f"USER#{user_id}"


def num(value: int | float) -> dict[str, str]:
    return {"N": str(int(value))}


def text(value: str) -> dict[str, str]:
    return {"S": value}


def error_code(error: BotoClientError) -> str:
    code: str = error.response.get("Error", {}).get("Code", "")
    return code


def own_key(pk: str) -> dict[str, Any]:
    """The key of an entity's own item, whose SK is its PK."""
    return {"PK": text(pk), "SK": text(pk)}


def retryable(error: BotoClientError) -> bool:
    """A conflict with a transaction on the same item: the same call may succeed later."""
    return error_code(error) in RETRYABLE_CODES


class Table:
    """One DynamoDB table through the low-level client (thread-safe, unlike boto3's resources).

    Store, Rooms, Counters, Reconciler and LatestSnapshot each hold the same Table; the class itself knows
    no item layout: the module docstring describes the one they share.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        clock: Callable[[], float] = time.time,
        page_size: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock
        self.page_size = page_size  # None: DynamoDB's own 1 MB pages
        self.sleep = sleep  # the backoff between retries, of conflicts and unprocessed keys or items (injectable)
        self.random = random
        self.conflict_attempts = CONFLICT_ATTEMPTS

    def call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One request on this table (its name added here), retried (bounded, jittered) while it meets what
        botocore does not retry: TransactionConflictException (botocore retries throttling itself). A failed
        condition is raised as ConditionFailed, with the item when the request asked for it back."""
        request.setdefault("TableName", self.table_name)
        for retry in range(self.conflict_attempts):
            try:
                answer: dict[str, Any] = getattr(self.client, operation)(**request)
                return answer
            except BotoClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    raise ConditionFailed(error.response.get("Item")) from None
                if not retryable(error) or retry == self.conflict_attempts - 1:
                    raise
                self._back_off(retry)
        raise AssertionError("unreachable")

    def get(self, key: dict[str, Any], consistent: bool = False) -> dict[str, Any] | None:
        """The item under `key`, or None."""
        item: dict[str, Any] | None = self.call("get_item", Key=key, ConsistentRead=consistent).get("Item")
        return item

    def get_many(self, keys: list[dict[str, Any]], consistent: bool = False) -> list[dict[str, Any] | None]:
        """The items under `keys`, in their order (None where there is none): one BatchGetItem, its
        UnprocessedKeys asked again (bounded, backing off)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}

        def read(pending: dict[str, Any]) -> dict[str, Any]:
            answer = self.client.batch_get_item(RequestItems=pending)
            for item in answer.get("Responses", {}).get(self.table_name, []):
                found[item["PK"]["S"], item["SK"]["S"]] = item
            return answer.get("UnprocessedKeys") or {}

        left = self._until_processed(read, {self.table_name: {"Keys": keys, "ConsistentRead": consistent}})
        if left:
            raise RuntimeError(f"DynamoDB left {len(left[self.table_name]['Keys'])} reads unprocessed")
        return [found.get((key["PK"]["S"], key["SK"]["S"])) for key in keys]

    def conditional(self, operation: str, **request: Any) -> dict[str, Any] | None:
        """A conditional write on this table; its answer, or None when the condition did not hold."""
        try:
            return self.call(operation, **request)
        except ConditionFailed:
            return None

    def pages(self, field: str, prefix: str = "", **query: Any) -> Iterator[list[str]]:
        """Follow LastEvaluatedKey to the end, yielding one page of `field` values (less `prefix`)."""
        for items in self.items(**query):
            yield [item[field]["S"].removeprefix(prefix) for item in items]

    def items(self, **query: Any) -> Iterator[list[dict[str, Any]]]:
        """Follow LastEvaluatedKey to the end, yielding each page's items."""
        kwargs: dict[str, Any] = dict(query)
        if self.page_size:
            kwargs["Limit"] = self.page_size
        while True:
            page = self.call("query", **kwargs)
            yield page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self, **query: Any) -> int:
        """The number of items a Query matches, over every page (`Select=COUNT`: no items are read out)."""
        kwargs: dict[str, Any] = {"Select": "COUNT", **query}
        if self.page_size:
            kwargs["Limit"] = self.page_size
        total = 0
        while True:
            page = self.call("query", **kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def batch_delete(self, keys: Iterable[dict[str, Any]]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), BATCH_LIMIT):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + BATCH_LIMIT]]
            self._batch_write(requests)

    def batch_put(self, items: Iterable[dict[str, Any]]) -> None:
        """Unconditional puts, 25 to a BatchWriteItem: one round trip for items no reader needs in any order."""
        items = list(items)
        for start in range(0, len(items), BATCH_LIMIT):
            self._batch_write([{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_LIMIT]])

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """One BatchWriteItem, its UnprocessedItems sent again (bounded, backing off)."""

        def write(pending: dict[str, Any]) -> dict[str, Any]:
            return self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

        left = self._until_processed(write, {self.table_name: requests})
        if left:
            raise RuntimeError(f"DynamoDB left {len(left[self.table_name])} writes unprocessed")

    def _until_processed(
        self, send: Callable[[dict[str, Any]], dict[str, Any]], pending: dict[str, Any]
    ) -> dict[str, Any]:
        """Send `pending`, then what DynamoDB left unprocessed, until it leaves nothing (bounded, backing off
        after each answer that leaves some); what the last attempt left ({}: nothing)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            pending = send(pending)
            if not pending:
                return {}
            self._back_off(attempt)
        return pending

    def _back_off(self, retry: int) -> None:
        """Full jitter: a random wait up to min(base * 2 ** retry, cap)."""
        self.sleep(self.random() * min(CONFLICT_BACKOFF_SECONDS * 2**retry, CONFLICT_BACKOFF_CAP_SECONDS))
