"""The live metrics snapshot: the three counts, then CPU and memory when there is a source, then the reported
metrics by name; one timestamp. Its readings (all but the counts) are computed in one place, `readings`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.contract import COUNT_METRIC_NAMES, SYSTEM_METRIC_NAMES
from shared.counters import Counts
from shared.snapshots import Reading, Snapshot

if TYPE_CHECKING:
    from shared.services import Services


def iso_timestamp(epoch_seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and Z, as JavaScript's toISOString() writes it."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def snapshot(counts: Counts, readings: Iterable[Reading], now: float | None = None) -> Snapshot:
    timestamp = iso_timestamp(time.time() if now is None else now)
    values = zip(COUNT_METRIC_NAMES, (counts.active_users, counts.subscribers, counts.active_dashboards), strict=True)
    return [{"name": name, "value": value, "timestamp": timestamp} for name, value in [*values, *readings]]


def readings(svc: Services, reported: Mapping[str, float], remote: bool) -> list[Reading]:
    """CPU and memory from the configured source (CloudWatch only when `remote`: the publisher's tick), then the
    fresh reported metrics by name."""
    system = svc.system_metrics.read(reported, remote)
    own = sorted((name, value) for name, value in reported.items() if name not in SYSTEM_METRIC_NAMES)
    return [*system, *own]


def tick_snapshot(svc: Services, counts: Counts) -> Snapshot:
    """The publisher's snapshot: its readings computed here, once per tick."""
    return snapshot(counts, readings(svc, svc.reported.read(), remote=True))


def live_snapshot(svc: Services, counts: Counts | None = None) -> Snapshot:
    """What a request or a subscribe is told: the counts as of now (`counts`, when the caller's own write of the
    counters answered them), and the latest tick's readings. One read at most: the counters alone while this process
    remembers the tick, else one BatchGetItem of the counters, the tick and the reported metrics. Without a fresh tick
    (nobody listens), readings of its own, never from CloudWatch."""
    now = time.time()
    remembered = svc.snapshots.remembered()
    if remembered is not None:
        return snapshot(svc.counters.read() if counts is None else counts, remembered, now)
    keys = [svc.snapshots.key, svc.reported.key]
    if counts is None:
        counted, latest, reported = svc.table.get_many([svc.counters.key, *keys], consistent=True)
        counts = svc.counters.parse(counted)
    else:
        latest, reported = svc.table.get_many(keys, consistent=True)
    tick = svc.snapshots.readings(latest)
    own = tick if tick is not None else readings(svc, svc.reported.fresh(reported), remote=False)
    return snapshot(counts, own, now)
