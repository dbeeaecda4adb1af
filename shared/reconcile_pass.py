"""The reconciliation pass's own record: its place between runs (METRICS / RECONCILE) and the totals it writes
back to METRICS / COUNTS at its end (see shared/reconciler.py for the pass itself)."""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.counters import COUNTS_KEY
from shared.table import ANON, BY_LIVE_KIND_INDEX, COUNTER_TTL_SECONDS, LIVE, ROOM_KIND, USER_KIND, Table, num, text

logger = logging.getLogger("shared.reconciler")

RECONCILE_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "RECONCILE"}}
DONE = "DONE"


class PassRecord:
    """Where the pass is, and its sums; a new pass starts at most `interval_seconds` after the last one ended."""

    def __init__(self, table: Table, interval_seconds: float) -> None:
        self.table = table
        self.interval_seconds = interval_seconds

    @staticmethod
    def add_to_sums(state: dict[str, Any], kind: str, members: int) -> None:
        for name, delta in contribution_change(kind, 0, members).items():
            state[name] = state.get(name, 0) + delta

    def counts_version(self) -> Any:
        return (self.table.get(COUNTS_KEY, consistent=True) or {}).get("version")

    def count_subscribers(self) -> int:
        return self.table.count(
            IndexName=BY_LIVE_KIND_INDEX,
            KeyConditionExpression="live = :live",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":live": text(LIVE), ":now": num(self.table.clock())},
        )

    def write_totals(self, state: dict[str, Any], subscribers: int, before: Any) -> bool:
        """Overwrite the totals with the pass's sums, unless any change came since the pass started."""
        start = state.get("startVersion")
        if before != start or self.counts_version() != start:
            logger.info("counts changed during the reconciliation pass; the heals stand, the totals wait")
            return False
        now = self.table.clock()
        values = {
            ":c": num(state.get("connections", 0)),
            ":u": num(state.get("activeUsers", 0)),
            ":s": num(subscribers),
            ":d": num(state.get("activeDashboards", 0)),
            ":exp": num(now + COUNTER_TTL_SECONDS),
            **({} if start is None else {":v": start}),
        }
        written = self.table.conditional(
            "update_item",
            Key=COUNTS_KEY,
            UpdateExpression="SET connections = :c, activeUsers = :u, subscribers = :s, activeDashboards = :d"
            ", expiresAt = :exp",
            ConditionExpression="attribute_not_exists(version)" if start is None else "version = :v",
            ExpressionAttributeValues=values,
        )
        return written is not None

    def load(self) -> tuple[dict[str, Any], int] | None:
        """The pass under way, a new one, or None while the last pass ended less than an interval ago."""
        item = self.table.get(RECONCILE_KEY, consistent=True)
        step = int(item["step"]["N"]) if item is not None else 0
        if item is not None and "state" in item:
            state: dict[str, Any] = json.loads(item["state"]["S"])
            if state.get("phase") != DONE:
                return state, step
            if self.table.clock() - int(item["savedAt"]["N"]) < self.interval_seconds:
                return None
        return {"phase": ANON, "startVersion": self.counts_version()}, step

    def save(self, state: dict[str, Any], step: int, finished: bool) -> bool:
        """Keep the place for the next run (conditional on the step read: one run at a time moves it)."""
        now = self.table.clock()
        saved = self.table.conditional(
            "put_item",
            Item={
                **RECONCILE_KEY,
                "step": num(step + 1),
                "state": text(json.dumps({"phase": DONE} if finished else state, separators=(",", ":"))),
                "savedAt": num(now),
                "expiresAt": num(now + COUNTER_TTL_SECONDS),
            },
            ConditionExpression="attribute_not_exists(step)" if step == 0 else "step = :step",
            **({} if step == 0 else {"ExpressionAttributeValues": {":step": num(step)}}),
        )
        return saved is not None


def contribution_change(kind: str, old: int, new: int) -> dict[str, int]:
    """What a counter going from `old` to `new` members changes in the totals."""
    if kind == ROOM_KIND:
        return {"activeDashboards": int(new >= 1) - int(old >= 1)}
    if kind == USER_KIND:
        return {"connections": new - old, "activeUsers": int(new >= 1) - int(old >= 1)}
    return {"connections": new - old, "activeUsers": new - old}  # ANON: each anonymous connection is a user
