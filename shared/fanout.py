"""One frame to many connections; the ones that answer 410 Gone lose their state."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from shared.poster import Poster
from shared.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    delivered: int = 0
    gone: int = 0


def deliver(store: Store, poster: Poster, connection_ids: Iterable[str], frame: bytes) -> Delivery:
    ids = list(connection_ids)
    if not ids:
        return Delivery()
    gone = poster.post_many(ids, frame)
    for connection_id in gone:
        logger.info("connection %s is gone; removing its state", connection_id)
        store.remove_connection(connection_id)
    return Delivery(delivered=len(ids) - len(gone), gone=len(gone))
