"""Reported metrics: the gauges the operator's services report (EventBridge MetricReport), on one item,
METRICS/REPORTED, a map name -> {value, at}. A metric older than REPORTED_METRIC_MAX_AGE_SECONDS leaves the
snapshot; at most REPORTED_METRICS_MAX names are kept, stale ones pruned to make room."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared import validation
from shared.config import REPORTED
from shared.contract import METRIC_REPORT_DETAIL_TYPE, UPDATE_SOURCE
from shared.errors import Busy, ConditionFailed, InvalidInput
from shared.events import EventBridgeEvent
from shared.table import Table, num

REPORTED_KEY = {"PK": {"S": "METRICS"}, "SK": {"S": "REPORTED"}}
ATTEMPTS = 4  # a report races at most the map's creation and a pruning
TTL_MARGIN_SECONDS = 3600  # the item outlives its newest metric's freshness by this much, then DynamoDB removes it


class TooManyMetrics(InvalidInput):
    pass


class ReportedMetrics:
    """Writes with one conditional UpdateItem (a nested SET whose condition holds the cap with size()); reads
    return the fresh metrics only."""

    def __init__(self, table: Table, max_age: float, max_names: int) -> None:
        self.table = table
        self.max_age = max_age
        self.max_names = max_names
        self.key = REPORTED_KEY
        # Seen full of fresh names: those names, and until when the oldest of them stays fresh. Only a stale entry
        # is ever removed, so until then a new name is refused without a write (a flood of names costs nothing).
        self._full: tuple[int, frozenset[str]] | None = None

    def put(self, name: str, value: float) -> None:
        """Store one metric's value; TooManyMetrics when the map is full of fresh ones (nothing stored then)."""
        for _ in range(ATTEMPTS):
            now_ms = int(self.table.clock() * 1000)
            full = self._full
            if full is not None and now_ms < full[0] and name not in full[1]:
                raise self._too_many()
            entry = {"M": {"value": {"S": json.dumps(value)}, "at": num(now_ms)}}  # JSON text: any finite number
            old = self._set(name, entry, now_ms)
            if old is None:
                return
            metrics = old.get("metrics", {}).get("M")
            if metrics is None:
                if self._create(name, entry, now_ms):
                    return
                continue
            stale = [stored for stored, held in metrics.items() if self._stale(held, now_ms)]
            if not stale:
                oldest = min(int(held["M"]["at"]["N"]) for held in metrics.values())
                self._full = (oldest + int(self.max_age * 1000), frozenset(metrics))
                raise self._too_many()
            self._prune(stale, now_ms)
        raise Busy("Too many metric reports at once; retry")

    def _too_many(self) -> TooManyMetrics:
        return TooManyMetrics(f"At most {self.max_names} metrics are kept at once; this would be one more")

    def _set(self, name: str, entry: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
        """None when stored; else the item as it was ({} when there is none)."""
        try:
            self.table.call(
                "update_item",
                Key=REPORTED_KEY,
                UpdateExpression="SET #m.#n = :entry, expiresAt = :exp",
                ConditionExpression="attribute_exists(#m) AND (attribute_exists(#m.#n) OR size(#m) < :cap)",
                ExpressionAttributeNames={"#m": "metrics", "#n": name},
                ExpressionAttributeValues={":entry": entry, ":cap": num(self.max_names), ":exp": self._expiry(now_ms)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
            return failed.item or {}
        return None

    def _create(self, name: str, entry: dict[str, Any], now_ms: int) -> bool:
        created = self.table.conditional(
            "update_item",
            Key=REPORTED_KEY,
            UpdateExpression="SET #m = :metrics, expiresAt = :exp",
            ConditionExpression="attribute_not_exists(#m)",
            ExpressionAttributeNames={"#m": "metrics"},
            ExpressionAttributeValues={":metrics": {"M": {name: entry}}, ":exp": self._expiry(now_ms)},
        )
        return created is not None

    def _prune(self, stale: list[str], now_ms: int) -> None:
        """Remove stale entries, each on condition that it is still stale (a report may have renewed it)."""
        names = {"#m": "metrics", "#at": "at", **{f"#s{i}": name for i, name in enumerate(stale)}}
        removed = ", ".join(f"#m.#s{i}" for i in range(len(stale)))
        still_stale = " AND ".join(f"#m.#s{i}.#at < :cutoff" for i in range(len(stale)))
        self.table.conditional(
            "update_item",
            Key=REPORTED_KEY,
            UpdateExpression=f"REMOVE {removed}",
            ConditionExpression=still_stale,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":cutoff": num(self._cutoff(now_ms))},
        )

    def read(self) -> dict[str, float]:
        """The fresh metrics (one GetItem)."""
        return self.fresh(self.table.get(REPORTED_KEY))

    def fresh(self, item: Mapping[str, Any] | None) -> dict[str, float]:
        """The metrics of an item (read by a caller's batch) younger than the bound."""
        now_ms = int(self.table.clock() * 1000)
        metrics = (item or {}).get("metrics", {}).get("M", {})
        return {
            name: json.loads(held["M"]["value"]["S"]) for name, held in metrics.items() if not self._stale(held, now_ms)
        }

    def _stale(self, held: dict[str, Any], now_ms: int) -> bool:
        return int(held["M"]["at"]["N"]) < self._cutoff(now_ms)

    def _cutoff(self, now_ms: int) -> int:
        return now_ms - int(self.max_age * 1000)

    def _expiry(self, now_ms: int) -> dict[str, str]:
        return num(now_ms // 1000 + self.max_age + TTL_MARGIN_SECONDS)


def report_metric(reported: ReportedMetrics, source: str, event: EventBridgeEvent) -> tuple[str, float]:
    """An EventBridge MetricReport: validated, then stored; anything else refused with nothing stored."""
    if event.source != UPDATE_SOURCE or event.detail_type != METRIC_REPORT_DETAIL_TYPE:
        raise InvalidInput(f"Expected source {UPDATE_SOURCE!r} and detail-type {METRIC_REPORT_DETAIL_TYPE!r}")
    name, value = validation.metric_report(event.detail, system_names=source == REPORTED)
    reported.put(name, value)
    return name, value
