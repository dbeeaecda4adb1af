"""One frame to many connections; the ones that answer 410 Gone lose their state.

Above FANOUT_SLICE_SIZE subscribers (and with a FANOUT_WORKER_FUNCTION), the publisher keeps the first
slice and hands every other slice to a worker invocation of its own, so one tick reaches more subscribers
than one invocation can post to in an interval.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.async_invoke import Invoker
from shared.errors import InvalidInput
from shared.poster import Poster
from shared.protocols import FramesByProtocol, group_by_protocol
from shared.store import Store

logger = logging.getLogger(__name__)

FANOUT_KEY = "fanout"


@dataclass(frozen=True)
class Delivery:
    delivered: int = 0
    gone: int = 0


def deliver(store: Store, poster: Poster, connection_ids: Iterable[str], frame: bytes) -> Delivery:
    ids = list(connection_ids)
    if not ids:
        return Delivery()
    gone = poster.post_many(ids, frame)
    if gone:
        logger.info("%d connection(s) gone; removing their state", len(gone))
    for connection_id in gone:
        logger.debug("connection %s is gone; removing its state", connection_id)
        store.remove_connection(connection_id)
    return Delivery(delivered=len(ids) - len(gone), gone=len(gone))


def fan_out(
    store: Store,
    poster: Poster,
    invoker: Invoker | None,
    slice_size: int,
    recipients: list[tuple[str, str]],
    frames: FramesByProtocol,
) -> tuple[Delivery, int]:
    """Deliver one event to (connection id, protocol) recipients, encoded once per protocol; beyond the
    first slice of each protocol, slices go to workers. (Own delivery, ids handed off.)"""
    delivered = gone = handed = 0
    for protocol, ids in group_by_protocol(recipients).items():
        own, handed_here = _fan_out(store, poster, invoker, slice_size, ids, frames.for_protocol(protocol))
        delivered, gone, handed = delivered + own.delivered, gone + own.gone, handed + handed_here
    return Delivery(delivered, gone), handed


def deliver_event(
    store: Store, poster: Poster, recipients: list[tuple[str, str]], frames: FramesByProtocol
) -> Delivery:
    """Deliver one event to (connection id, protocol) recipients, encoded once per protocol."""
    return fan_out(store, poster, None, 0, recipients, frames)[0]


def _fan_out(
    store: Store, poster: Poster, invoker: Invoker | None, slice_size: int, ids: list[str], frame: bytes
) -> tuple[Delivery, int]:
    if invoker is None or len(ids) <= slice_size:
        return deliver(store, poster, ids, frame), 0
    slices = [ids[start : start + slice_size] for start in range(0, len(ids), slice_size)]
    text = frame.decode()
    for part in slices[1:]:
        invoker.invoke_async({FANOUT_KEY: {"connectionIds": part, "frame": text}})
    logger.info("handed %d subscribers to %d workers", len(ids) - len(slices[0]), len(slices) - 1)
    return deliver(store, poster, slices[0], frame), len(ids) - len(slices[0])


def deliver_slice(store: Store, poster: Poster, event: dict[str, Any]) -> Delivery:
    """The worker's side: the slice one fan_out handed over."""
    task = event.get(FANOUT_KEY) if isinstance(event, dict) else None
    ids = task.get("connectionIds") if isinstance(task, dict) else None
    frame = task.get("frame") if isinstance(task, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not isinstance(frame, str):
        raise InvalidInput('expected {"fanout": {"connectionIds": [str, ...], "frame": str}}')
    return deliver(store, poster, ids, frame.encode())
