"""Counts that never drift for good: recount from the items themselves, without a Scan.

Room and user counter items carry live=ROOM / live=USER, so the sparse ByLiveKind index lists them; each
one's live members are then counted in its own partition, and anonymous connections under ANON.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from shared.counters import COUNTS_KEY, Counts
from shared.table import (
    ANON,
    BY_LIVE_KIND_INDEX,
    COUNTER_TTL_SECONDS,
    LIVE,
    ROOM_KIND,
    USER_KIND,
    Table,
    num,
    own_key,
    text,
)

logger = logging.getLogger(__name__)


class Reconciler:
    """Recounts the counters from the items they count, at most once per interval across all processes."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def claim_reconciliation(self, seen: Counts, interval: float) -> bool:
        """True for the one caller that may reconcile now: the last pass is `interval` old and nobody claimed it."""
        now = int(self.table.clock() * 1000)
        if now - seen.reconciled_at < interval * 1000:
            return False
        claimed = self.table.conditional(
            "update_item",
            Key=COUNTS_KEY,
            UpdateExpression="SET reconciledAt = :now, expiresAt = :exp",
            ConditionExpression="attribute_not_exists(reconciledAt) OR reconciledAt = :seen",
            ExpressionAttributeValues={
                ":now": num(now),
                ":seen": num(seen.reconciled_at),
                ":exp": num(now // 1000 + COUNTER_TTL_SECONDS),
            },
        )
        return claimed is not None

    def reconcile(self) -> Counts | None:
        """Recount from the items (expired ones left out) and overwrite the counters; None if they moved meanwhile."""
        version = (self.table.get(COUNTS_KEY, consistent=True) or {}).get("version")
        now = self.table.clock()
        anonymous = self._live_members(ANON, now)
        users = [self._heal_members(pk, now) for page in self._kind(USER_KIND) for pk in page]
        rooms = [self._heal_members(pk, now) for page in self._kind(ROOM_KIND) for pk in page]
        counts = Counts(
            connections=anonymous + sum(users),
            active_users=anonymous + sum(1 for n in users if n),
            subscribers=self.table.count(
                IndexName=BY_LIVE_KIND_INDEX,
                KeyConditionExpression="live = :live",
                FilterExpression="expiresAt > :now",
                ExpressionAttributeValues={":live": text(LIVE), ":now": num(now)},
            ),
            active_dashboards=sum(1 for n in rooms if n),
        )
        written = self.table.conditional(
            "update_item",
            Key=COUNTS_KEY,
            UpdateExpression="SET connections = :c, activeUsers = :u, subscribers = :s, activeDashboards = :d"
            ", expiresAt = :exp ADD version :one",
            ConditionExpression="attribute_not_exists(version)" if version is None else "version = :v",
            ExpressionAttributeValues={
                ":c": num(counts.connections),
                ":u": num(counts.active_users),
                ":s": num(counts.subscribers),
                ":d": num(counts.active_dashboards),
                ":exp": num(now + COUNTER_TTL_SECONDS),
                ":one": num(1),
                **({} if version is None else {":v": version}),
            },
        )
        if written is None:
            logger.info("counts changed during reconciliation; the next pass will settle them")
            return None
        return counts

    def _kind(self, kind: str) -> Iterator[list[str]]:
        return self.table.pages(
            IndexName=BY_LIVE_KIND_INDEX,
            KeyConditionExpression="live = :kind",
            ExpressionAttributeValues={":kind": text(kind)},
            ProjectionExpression="PK",
            field="PK",
        )

    def _live_members(self, pk: str, now: float) -> int:
        return self.table.count(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :conn)",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":pk": text(pk), ":conn": text("CONN#"), ":now": num(now)},
            ConsistentRead=True,
        )

    def _heal_members(self, pk: str, now: float) -> int:
        """The live members of a room or user; its own `members` counter is set to that number if it drifted."""
        old = self.table.get(own_key(pk), consistent=True) or {}
        live = self._live_members(pk, now)
        if "members" in old and int(old["members"]["N"]) != live:
            # Conditional on the value read: a concurrent join or leave wins, and the next pass looks again.
            self.table.conditional(
                "update_item",
                Key=own_key(pk),
                UpdateExpression="SET members = :live",
                ConditionExpression="members = :old",
                ExpressionAttributeValues={":live": num(live), ":old": old["members"]},
            )
        return live
