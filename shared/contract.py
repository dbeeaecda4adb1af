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

METRIC_NAMES = ("Active Users", "Live Subscribers", "Active Dashboards", "CPU Usage", "Memory Usage")

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

# What a client is told when something failed on our side (never the details).
INTERNAL_ERROR = "Internal error: the request was not applied; try again"


def echoed_event_name(name: str) -> str:
    return name[:MAX_ECHOED_EVENT_NAME]
