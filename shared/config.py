"""The one place the functions' configuration is read: every setting comes from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.contract import DEFAULT_MAX_ROOMS_PER_CONNECTION, MAX_REPORTED_METRICS
from shared.env_values import ConfigError, read_count, read_number, read_optional, read_switch, read_url

TABLE_NAME = "TABLE_NAME"
CONNECTIONS_ENDPOINT_URL = "CONNECTIONS_ENDPOINT_URL"
METRICS_INTERVAL_SECONDS = "METRICS_INTERVAL_SECONDS"
PUBLISH_WINDOW_SECONDS = "PUBLISH_WINDOW_SECONDS"
DYNAMODB_ENDPOINT_URL = "DYNAMODB_ENDPOINT_URL"
MAX_ROOMS_PER_CONNECTION = "MAX_ROOMS_PER_CONNECTION"
RATE_LIMIT_PER_SECOND = "RATE_LIMIT_PER_SECOND"
RATE_LIMIT_BURST = "RATE_LIMIT_BURST"
RECONCILE_INTERVAL_SECONDS = "RECONCILE_INTERVAL_SECONDS"
RECONCILE_BATCH = "RECONCILE_BATCH"
RECONCILE_SETTLE_SECONDS = "RECONCILE_SETTLE_SECONDS"
RECONCILE_CHECK_BATCH = "RECONCILE_CHECK_BATCH"
RECONCILE_CHECK_AFTER_SECONDS = "RECONCILE_CHECK_AFTER_SECONDS"
FANOUT_WORKER_FUNCTION = "FANOUT_WORKER_FUNCTION"
FANOUT_SLICE_SIZE = "FANOUT_SLICE_SIZE"
LAMBDA_ENDPOINT_URL = "LAMBDA_ENDPOINT_URL"
SOCKETIO_OPEN_FUNCTION = "SOCKETIO_OPEN_FUNCTION"
SOCKETIO_PING_INTERVAL_SECONDS = "SOCKETIO_PING_INTERVAL_SECONDS"
SOCKETIO_PING_TIMEOUT_SECONDS = "SOCKETIO_PING_TIMEOUT_SECONDS"
MAX_METRICS_INTERVAL = 3600.0  # an hour between pushes: beyond, nobody would call them live
MAX_CLIENT_TIMER_MS = 2**31 - 1  # browsers' setTimeout: a longer delay fires at once
RECOVERY_WINDOW_SECONDS = "RECOVERY_WINDOW_SECONDS"
HISTORY_MAX_UPDATES = "HISTORY_MAX_UPDATES"
HISTORY_MAX_AGE_SECONDS = "HISTORY_MAX_AGE_SECONDS"
LAST_VALUE_ON_JOIN = "LAST_VALUE_ON_JOIN"
AUTH_JWT_SECRET = "AUTH_JWT_SECRET"
AUTH_JWKS_URL = "AUTH_JWKS_URL"
AUTH_JWT_AUDIENCE = "AUTH_JWT_AUDIENCE"
AUTH_JWT_ISSUER = "AUTH_JWT_ISSUER"
SYSTEM_METRICS_SOURCE = "SYSTEM_METRICS_SOURCE"
SYSTEM_METRICS_NAMESPACE = "SYSTEM_METRICS_NAMESPACE"
SYSTEM_METRICS_CPU_METRIC = "SYSTEM_METRICS_CPU_METRIC"
SYSTEM_METRICS_MEMORY_METRIC = "SYSTEM_METRICS_MEMORY_METRIC"
SYSTEM_METRICS_DIMENSIONS = "SYSTEM_METRICS_DIMENSIONS"
CLOUDWATCH_ENDPOINT_URL = "CLOUDWATCH_ENDPOINT_URL"
REPORTED_METRIC_MAX_AGE_SECONDS = "REPORTED_METRIC_MAX_AGE_SECONDS"
REPORTED_METRICS_MAX = "REPORTED_METRICS_MAX"
LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"  # set by Lambda in every sandbox

# Where CPU Usage and Memory Usage come from (docs/metrics.md).
HOST, CLOUDWATCH, REPORTED, NONE = "host", "cloudwatch", "reported", "none"
SYSTEM_METRICS_SOURCES = (HOST, CLOUDWATCH, REPORTED, NONE)
MAX_DIMENSIONS = 30  # CloudWatch's own limit per metric


@dataclass(frozen=True)
class AuthSettings:
    """Token checks on $connect: off unless AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256) is set."""

    jwt_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwks_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        return cls(
            jwt_secret=read_optional(environ, AUTH_JWT_SECRET),
            jwks_url=read_url(environ, AUTH_JWKS_URL),
            audience=read_optional(environ, AUTH_JWT_AUDIENCE),
            issuer=read_optional(environ, AUTH_JWT_ISSUER),
        )


def read_dimensions(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """`Name=Value,Name=Value`, as the AWS CLI writes CloudWatch dimensions."""
    raw = environ.get(SYSTEM_METRICS_DIMENSIONS, "").strip()
    if not raw:
        return ()
    pairs = [part.partition("=") for part in raw.split(",")]
    dimensions = tuple((name.strip(), value.strip()) for name, _, value in pairs)
    if any(not name or not value for name, value in dimensions) or len(dimensions) > MAX_DIMENSIONS:
        pairs_rule = f"1 to {MAX_DIMENSIONS} Name=Value pairs, comma-separated"
        raise ConfigError(f"{SYSTEM_METRICS_DIMENSIONS} must be {pairs_rule}; got {raw!r}")
    return dimensions


@dataclass(frozen=True)
class SystemMetricsSettings:
    """Where CPU Usage and Memory Usage come from: this machine (host), a CloudWatch metric, the operator's reports
    (reported), or nowhere (none: both left out of the snapshot). On Lambda the default is none, and host is
    refused: a sandbox's own CPU is no system's."""

    source: str = HOST
    namespace: str | None = None
    cpu_metric: str = "CPUUtilization"
    memory_metric: str = "MemoryUtilization"
    dimensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SystemMetricsSettings:
        on_lambda = bool(environ.get(LAMBDA_FUNCTION_NAME))
        raw = environ.get(SYSTEM_METRICS_SOURCE, "").strip()
        source = raw.lower() or (NONE if on_lambda else HOST)
        if source not in SYSTEM_METRICS_SOURCES:
            raise ConfigError(f"{SYSTEM_METRICS_SOURCE} must be host, cloudwatch, reported or none; got {raw!r}")
        if source == HOST and on_lambda:
            raise ConfigError(f"{SYSTEM_METRICS_SOURCE}=host would show a Lambda sandbox's own CPU and memory")
        namespace = read_optional(environ, SYSTEM_METRICS_NAMESPACE)
        if source == CLOUDWATCH and namespace is None:
            raise ConfigError(f"{SYSTEM_METRICS_SOURCE}=cloudwatch needs {SYSTEM_METRICS_NAMESPACE} (e.g. AWS/ECS)")
        return cls(
            source=source,
            namespace=namespace,
            cpu_metric=read_optional(environ, SYSTEM_METRICS_CPU_METRIC) or cls.cpu_metric,
            memory_metric=read_optional(environ, SYSTEM_METRICS_MEMORY_METRIC) or cls.memory_metric,
            dimensions=read_dimensions(environ),
        )


@dataclass(frozen=True)
class Config:
    table_name: str
    connections_endpoint_url: str | None
    metrics_interval_seconds: float
    publish_window_seconds: float
    dynamodb_endpoint_url: str | None
    max_rooms_per_connection: int
    rate_limit_per_second: float = 20.0  # 0: no limit
    rate_limit_burst: int = 40
    reconcile_interval_seconds: float = 300.0  # a new recount pass starts at most this often
    reconcile_batch: int = 500  # counter items one reconciliation run visits at most
    reconcile_settle_seconds: float = 20.0  # longer than any request: what was in flight has landed
    reconcile_check_batch: int = 2000  # connections one reconciliation run lists (and asks API Gateway about) at most
    reconcile_check_after_seconds: float = 60.0  # a connection is asked about once this old (and settled)
    fanout_worker_function: str | None = None  # unset: the publisher posts to every subscriber itself
    fanout_slice_size: int = 2000
    lambda_endpoint_url: str | None = None
    open_function: str | None = None  # the function that posts Socket.IO's open packet after $connect
    ping_interval_seconds: float = 300.0  # Socket.IO heartbeat: the publisher pings this often
    ping_timeout_seconds: float = 60.0  # the client gives up this long after a ping was due
    recovery_window_seconds: float = 120.0  # a session that left may be recovered this long (0: never)
    history_max_updates: int = 100  # updates kept per dashboard for recovery and the last value on join
    history_max_age_seconds: float = 86400.0  # ... and for this long after their publication
    last_value_on_join: bool = True  # a join delivers the dashboard's latest update at once
    auth: AuthSettings = field(default_factory=lambda: AuthSettings())
    system_metrics: SystemMetricsSettings = field(default_factory=lambda: SystemMetricsSettings())
    cloudwatch_endpoint_url: str | None = None
    reported_metric_max_age_seconds: float = 300.0  # a reported metric older than this leaves the snapshot
    reported_metrics_max: int = 20  # distinct names kept at once

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        environ = os.environ if environ is None else environ
        table_name = read_optional(environ, TABLE_NAME)
        if table_name is None:
            raise ConfigError(f"{TABLE_NAME} is required: the DynamoDB table that holds the state")
        ping_interval = read_number(environ, SOCKETIO_PING_INTERVAL_SECONDS, 300.0, 1.0)
        ping_timeout = read_number(environ, SOCKETIO_PING_TIMEOUT_SECONDS, 60.0, 1.0)
        if (ping_interval + ping_timeout) * 1000 > MAX_CLIENT_TIMER_MS:
            raise ConfigError(
                f"{SOCKETIO_PING_INTERVAL_SECONDS} + {SOCKETIO_PING_TIMEOUT_SECONDS} must stay under 2^31 ms"
            )
        return cls(
            table_name=table_name,
            connections_endpoint_url=read_url(environ, CONNECTIONS_ENDPOINT_URL),
            metrics_interval_seconds=read_number(environ, METRICS_INTERVAL_SECONDS, 5.0, 0.05, MAX_METRICS_INTERVAL),
            publish_window_seconds=read_number(environ, PUBLISH_WINDOW_SECONDS, 60.0, 0.0),
            dynamodb_endpoint_url=read_url(environ, DYNAMODB_ENDPOINT_URL),
            max_rooms_per_connection=int(
                read_number(environ, MAX_ROOMS_PER_CONNECTION, DEFAULT_MAX_ROOMS_PER_CONNECTION, 1)
            ),
            rate_limit_per_second=read_number(environ, RATE_LIMIT_PER_SECOND, 20.0, 0.0),
            rate_limit_burst=int(read_number(environ, RATE_LIMIT_BURST, 40, 1)),
            reconcile_interval_seconds=read_number(environ, RECONCILE_INTERVAL_SECONDS, 300.0, 0.0),
            reconcile_batch=int(read_number(environ, RECONCILE_BATCH, 500, 1)),
            reconcile_settle_seconds=read_number(environ, RECONCILE_SETTLE_SECONDS, 20.0, 0.0),
            reconcile_check_batch=int(read_number(environ, RECONCILE_CHECK_BATCH, 2000, 1)),
            reconcile_check_after_seconds=read_number(environ, RECONCILE_CHECK_AFTER_SECONDS, 60.0, 0.0),
            fanout_worker_function=read_optional(environ, FANOUT_WORKER_FUNCTION),
            # An async invocation carries at most 256 KB: 8,000 ids of 16 characters leave room for the frame.
            fanout_slice_size=int(read_number(environ, FANOUT_SLICE_SIZE, 2000, 1)),
            lambda_endpoint_url=read_url(environ, LAMBDA_ENDPOINT_URL),
            open_function=read_optional(environ, SOCKETIO_OPEN_FUNCTION),
            ping_interval_seconds=ping_interval,
            ping_timeout_seconds=ping_timeout,
            recovery_window_seconds=read_number(environ, RECOVERY_WINDOW_SECONDS, 120.0, 0.0),
            history_max_updates=int(read_number(environ, HISTORY_MAX_UPDATES, 100, 1)),
            history_max_age_seconds=read_number(environ, HISTORY_MAX_AGE_SECONDS, 86400.0, 1.0),
            last_value_on_join=read_switch(environ, LAST_VALUE_ON_JOIN, True),
            auth=AuthSettings.from_env(environ),
            system_metrics=SystemMetricsSettings.from_env(environ),
            cloudwatch_endpoint_url=read_url(environ, CLOUDWATCH_ENDPOINT_URL),
            reported_metric_max_age_seconds=read_number(environ, REPORTED_METRIC_MAX_AGE_SECONDS, 300.0, 1.0),
            reported_metrics_max=read_count(environ, REPORTED_METRICS_MAX, 20, MAX_REPORTED_METRICS),
        )
