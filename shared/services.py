"""The collaborators every handler uses, built once per process on first use (never at import).

`services(context)` is what one invocation works with. A host that runs the functions itself hands its own
`Services` in on the context object it passes (the local gateway's `LambdaContext.services`): two gateways
may run in one process at once (a module's gateway beside a test's own), and a function still running after
its gateway stopped keeps that gateway's collaborators rather than the environment's. Lambda's context has no
such attribute, so a deployed function gets the process's `Services`, built from the environment at its first
use: the Lambda pattern of clients built once per sandbox (chalice's `get_storage()`). `reset_services`
installs (or forgets) the process's own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from shared.async_invoke import Invoker
from shared.clients import cloudwatch_client, dynamodb_client, lambda_invoker, management_api_poster
from shared.config import CLOUDWATCH, CONNECTIONS_ENDPOINT_URL, HOST, SOCKETIO_OPEN_FUNCTION, Config
from shared.counters import Counters
from shared.env_values import ConfigError
from shared.history import History
from shared.pending_connections import PendingConnections
from shared.poster import Poster
from shared.rate_limit import RateLimiter
from shared.reconciler import Reconciler
from shared.reported import ReportedMetrics
from shared.rooms import Rooms
from shared.sessions import Sessions
from shared.snapshots import LatestSnapshot
from shared.stale_connections import StaleConnectionCheck
from shared.store import Store
from shared.system_metrics import HOST_READER, CloudWatchReader, SystemMetrics
from shared.table import Table

logger = logging.getLogger(__name__)

T = TypeVar("T")


class built_once(Generic[T]):
    """functools.cached_property with a lock, which Python 3.12 took out of it: the first thread builds the
    value while the others wait for it, so every thread gets the one object (and the one lock inside it)."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        cache = instance.__dict__
        if self.name in cache:
            return cast(T, cache[self.name])
        with instance._build_lock:
            if self.name not in cache:
                cache[self.name] = self.build(instance)
            return cast(T, cache[self.name])


@dataclass
class Services:
    config: Config
    table: Table  # the one table that store, rooms, counters, reconciler and snapshots are composed over
    poster_factory: Callable[[str], Poster] = management_api_poster
    _posters: dict[str, Poster] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _build_lock: threading.RLock = field(default_factory=threading.RLock)  # see built_once

    @classmethod
    def from_env(cls) -> Services:
        return cls.from_config(Config.from_env())

    @classmethod
    def from_config(
        cls, config: Config, poster_factory: Callable[[str], Poster] | None = None, dynamodb: Any = None
    ) -> Services:
        """The collaborators for a configuration built elsewhere (the local gateway passes its own, and its
        own DynamoDB client when it embeds DynamoDB)."""
        table = Table(dynamodb or dynamodb_client(config), config.table_name)
        return cls(config=config, table=table, poster_factory=poster_factory or management_api_poster)

    @built_once
    def store(self) -> Store:
        return Store(self.table, self.counters, self.sessions)

    @built_once
    def pending_connections(self) -> PendingConnections:
        return PendingConnections(self.table, self.store, self.sessions)

    @built_once
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.table)

    @built_once
    def sessions(self) -> Sessions:
        return Sessions(self.table, self.config.recovery_window_seconds)

    @built_once
    def history(self) -> History:
        return History(self.table, self.config.history_max_updates, self.config.history_max_age_seconds)

    @built_once
    def rooms(self) -> Rooms:
        return Rooms(self.table, self.counters)

    @built_once
    def counters(self) -> Counters:
        return Counters(self.table)

    @built_once
    def reconciler(self) -> Reconciler:
        """Recounts, and asks API Gateway about each connection (CONNECTIONS_ENDPOINT_URL) to remove stale ones."""
        config = self.config
        stale_check = None
        if config.connections_endpoint_url is not None:
            # At least the settle (longer than any request): a connection that young may still be in its `$connect`.
            grace = max(config.reconcile_check_after_seconds, config.reconcile_settle_seconds)
            stale_check = StaleConnectionCheck(self.store, self.poster(), grace)
        else:
            missing = CONNECTIONS_ENDPOINT_URL
            logger.warning("%s is not set: the reconciler counts connections but cannot ask about them", missing)
        return Reconciler(
            self.table,
            config.reconcile_settle_seconds,
            config.reconcile_interval_seconds,
            stale_check=stale_check,
            check_budget=config.reconcile_check_batch,
            counters=self.counters,
        )

    @built_once
    def invoker(self) -> Invoker | None:
        """Invokes the fan-out worker function, when FANOUT_WORKER_FUNCTION names one."""
        if self.config.fanout_worker_function is None:
            return None
        return lambda_invoker(self.config, self.config.fanout_worker_function)

    @built_once
    def _open_invoker(self) -> Invoker:
        if self.config.open_function is None:
            raise ConfigError(f"{SOCKETIO_OPEN_FUNCTION} is not set: Socket.IO connections cannot be opened")
        return lambda_invoker(self.config, self.config.open_function)

    def open_invoker(self) -> Invoker:
        """Invokes the function that posts a Socket.IO connection's open packet (SOCKETIO_OPEN_FUNCTION)."""
        return self._open_invoker

    @built_once
    def snapshots(self) -> LatestSnapshot:
        return LatestSnapshot(self.table, self.config.metrics_interval_seconds)

    @built_once
    def reported(self) -> ReportedMetrics:
        config = self.config
        return ReportedMetrics(self.table, config.reported_metric_max_age_seconds, config.reported_metrics_max)

    @built_once
    def system_metrics(self) -> SystemMetrics:
        """CPU and memory from SYSTEM_METRICS_SOURCE; the CloudWatch client is built on the reader's first call."""
        settings = self.config.system_metrics
        cloudwatch = None
        if settings.source == CLOUDWATCH:
            cloudwatch = CloudWatchReader(lambda: cloudwatch_client(self.config), settings)
        return SystemMetrics(settings.source, HOST_READER if settings.source == HOST else None, cloudwatch)

    def poster(self, implied_endpoint: str | None = None) -> Poster:
        """The poster for CONNECTIONS_ENDPOINT_URL, or for the endpoint the request context implies."""
        endpoint = self.config.connections_endpoint_url or implied_endpoint
        if endpoint is None:
            raise RuntimeError("CONNECTIONS_ENDPOINT_URL is not set and the event implies no endpoint")
        with self._lock:
            if endpoint not in self._posters:
                self._posters[endpoint] = self.poster_factory(endpoint)
            return self._posters[endpoint]


_current: Services | None = None
_current_lock = threading.Lock()


def services(context: Any = None) -> Services:
    """The collaborators the invocation's host handed in on its context, else the process's."""
    handed_in: Services | None = getattr(context, "services", None)
    if handed_in is not None:
        return handed_in
    global _current
    with _current_lock:
        if _current is None:
            _current = Services.from_env()
        return _current


def reset_services(replacement: Services | None = None) -> None:
    """Install the collaborators every handler gets (a gateway passing its own), or forget them (None)."""
    global _current
    with _current_lock:
        _current = replacement
