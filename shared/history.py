"""A dashboard's recent updates, in publish order: what a recovering session missed, and the last value on join.

HIST#d / <seq>: one item per published update, numbered with no gap: a publisher reads the latest item and writes
the next one on condition that it does not exist yet (one read, one write per update, whatever the number of
members; the read is skipped when this process wrote the latest one). So when an update is in the history, every
earlier one is too, and one strongly consistent Query reads a gap-free run.

A dashboard's first update (or the first after all of its history expired) takes its publish time in ms as its
seq, and marks itself `first`; each later one takes the next seq, and a publish time at least 1 ms after the
previous one's. So seq never exceeds ms, and a sequence begun anew starts above every seq it follows: numbers
never go back, and every client's offset stays behind them.

An offset names one update: `<ms>-<seq>-<dashboard>`. Offsets of one dashboard order as their seqs, offsets of
different dashboards by time: what a client's last offset says about the other dashboards it is in.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.contract import MAX_ID_LENGTH
from shared.errors import Busy, ConditionFailed
from shared.table import Table, num, text

HISTORY_PREFIX = "HIST#"
SEQ_DIGITS = 16
APPEND_ATTEMPTS = 16  # concurrent publishers of one dashboard each take the next seq; beyond this, give up
MAX_REMEMBERED = 10_000  # dashboards whose last written seq a process keeps
OFFSET = re.compile(rf"(\d{{13}})-(\d{{1,{SEQ_DIGITS}}})-([A-Za-z0-9_.:\-]{{1,{MAX_ID_LENGTH}}})")
LONGEST_OFFSET = f"{'9' * 13}-{'9' * SEQ_DIGITS}-{'x' * MAX_ID_LENGTH}"


class HistoryBusy(Busy):
    """Too many publishers of one dashboard at once: no seq could be taken. Not the publisher's fault: the
    function fails, and EventBridge tries the event again."""


@dataclass(frozen=True)
class Offset:
    ms: int
    seq: int
    dashboard_id: str

    def __str__(self) -> str:
        return f"{self.ms:013d}-{self.seq}-{self.dashboard_id}"

    @classmethod
    def parse(cls, raw: Any) -> Offset | None:
        """The offset a client sent back, or None when it is not one."""
        match = OFFSET.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), match[3])


@dataclass(frozen=True)
class Update:
    seq: int
    ms: int
    payload: dict[str, Any]
    dashboard_id: str
    first: bool = False  # the first of its sequence: nothing before it is missing
    token: str | None = None  # the publish request that wrote it

    @property
    def offset(self) -> Offset:
        return Offset(self.ms, self.seq, self.dashboard_id)


@dataclass(frozen=True)
class Missed:
    """What a client missed of one dashboard, oldest first, and the seq it has seen up to once it has them."""

    updates: list[Update]
    position: int


def history_key(dashboard_id: str) -> str:
    return f"{HISTORY_PREFIX}{dashboard_id}"


def _sort_key(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}"


class History:
    """Append and read the updates of each dashboard; items expire `max_age_seconds` after their publication,
    and at most `max_updates` are ever replayed."""

    def __init__(self, table: Table, max_updates: int, max_age_seconds: float) -> None:
        self.table = table
        self.max_updates = max_updates
        self.max_age_seconds = max_age_seconds
        # The last update this process wrote of each dashboard: while it has not expired, no sequence can have
        # begun anew, so its next seq is a good guess and the read is skipped. Never trusted: the put's condition
        # refuses a seq already taken, and then the latest is read.
        self._written: dict[str, Update] = {}

    def append(self, dashboard_id: str, payload: dict[str, Any], now_ms: int, token: str | None = None) -> Update:
        """Write the dashboard's next update. `token` names the publish request (EventBridge's event id): the
        same request appends once, however often it is tried. HistoryBusy when other publishers keep taking the
        seq first."""
        token = token or secrets.token_urlsafe(12)
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        known = self._written.get(dashboard_id)
        if known is not None and known.token == token:
            return known  # this request's own update: this process appended it on an earlier try
        guess = known if known is not None and self._fresh(known, now_ms / 1000) else None
        for _ in range(APPEND_ATTEMPTS):
            latest = guess or self.latest(dashboard_id)
            if guess is None and latest is not None and latest.token == token:
                return latest  # this request's own update: appended by an earlier try
            guess = None  # a guess is tried once
            first = latest is None
            ms = now_ms if latest is None else max(now_ms, latest.ms + 1)
            seq = ms if latest is None else latest.seq + 1
            item = {
                "PK": text(history_key(dashboard_id)),
                "SK": text(_sort_key(seq)),
                "ms": num(ms),
                "payload": text(body),
                "token": text(token),
                "expiresAt": num(ms // 1000 + self.max_age_seconds + 1),
                **({"first": {"BOOL": True}} if first else {}),
            }
            try:
                # Or this request's own put, retried by botocore after its answer was lost.
                self.table.call(
                    "put_item",
                    Item=item,
                    ConditionExpression="attribute_not_exists(PK) OR #token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": text(token)},
                )
            except ConditionFailed:
                continue
            update = Update(seq, ms, payload, dashboard_id, first, token)
            if len(self._written) >= MAX_REMEMBERED and dashboard_id not in self._written:
                self._written.clear()  # a bound on the memory of a long-lived process; guesses only
            self._written[dashboard_id] = update
            return update
        raise HistoryBusy(dashboard_id)

    def latest(self, dashboard_id: str) -> Update | None:
        """The dashboard's last update, expired or not (while it is there, its seq is the one to follow)."""
        page = self.table.call(
            "query",
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": text(history_key(dashboard_id))},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return _update(items[0], dashboard_id) if items else None

    def fresh(self, update: Update) -> bool:
        """Not aged out: it may be replayed, or be the last value on join."""
        return self._fresh(update, self.table.clock())

    def after(self, dashboard_id: str, seq: int) -> Iterator[Update]:
        """The updates after `seq`, oldest first (strongly consistent, every page)."""
        for page in self.table.items(
            KeyConditionExpression="PK = :pk AND SK > :seq",
            ExpressionAttributeValues={":pk": text(history_key(dashboard_id)), ":seq": text(_sort_key(seq))},
            ConsistentRead=True,
        ):
            for item in page:
                yield _update(item, dashboard_id)

    def missed(self, dashboard_id: str, since: Offset | None, since_ms: int) -> Missed | None:
        """What a client that last saw `since` (or, without one, nothing after `since_ms`) missed of this dashboard,
        oldest first; None when the history no longer holds all of it (more than `max_updates`, or aged out)."""
        exact = since is not None and since.dashboard_id == dashboard_id
        after_ms = since.ms if since is not None else since_ms
        newest_first: list[Update] = []
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": text(history_key(dashboard_id))},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": self.max_updates + 2,  # enough to tell "all of it" from "more than max_updates"
        }
        page = self.table.call("query", **request)
        for item in page.get("Items", []):
            update = _update(item, dashboard_id)
            if (update.seq <= since.seq) if exact and since is not None else update.ms <= after_ms:
                return None if len(newest_first) > self.max_updates else self._complete(newest_first, update.seq)
            newest_first.append(update)
        if len(newest_first) > self.max_updates or "LastEvaluatedKey" in page:
            return None
        # The whole history is newer than what the client saw: complete only when nothing before it is missing.
        if exact and since is not None:
            complete = not newest_first or newest_first[-1].seq == since.seq + 1
        else:
            complete = not newest_first or newest_first[-1].first
        return self._complete(newest_first, 0) if complete else None

    def _complete(self, newest_first: list[Update], seen_seq: int) -> Missed | None:
        now = self.table.clock()
        if any(not self._fresh(update, now) for update in newest_first):
            return None  # one it would replay has aged out: the client would see a gap
        return Missed(newest_first[::-1], newest_first[0].seq if newest_first else seen_seq)

    def _fresh(self, update: Update, now: float) -> bool:
        return update.ms / 1000 + self.max_age_seconds > now


def _update(item: dict[str, Any], dashboard_id: str) -> Update:
    return Update(
        seq=int(item["SK"]["S"]),
        ms=int(item["ms"]["N"]),
        payload=json.loads(item["payload"]["S"]),
        dashboard_id=dashboard_id,
        first=bool(item.get("first", {}).get("BOOL")),
        token=item.get("token", {}).get("S"),
    )
