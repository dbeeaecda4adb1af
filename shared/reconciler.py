"""Counts that never drift for good: recount from the items themselves, without a Scan, off the publisher's tick.

Room and user counter items carry live=ROOM / live=USER, so the sparse ByLiveKind index lists them; each
one's live members are counted in its own partition (anonymous connections under ANON, whose own item
ANON / ANON counts them). A pass visits at most `budget` counter items per run and keeps its place (the
index's LastEvaluatedKey, the partial sums) on the METRICS / RECONCILE item, so the ReconcileFunction (its
own schedule) resumes where the previous run stopped.

Healing without racing a request: a join, leave, connect or disconnect writes its membership first and its
counter a moment later (within one function timeout). A recount between the two would see the membership
and not the count, and "healing" the counter then would make it drift by the change still in flight. So a
counter is healed only when a second look, `settle_seconds` (longer than any request) after the first,
finds the same counter (same `version`) and the same live members: everything in flight at the first look
has landed by then. Totals move with each heal by an `ADD` of the difference; at the end of a pass they are
overwritten with the sums of the pass only when no change at all (the `version` of METRICS / COUNTS) came
between the start of the pass and `settle_seconds` after its last look.

An expired counter item (nobody joined or left for a connection lifetime) has no live members: it is set
to 0 and taken out of the index (REMOVE live) in one conditional write, without a count.

Stale connections (shared/stale_connections.py): with a StaleConnectionCheck, the first look at ANON and at
each user lists the owner's connections instead of counting them, asks API Gateway about each one past the grace
period, and removes the gone ones before the counter is read; so every registered connection is asked about once
per pass. A run lists at most `check_budget` connections; when that runs out inside an owner's partition, the run
stops there and keeps the place (the owner, the last entry listed, and the index just before that owner), and
the next run finishes that partition before it looks at the counter.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.counters import Counters
from shared.reconcile_pass import DONE, PassRecord
from shared.recount import Look, Recount
from shared.stale_connections import Checked, StaleConnectionCheck
from shared.table import (
    ANON,
    BY_LIVE_KIND_INDEX,
    ROOM_KIND,
    USER_KIND,
    Table,
    own_key,
    text,
)

logger = logging.getLogger(__name__)

PHASES = (ANON, USER_KIND, ROOM_KIND)  # then the totals


@dataclass(frozen=True)
class RunResult:
    visited: int = 0  # counter items looked at in this run
    healed: int = 0  # counters set to their live members after a second look
    zeroed: int = 0  # expired counters set to 0 and taken out of the index
    finished: bool = False  # the pass reached its end in this run
    totals_written: bool = False  # the totals were overwritten with the pass's sums
    checked: int = 0  # connections asked about (GET @connections)
    removed: int = 0  # of those, the ones API Gateway answered 410 Gone for: removed as `$disconnect` does
    unanswered: int = 0  # of those, the ones it answered neither 200 nor 410 for: kept, asked again next pass


class Reconciler:
    """Recounts the counters from the items they count, a bounded share per run, resuming where it stopped."""

    def __init__(
        self,
        table: Table,
        settle_seconds: float = 20.0,
        interval_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        stale_check: StaleConnectionCheck | None = None,
        check_budget: int = 2000,
        counters: Counters | None = None,
    ) -> None:
        self.table = table
        self.counters = counters or Counters(table)
        self.recount = Recount(table, self.counters)
        self.settle_seconds = settle_seconds
        self.record = PassRecord(table, interval_seconds)
        self.sleep = sleep
        self.stale_check = stale_check  # None: connections are counted, never asked about
        self.check_budget = check_budget  # connections one run lists at most

    # -- one run --------------------------------------------------------------------------------
    def run(self, budget: int) -> RunResult:
        """Visit at most `budget` counter items (and list at most `check_budget` connections) of the current
        pass: a new one when none is under way and the last ended `interval_seconds` ago; otherwise nothing."""
        loaded = self.record.load()
        if loaded is None:
            return RunResult()
        state, step = loaded
        looks: list[Look] = []
        checks: list[Checked] = []
        zeroed = visited = 0
        while state["phase"] != DONE and visited < budget:
            phase = state["phase"]
            if phase == ANON:
                look = self._owner_look(ANON, ANON, state, checks)
                if look is None:
                    break  # the check budget ran out inside ANON's connections: the next run goes on there
                looks.append(look)
                visited += 1
                state["phase"] = USER_KIND
                continue
            page = self._kind_page(phase, budget - visited, state.get("cursor"))
            now = self.table.clock()
            stopped, previous = False, None
            for item in page.get("Items", []):
                pk = item["PK"]["S"]
                if int(item.get("expiresAt", {"N": "0"})["N"]) <= now:
                    zeroed += self.recount.zero_expired(pk, phase, now)
                else:
                    look = (
                        self._owner_look(pk, phase, state, checks)
                        if phase == USER_KIND
                        else self.recount.look(pk, phase)
                    )
                    if look is None:  # the next run resumes with this user: the index's place just before it
                        if previous is not None:
                            state["cursor"] = json.dumps(_index_key(phase, previous))
                        stopped = True
                        break
                    looks.append(look)
                visited += 1
                previous = pk
            if stopped:
                break
            if "LastEvaluatedKey" in page:
                state["cursor"] = json.dumps(page["LastEvaluatedKey"])
            else:
                state.pop("cursor", None)
                state["phase"] = PHASES[PHASES.index(phase) + 1] if phase != PHASES[-1] else DONE
        finished = state["phase"] == DONE
        subscribers = before = None
        if finished:
            before = self.record.counts_version()
            subscribers = self.record.count_subscribers()
        suspects = [look for look in looks if look.counted != look.live]
        if suspects or finished:
            self.sleep(self.settle_seconds)  # whatever was in flight at the first look lands meanwhile
        healed = sum(1 for look in suspects if self.recount.heal(look))
        for look in looks:
            self.record.add_to_sums(state, look.kind, look.counted)
        written = False
        if finished and subscribers is not None:
            written = self.record.write_totals(state, subscribers, before)
        if not self.record.save(state, step, finished):
            logger.info("another reconciliation run saved this pass first; this run's place is dropped")
        asked, gone = sum(check.asked for check in checks), sum(check.gone for check in checks)
        failed = sum(check.failed for check in checks)
        return RunResult(visited, healed, zeroed, finished, written, asked, gone, failed)

    # -- the owners and the index -------------------------------------------------------------
    def _owner_look(self, pk: str, kind: str, state: dict[str, Any], checks: list[Checked]) -> Look | None:
        """ANON's or a user's first look, once its connections have been asked about and the gone ones removed;
        None when this run's check budget ran out first (the place in the partition kept in `state`)."""
        if self.stale_check is None:
            return self.recount.look(pk, kind)
        place = state.pop("check", None)
        after = place["after"] if place is not None and place["pk"] == pk else None
        spent = sum(check.read for check in checks)
        if spent >= self.check_budget:
            if place is not None:
                state["check"] = place
            return None
        checked = self.stale_check.check(pk, after, self.check_budget - spent)
        checks.append(checked)
        if checked.resume_after is not None:
            state["check"] = {"pk": pk, "after": checked.resume_after}
            return None
        # Listed whole just now: the listing is the count. Listed over several runs: counted afresh.
        return self.recount.look(pk, kind, checked.live if after is None else None)

    def _kind_page(self, kind: str, limit: int, cursor: str | None) -> dict[str, Any]:
        query: dict[str, Any] = {
            "IndexName": BY_LIVE_KIND_INDEX,
            "KeyConditionExpression": "live = :kind",
            "ExpressionAttributeValues": {":kind": text(kind)},
            "ProjectionExpression": "PK, expiresAt",
            "Limit": max(1, limit),
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = json.loads(cursor)
        page: dict[str, Any] = self.table.call("query", **query)
        return page


def _index_key(kind: str, pk: str) -> dict[str, Any]:
    """The ByLiveKind key of a counter item (its own item: SK = PK), to resume a Query just after it."""
    return {"live": text(kind), **own_key(pk)}
