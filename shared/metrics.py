"""The live metrics snapshot: five values, one timestamp."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.contract import METRIC_NAMES
from shared.counters import Counts


def iso_timestamp(epoch_seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and Z, as JavaScript's toISOString() writes it."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _percent(value: float) -> int:
    return max(0, min(100, round(value)))


def cpu_percent() -> int:
    import psutil  # imported on first use: it is not needed by most handlers' cold start

    busy = psutil.cpu_percent(interval=None)
    if busy == 0.0:
        # psutil's first reading in a process has no baseline; the load average stands in.
        busy = os.getloadavg()[0] / (os.cpu_count() or 1) * 100
    return _percent(busy)


def memory_percent() -> int:
    import psutil

    return _percent(psutil.virtual_memory().percent)


HOST_READING_SECONDS = 1.0  # the host's CPU and memory are read at most once a second; the counts every time
_host_reading: tuple[float, int, int] | None = None


def host_percents(clock: Callable[[], float] = time.monotonic) -> tuple[int, int]:
    """(CPU, memory) of the host, as of at most HOST_READING_SECONDS ago: a flood of requests reads /proc once
    a second, and the CPU figure is the busy share since the previous reading."""
    global _host_reading
    reading = _host_reading
    now = clock()
    if reading is None or now - reading[0] >= HOST_READING_SECONDS:
        reading = _host_reading = (now, cpu_percent(), memory_percent())
    return reading[1], reading[2]


def snapshot(counts: Counts, now: float | None = None) -> list[dict[str, Any]]:
    timestamp = iso_timestamp(time.time() if now is None else now)
    values = (
        counts.active_users,
        counts.subscribers,
        counts.active_dashboards,
        *host_percents(),
    )
    return [
        {"name": name, "value": value, "timestamp": timestamp} for name, value in zip(METRIC_NAMES, values, strict=True)
    ]
