"""The latest tick's snapshot: the METRICS/LATEST item, its readings remembered in the process for one period."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.contract import COUNT_METRIC_NAMES
from shared.table import COUNTER_TTL_SECONDS, Table, num, text

LATEST_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "LATEST"}}

Snapshot = list[dict[str, Any]]
Reading = tuple[str, float]  # (name, value) of a metric other than the counts: CPU, memory, a reported one


def readings_of(snapshot: Snapshot) -> list[Reading]:
    """What a snapshot holds beside the counts, in its order."""
    return [(metric["name"], metric["value"]) for metric in snapshot if metric["name"] not in COUNT_METRIC_NAMES]


class LatestSnapshot:
    """`METRICS/LATEST`, the snapshot each tick pushed. A request and a subscribe answer with the counts as of the
    request and this tick's readings (shared/metrics.py): remembered in the process while younger than one push
    `period`; read from the table, a tick up to two periods old is still the latest (the next may be late by up to
    a period: its fan-out, a new run's start)."""

    def __init__(self, table: Table, period: float, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.period = period
        self.clock = clock
        self.key = LATEST_KEY
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Reading]] | None = None

    def remembered(self) -> list[Reading] | None:
        """The readings of the tick this process saved or read, while younger than one period; else None."""
        with self._lock:
            cached = self._cached
        if cached is not None and self.clock() - cached[0] < self.period:
            return cached[1]
        return None

    def readings(self, item: dict[str, Any] | None) -> list[Reading] | None:
        """The readings of a tick read from the table (by a caller's batch), remembered, or None when it holds none
        younger than two periods."""
        latest = self._parse(item)
        if latest is None or self.clock() - latest[0] >= 2 * self.period:
            return None
        readings = readings_of(latest[1])
        self._remember(latest[0], readings)
        return readings

    def last_saved(self) -> tuple[float, Snapshot] | None:
        """(computed at, snapshot) as the table holds it, however old; None before the first save."""
        return self._parse(self.table.get(LATEST_KEY))

    @staticmethod
    def _parse(item: dict[str, Any] | None) -> tuple[float, Snapshot] | None:
        if item is None:
            return None
        snapshot: Snapshot = json.loads(item["snapshot"]["S"])
        return float(item["computedAt"]["N"]), snapshot

    def save(self, snapshot: Snapshot) -> None:
        now = self.table.clock()  # the table's clock, like every other expiresAt
        self.table.call(
            "put_item",
            Item={
                **LATEST_KEY,
                "computedAt": {"N": repr(now)},
                "snapshot": text(json.dumps(snapshot, separators=(",", ":"))),
                "expiresAt": num(now + COUNTER_TTL_SECONDS),
            },
        )
        self._remember(self.clock(), readings_of(snapshot))

    def _remember(self, computed_at: float, readings: list[Reading]) -> None:
        with self._lock:
            if self._cached is None or computed_at >= self._cached[0]:
                self._cached = (computed_at, readings)
