"""The latest snapshot: the METRICS/LATEST item, remembered in the process while it is fresher than one push period."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.table import COUNTER_TTL_SECONDS, Table, num, text

LATEST_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "LATEST"}}

Snapshot = list[dict[str, Any]]


class LatestSnapshot:
    """`METRICS/LATEST`, the snapshot each tick pushed, read through a process cache while it is younger than
    `max_age` (the push period). `analytics:requestLiveMetrics` does not serve it: a request is answered with
    the counters as of the request (shared/actions.py)."""

    def __init__(self, table: Table, max_age: float, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def get(self) -> Snapshot | None:
        """The fresh snapshot, or None when none is fresh."""
        cached = self._fresh()
        if cached is not None:
            return cached
        latest = self.stored()
        if latest is None or self.clock() - latest[0] >= self.max_age:
            return None
        self._remember(*latest)
        return latest[1]

    def _fresh(self) -> Snapshot | None:
        with self._lock:
            cached = self._cached
        if cached is not None and self.clock() - cached[0] < self.max_age:
            return cached[1]
        return None

    def stored(self) -> tuple[float, Snapshot] | None:
        """(computed at, snapshot) as the table holds it, however old; None before the first save."""
        item = self.table.get(LATEST_KEY)
        if item is None:
            return None
        snapshot: Snapshot = json.loads(item["snapshot"]["S"])
        return float(item["computedAt"]["N"]), snapshot

    def save(self, snapshot: Snapshot) -> None:
        now = self.table.clock()  # the table's clock, like every other expiresAt
        self.table.client.put_item(
            TableName=self.table.table_name,
            Item={
                **LATEST_KEY,
                "computedAt": {"N": repr(now)},
                "snapshot": text(json.dumps(snapshot, separators=(",", ":"))),
                "expiresAt": num(now + COUNTER_TTL_SECONDS),
            },
        )
        self._remember(self.clock(), snapshot)

    def _remember(self, computed_at: float, snapshot: Snapshot) -> None:
        with self._lock:
            if self._cached is None or computed_at >= self._cached[0]:
                self._cached = (computed_at, snapshot)
