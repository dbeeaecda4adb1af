"""CPU Usage and Memory Usage: the utilization, integer percent, of the system SYSTEM_METRICS_SOURCE names.

host: this machine, through psutil (what `make run` shows by default); cloudwatch: a CloudWatch metric's latest
one-minute average, read with GetMetricData at most once a minute; reported: the values the operator's services
report under these two names (shared/reported.py); none: neither metric. Never a Lambda sandbox's own reading:
shared/config.py refuses host there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from shared.config import CLOUDWATCH, HOST, REPORTED, SystemMetricsSettings
from shared.contract import CPU_USAGE, MEMORY_USAGE, SYSTEM_METRIC_NAMES
from shared.snapshots import Reading

logger = logging.getLogger(__name__)

HOST_READING_SECONDS = 1.0  # the host is read at most once a second, however many ask
PRIMING_SECONDS = 0.2  # the first CPU reading in a process has no baseline: it measures an interval this long
CLOUDWATCH_READING_SECONDS = 60.0  # GetMetricData at most once a minute: CloudWatch's finest common period
CLOUDWATCH_PERIOD_SECONDS = 60
CLOUDWATCH_LOOKBACK_SECONDS = 600  # the latest datapoint of the last ten minutes; none that recent: left out


def percent(value: float) -> int:
    return max(0, min(100, round(value)))


def _busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of all CPUs, as psutil.cpu_percent counts them (guest time is already counted in
    user and nice on Linux)."""
    fields: dict[str, float] = times._asdict()
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    return total - fields.get("idle", 0.0) - fields.get("iowait", 0.0), total


class HostReader:
    """This machine's CPU (the busy share of all CPUs since the previous reading) and memory.

    The baseline is this object's own, not psutil.cpu_percent's, which keeps one per thread: each of the gateway's
    worker threads would start without one and read a meaningless first value.
    """

    def __init__(
        self,
        cpu_times: Callable[[], Any] | None = None,
        memory_percent: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cpu_times = cpu_times
        self._memory_percent = memory_percent
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._baseline: tuple[float, float] | None = None
        self._reading: tuple[float, dict[str, int]] | None = None

    def percents(self) -> dict[str, int]:
        """{CPU Usage, Memory Usage}, as of at most HOST_READING_SECONDS ago."""
        with self._lock:
            now = self.clock()
            if self._reading is None or now - self._reading[0] >= HOST_READING_SECONDS:
                cpu = self._cpu(self._reading[1][CPU_USAGE] if self._reading else 0)
                self._reading = (now, {CPU_USAGE: cpu, MEMORY_USAGE: percent(self._memory())})
            return dict(self._reading[1])

    def _cpu(self, previous: int) -> int:
        if self._baseline is None:  # no baseline yet: measure an interval of our own, never a fallback
            self._baseline = _busy_and_total(self._times())
            self.sleep(PRIMING_SECONDS)
        busy, total = _busy_and_total(self._times())
        busy_before, total_before = self._baseline
        self._baseline = (busy, total)
        if total <= total_before:
            return previous  # no tick of the CPU clock in between: nothing new to tell
        return percent(100 * (busy - busy_before) / (total - total_before))

    def _times(self) -> Any:
        if self._cpu_times is None:
            import psutil  # on first use: most functions never read the host

            self._cpu_times = psutil.cpu_times
        return self._cpu_times()

    def _memory(self) -> float:
        if self._memory_percent is None:
            import psutil

            self._memory_percent = lambda: float(psutil.virtual_memory().percent)
        return self._memory_percent()


HOST_READER = HostReader()  # the host is one per process, and so is its baseline


class CloudWatchReader:
    """The latest one-minute averages of the CPU and memory metrics SYSTEM_METRICS_* name: one GetMetricData of
    both, at most once every CLOUDWATCH_READING_SECONDS (a failure too is kept that long, and logged)."""

    def __init__(
        self, client: Callable[[], Any], settings: SystemMetricsSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._client_factory = client
        self._client: Any = None
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._reading: tuple[float, dict[str, int]] | None = None

    @property
    def client(self) -> Any:
        """The CloudWatch client, built on first use: the functions that never call CloudWatch never build one."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def percents(self) -> dict[str, int]:
        with self._lock:
            now = self.clock()
            if self._reading is None or now - self._reading[0] >= CLOUDWATCH_READING_SECONDS:
                self._reading = (now, self._fetch(now))
            return dict(self._reading[1])

    def _fetch(self, now: float) -> dict[str, int]:
        settings = self.settings
        dimensions = [{"Name": name, "Value": value} for name, value in settings.dimensions]
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": settings.namespace, "MetricName": metric, "Dimensions": dimensions},
                    "Period": CLOUDWATCH_PERIOD_SECONDS,
                    "Stat": "Average",
                },
            }
            for query_id, metric in (("cpu", settings.cpu_metric), ("memory", settings.memory_metric))
        ]
        try:
            answer = self.client.get_metric_data(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(now - CLOUDWATCH_LOOKBACK_SECONDS, tz=UTC),
                EndTime=datetime.fromtimestamp(now, tz=UTC),
                ScanBy="TimestampDescending",
            )
        except (BotoClientError, BotoCoreError) as error:
            logger.warning("CloudWatch GetMetricData failed (%s): CPU and memory left out for a minute", error)
            return {}
        names = {"cpu": CPU_USAGE, "memory": MEMORY_USAGE}
        found = {}
        for result in answer.get("MetricDataResults", []):
            points = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            if result.get("Id") in names and points:
                found[names[result["Id"]]] = percent(max(points)[1])  # the latest datapoint
        return found


class SystemMetrics:
    """CPU Usage and Memory Usage from the configured source, in the contract's order; absent when it has none."""

    def __init__(self, source: str, host: HostReader | None = None, cloudwatch: CloudWatchReader | None = None) -> None:
        self.source = source
        self.host = host
        self.cloudwatch = cloudwatch

    def read(self, reported: Mapping[str, float], remote: bool) -> list[Reading]:
        """`reported`: the fresh reported metrics; `remote`: whether CloudWatch may be called (the publisher only)."""
        found: Mapping[str, float] = {}
        if self.source == HOST and self.host is not None:
            found = self.host.percents()
        elif self.source == CLOUDWATCH and self.cloudwatch is not None and remote:
            found = self.cloudwatch.percents()
        elif self.source == REPORTED:
            found = reported
        return [(name, found[name]) for name in SYSTEM_METRIC_NAMES if name in found]
