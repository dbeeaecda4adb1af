"""Stale connections: registered (their own item, their USER# or ANON entry, the counts) while API Gateway has
no socket for them, because its best-effort `$disconnect` never came or no socket ever opened. They are found by
asking API Gateway (`GET @connections/{id}`, answered 410 Gone) and removed exactly as `$disconnect` removes a
connection (`Store.remove_connection`, which adjusts the counters).

Each registered connection is listed, with no Scan, under its owner: `ANON / CONN#c` or `USER#u / CONN#c`. Its
age comes from that entry's `expiresAt` (written at registration, `CONNECTION_TTL_SECONDS` ahead), so listing a
partition is all the reading a check needs.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.poster import CheckFailed, Poster
from shared.store import Store
from shared.table import CONNECTION_TTL_SECONDS, num, text

logger = logging.getLogger(__name__)

# A connection is asked about only once it is this old. A JSON-frame connection is registered inside its
# `$connect`, and @connections answers 410 for it until `$connect` has returned (API Gateway waits up to 29 s for
# it); a Socket.IO connection registers on its namespace CONNECT, over its open socket.
CHECK_AFTER_SECONDS = 60.0
CHECK_THREADS = 8  # connections asked about (and, when gone, removed) at once, a page at a time


@dataclass(frozen=True)
class Checked:
    """What checking (part of) one owner's partition found."""

    read: int = 0  # entries read (what a run's check budget counts)
    live: int = 0  # unexpired connections listed, less those found gone
    asked: int = 0  # GET @connections calls
    gone: int = 0  # answered 410 Gone, and removed
    failed: int = 0  # answered neither 200 nor 410: kept, asked again next pass
    resume_after: str | None = None  # the last entry's SK when the budget ran out first; None: the partition is done


class StaleConnectionCheck:
    """Lists an owner's connections, asks API Gateway about each one older than `grace_seconds`, removes the gone."""

    def __init__(self, store: Store, poster: Poster, grace_seconds: float, threads: int = CHECK_THREADS) -> None:
        self.store = store
        self.table = store.table
        self.poster = poster
        self.grace_seconds = grace_seconds
        self.threads = threads

    def check(self, owner: str, after: str | None, budget: int) -> Checked:
        """The connections under `owner` (ANON or USER#u) past SK `after`, reading at most `budget` entries."""
        read = live = asked = gone = failed = 0
        while True:
            page = self._page(owner, after, max(1, budget - read))
            read += int(page.get("ScannedCount", 0))
            ids = [item["SK"]["S"].removeprefix("CONN#") for item in page.get("Items", [])]
            due = [cid for cid, item in zip(ids, page.get("Items", []), strict=True) if self._due(item)]
            answers = self._settle_all(due)
            gone_here = sum(1 for answer in answers if answer is False)
            live += len(ids) - gone_here
            asked, gone = asked + len(due), gone + gone_here
            failed += sum(1 for answer in answers if answer is None)
            last = page.get("LastEvaluatedKey")
            if last is None:
                return Checked(read, live, asked, gone, failed)
            after = last["SK"]["S"]
            if read >= budget:
                return Checked(read, live, asked, gone, failed, after)

    def _page(self, owner: str, after: str | None, limit: int) -> dict[str, Any]:
        query: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :conn)",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":pk": text(owner), ":conn": text("CONN#"), ":now": num(self.table.clock())},
            "ProjectionExpression": "SK, expiresAt",
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            query["ExclusiveStartKey"] = {"PK": text(owner), "SK": text(after)}
        page: dict[str, Any] = self.table.call("query", **query)
        return page

    def _due(self, item: dict[str, Any]) -> bool:
        registered_at = int(item["expiresAt"]["N"]) - CONNECTION_TTL_SECONDS
        return self.table.clock() - registered_at >= self.grace_seconds

    def _settle_all(self, connection_ids: list[str]) -> list[bool | None]:
        """Whether each connection is there (None: unknown), asked (and the gone removed) `threads` at a time."""
        if len(connection_ids) <= 1:
            return [self._settle(cid) for cid in connection_ids]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(connection_ids))) as pool:
            return list(pool.map(self._settle, connection_ids))

    def _settle(self, connection_id: str) -> bool | None:
        """Ask about one connection; remove it when it is gone (a removal is a few writes: in parallel too)."""
        try:
            connected = self.poster.is_connected(connection_id)
        except CheckFailed as error:
            logger.warning(
                "GET of a connection failed with %s; kept and asked about again next pass",
                f"HTTP {error.status}" if error.status else "no answer",
            )
            logger.debug("%s", error)
            return None
        if not connected and self.store.remove_connection(connection_id):
            logger.info("a connection was gone without a $disconnect; removed")
            logger.debug("connection %s was gone without a $disconnect; removed", connection_id)
        return connected
