"""The counters behind the metrics: one item, METRICS/COUNTS, changed only by atomic `ADD`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.table import COUNTER_TTL_SECONDS, Table, num

COUNTS_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "COUNTS"}}


@dataclass(frozen=True)
class Counts:
    connections: int = 0
    active_users: int = 0
    subscribers: int = 0
    active_dashboards: int = 0
    pinged_at: int = field(default=0, compare=False)  # epoch milliseconds of the last Socket.IO heartbeat


class Counters:
    """Read and add to the counters. Store and Rooms add as state changes; the Reconciler heals them."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key = COUNTS_KEY

    def read(self) -> Counts:
        return self.parse(self.table.get(COUNTS_KEY, consistent=True))

    @staticmethod
    def parse(found: dict[str, Any] | None) -> Counts:
        """The counts an item holds (read by a strongly consistent GetItem, or a caller's batch)."""
        item = found or {}

        def read(name: str) -> int:
            return max(0, int(item.get(name, {"N": "0"})["N"]))

        return Counts(
            connections=read("connections"),
            active_users=read("activeUsers"),
            subscribers=read("subscribers"),
            active_dashboards=read("activeDashboards"),
            pinged_at=read("pingedAt"),
        )

    def claim_ping(self, seen: Counts, interval: float) -> bool:
        """True for the one caller that pings now: the last heartbeat is `interval` old and nobody claimed it."""
        now = int(self.table.clock() * 1000)
        if now - seen.pinged_at < interval * 1000:
            return False
        claimed = self.table.conditional(
            "update_item",
            Key=COUNTS_KEY,
            UpdateExpression="SET pingedAt = :now, expiresAt = :exp",
            ConditionExpression="attribute_not_exists(pingedAt) OR pingedAt = :seen",
            ExpressionAttributeValues={
                ":now": num(now),
                ":seen": num(seen.pinged_at),
                ":exp": num(now // 1000 + COUNTER_TTL_SECONDS),
            },
        )
        return claimed is not None

    def add(self, bump: bool = True, **deltas: int) -> Counts | None:
        """Add to the named attributes (connections, activeUsers, subscribers, activeDashboards) in one update; the
        counts it leaves (None when there was nothing to add): a caller that tells them needs no read.

        `version` counts the changes, so that the reconciler sees one; its own heals add without it (bump=False).
        """
        deltas = {name: delta for name, delta in deltas.items() if delta}
        if not deltas:
            return None
        adds = ", ".join([*(f"{name} :{name}" for name in deltas), *(["version :one"] if bump else [])])
        now = self.table.clock()
        answer = self.table.call(
            "update_item",
            Key=COUNTS_KEY,
            UpdateExpression=f"ADD {adds} SET expiresAt = :exp",
            ExpressionAttributeValues={
                **{f":{name}": num(delta) for name, delta in deltas.items()},
                **({":one": num(1)} if bump else {}),
                ":exp": num(now + COUNTER_TTL_SECONDS),
            },
            ReturnValues="ALL_NEW",
        )
        return self.parse(answer.get("Attributes"))
