"""One counter item recounted: a look at it beside its live members, the heal a second look allows, and the
zeroing of an expired one. Which items, how many per run and when to look again is shared/reconciler.py's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.counters import Counters
from shared.reconcile_pass import contribution_change
from shared.table import Table, num, own_key, text

# Its lines are the reconciler's, under the name operators already filter on (shared/reconciler.py's).
logger = logging.getLogger("shared.reconciler")


@dataclass
class Look:
    pk: str
    kind: str
    members: int | None  # None: the counter has no `members` yet
    version: Any
    live: int

    @property
    def counted(self) -> int:
        """The members the counter holds as it stands (none yet: 0)."""
        return self.members if self.members is not None else 0


class Recount:
    """Looks at counter items, heals them and zeroes expired ones, adjusting the totals as it goes."""

    def __init__(self, table: Table, counters: Counters) -> None:
        self.table = table
        self.counters = counters

    def look(self, pk: str, kind: str, live: int | None = None) -> Look:
        """The counter and its live members (counted, unless a listing just now gave them)."""
        item = self.table.get(own_key(pk), consistent=True) or {}
        members = int(item["members"]["N"]) if "members" in item else None
        if live is None:
            live = self._live_members(pk, self.table.clock())
        return Look(pk, kind, members, item.get("version"), live)

    def heal(self, first: Look) -> bool:
        """Set the counter to its live members when a second look agrees with the first; adjust the totals."""
        second = self.look(first.pk, first.kind)
        if (second.members, second.version, second.live) != (first.members, first.version, first.live):
            first.members = second.members  # summed as the counter stands: a change in flight adds itself
            return False
        condition = "attribute_not_exists(version)" if first.version is None else "version = :v"
        values = {":live": num(first.live), ":one": num(1), **({} if first.version is None else {":v": first.version})}
        if first.members is None:
            condition += " AND attribute_not_exists(members)"
        healed = self.table.conditional(
            "update_item",
            Key=own_key(first.pk),
            UpdateExpression="SET members = :live ADD version :one",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        if healed is None:
            return False
        if first.members is not None:  # a counter that never existed was never in the totals either
            self.counters.add(bump=False, **contribution_change(first.kind, first.members, first.live))
        logger.info("healed %s: %s -> %s members", first.pk, first.members, first.live)
        first.members = first.live
        return True

    def zero_expired(self, pk: str, kind: str, now: float) -> int:
        """An expired counter: 0 members, out of the index, its old count taken out of the totals."""
        answer = self.table.conditional(
            "update_item",
            Key=own_key(pk),
            UpdateExpression="SET members = :zero ADD version :one REMOVE live",
            ConditionExpression="expiresAt <= :now",
            ExpressionAttributeValues={":zero": num(0), ":one": num(1), ":now": num(now)},
            ReturnValues="UPDATED_OLD",
        )
        if answer is None:  # joined meanwhile: the next pass counts it
            return 0
        old = int(answer.get("Attributes", {}).get("members", {"N": "0"})["N"])
        if old:
            self.counters.add(bump=False, **contribution_change(kind, old, 0))
        return 1

    def _live_members(self, pk: str, now: float) -> int:
        return self.table.count(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :conn)",
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={":pk": text(pk), ":conn": text("CONN#"), ":now": num(now)},
            ConsistentRead=True,
        )
