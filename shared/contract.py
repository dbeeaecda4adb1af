"""The wire contract's names and limits: every event name, limit and fixed message lives here and only here."""

from __future__ import annotations

import re

# Client to server.
SUBSCRIBE_LIVE_METRICS = "analytics:subscribeLiveMetrics"
UNSUBSCRIBE_LIVE_METRICS = "analytics:unsubscribeLiveMetrics"
REQUEST_LIVE_METRICS = "analytics:requestLiveMetrics"
JOIN_DASHBOARD = "analytics:joinDashboard"
LEAVE_DASHBOARD = "analytics:leaveDashboard"
# JSON frames only: take over a session (connection state recovery); Socket.IO clients do it in their CONNECT.
RESUME = "resume"
CLIENT_EVENTS = (
    SUBSCRIBE_LIVE_METRICS,
    UNSUBSCRIBE_LIVE_METRICS,
    REQUEST_LIVE_METRICS,
    JOIN_DASHBOARD,
    LEAVE_DASHBOARD,
)

# Server to client.
LIVE_METRICS = "analytics:liveMetrics"
ERROR = "analytics:error"
DASHBOARD_UPDATE = "analytics:dashboardUpdate"
SERVER_EVENTS = (LIVE_METRICS, ERROR, DASHBOARD_UPDATE)

# analytics:liveMetrics, in this order: the three counts, always; CPU and memory when a source is configured
# (SYSTEM_METRICS_SOURCE); then the reported metrics, by name (docs/metrics.md).
COUNT_METRIC_NAMES = ("Active Users", "Live Subscribers", "Active Dashboards")
CPU_USAGE, MEMORY_USAGE = "CPU Usage", "Memory Usage"
SYSTEM_METRIC_NAMES = (CPU_USAGE, MEMORY_USAGE)
METRIC_NAMES = COUNT_METRIC_NAMES + SYSTEM_METRIC_NAMES  # the built-in metrics

# Input rules.
MAX_ID_LENGTH = 128
DASHBOARD_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_ID_LENGTH}}}")  # user ids follow the same rule
DEFAULT_MAX_ROOMS_PER_CONNECTION = 20
MAX_ECHOED_EVENT_NAME = 128  # an error names the failed event, cut to this many characters

# API Gateway's WebSocket limits, which the local gateway enforces too.
MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT_SECONDS = 10 * 60
MAX_CONNECTION_SECONDS = 2 * 3600

# Dashboard updates arrive as EventBridge events of this shape.
UPDATE_SOURCE = "analytics"
UPDATE_DETAIL_TYPE = "DashboardUpdate"

# Services report their own metrics as EventBridge events of this shape: {"name": ..., "value": ...}.
METRIC_REPORT_DETAIL_TYPE = "MetricReport"
MAX_METRIC_NAME_LENGTH = 64
# Printable and unambiguous on a card: no leading or trailing space.
_NAME_END, _NAME_INSIDE = r"[A-Za-z0-9_.:/()%\-]", r"[A-Za-z0-9 _.:/()%\-]"
METRIC_NAME = re.compile(rf"{_NAME_END}(?:{_NAME_INSIDE}{{0,{MAX_METRIC_NAME_LENGTH - 2}}}{_NAME_END})?")
MAX_METRIC_MAGNITUDE = 10**15  # a reported value's bound: integers up to it are exact in JavaScript too
MAX_REPORTED_METRICS = 200  # REPORTED_METRICS_MAX's ceiling: a snapshot that long stays far below 128 KB

# What a client is told when something failed on our side (never the details).
INTERNAL_ERROR = "Internal error: the request was not applied; try again"


def echoed_event_name(name: str) -> str:
    return name[:MAX_ECHOED_EVENT_NAME]
