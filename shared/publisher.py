"""The scheduled function: compute one snapshot per tick and push it to every subscriber.

A tick never recounts: the reconciler is a function of its own (handlers/reconcile.py), on its own schedule.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared import metrics
from shared.contract import LIVE_METRICS
from shared.counters import Counts
from shared.fanout import Delivery, deliver, fan_out
from shared.poster import Poster
from shared.protocols import FramesByProtocol
from shared.services import Services
from shared.socketio_codec import PING_FRAME

logger = logging.getLogger(__name__)

SAFETY_MARGIN_MS = 2000  # never start a tick the invocation's timeout would cut short


@dataclass(frozen=True)
class WindowResult:
    ticks: int = 0
    pushes: int = 0
    delivered: int = 0
    gone: int = 0
    handed_off: int = 0


def tick(svc: Services, poster: Poster) -> tuple[Delivery, int] | None:
    """One push to every subscriber: (own delivery, subscribers handed to workers); None when nobody listens."""
    subscribers = [subscriber for page in svc.store.subscribers() for subscriber in page]
    counts = svc.counters.read()
    heartbeat(svc, poster, counts)
    if not subscribers and counts.active_dashboards == 0:
        return None
    snapshot = metrics.tick_snapshot(svc, counts)
    frames = FramesByProtocol(LIVE_METRICS, snapshot)
    result = fan_out(svc.store, poster, svc.invoker, svc.config.fanout_slice_size, subscribers, frames)
    svc.snapshots.save(snapshot)
    return result


def heartbeat(svc: Services, poster: Poster, seen: Counts) -> Delivery | None:
    """Engine.IO's ping to every Socket.IO connection, once per SOCKETIO_PING_INTERVAL_SECONDS across all
    invocations: the client closes without one, and its pong keeps API Gateway's idle timeout away."""
    if not svc.counters.claim_ping(seen, svc.config.ping_interval_seconds):
        return None
    connections = [connection_id for page in svc.store.socketio_connections() for connection_id in page]
    return deliver(svc.store, poster, connections, PING_FRAME.encode())


def run_window(
    svc: Services,
    poster: Poster,
    remaining_ms: Callable[[], int] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WindowResult:
    """Tick every METRICS_INTERVAL_SECONDS for PUBLISH_WINDOW_SECONDS (0: exactly one tick)."""
    interval = svc.config.metrics_interval_seconds
    window = svc.config.publish_window_seconds
    start = clock()
    end = start + window - 1e-6
    next_at = start + interval
    ticks = pushes = delivered = gone = handed_off = 0
    while True:
        result = tick(svc, poster)
        ticks += 1
        if result is not None:
            (own, handed), pushes = result, pushes + 1
            delivered, gone, handed_off = delivered + own.delivered, gone + own.gone, handed_off + handed
        overrun = clock() - next_at
        if overrun > 0:  # a slow tick: the ticks it overran are skipped, not replayed as a burst
            next_at += math.ceil(overrun / interval) * interval
        if next_at >= end:
            break
        if remaining_ms is not None and remaining_ms() - (next_at - clock()) * 1000 < SAFETY_MARGIN_MS:
            break
        sleep(max(0.0, next_at - clock()))
        next_at += interval
    return WindowResult(ticks=ticks, pushes=pushes, delivered=delivered, gone=gone, handed_off=handed_off)
