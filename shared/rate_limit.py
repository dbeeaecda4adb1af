"""The rate limit every client event pays first: a token bucket on the connection's own item.

GCRA: one number, `rateTat` (ms), the bucket's theoretical arrival time. A token is a conditional update of it in
one of two forms: idle (the bucket has refilled: `rateTat` absent or past, set to now + interval) or busy (take one
more while `rateTat` is at most burst - 1 intervals ahead, add an interval). Which form holds is not known before the
update; this process remembers the `rateTat` it last wrote for each connection and tries the form that implies first
(`rateTat` only grows, so a remembered busy bucket is busy), the other when the failed condition's item says so.

An event that writes the connection's item anyway (a subscribe's `live`, a new session's name, a join's and a leave's
`roomIds`) takes its token in that write: `Token.update` makes it, or the write joins the token's clauses to its own
(shared/rooms.py); the others take it in an update of its own (`RateLimiter.take`).
"""

from __future__ import annotations

import threading
from typing import Any

from shared.errors import ConditionFailed, ConnectionNotFound, RateLimited
from shared.items import is_registered
from shared.table import Table, connection_key, num, own_key

IDLE, BUSY, EMPTY = "idle", "busy", "empty"
MAX_REMEMBERED = 10_000  # connections whose last `rateTat` a process keeps: guesses only
REGISTERED = "attribute_exists(PK) AND attribute_not_exists(pending) AND expiresAt > :rateSeconds"


class Token:
    """One event's token, as the clauses of a conditional update of the connection's own item: `assignment` joins
    the update's SET (`joined`), `condition` is its condition (with the connection's registration), `values` their
    values; `update` makes such an update. Without a limit (`per_second` 0) it is the registration alone."""

    def __init__(self, limiter: RateLimiter, connection_id: str, per_second: float, burst: int) -> None:
        self.limiter = limiter
        self.connection_id = connection_id
        self.limited = per_second > 0
        self.per_second = per_second
        self.now_ms = int(limiter.table.clock() * 1000)
        self.interval = max(1, int(1000 / per_second)) if self.limited else 0
        self.ceiling = self.now_ms + (burst - 1) * self.interval
        self.form = limiter.guess(connection_id, self.now_ms)

    @property
    def assignment(self) -> str | None:
        if not self.limited:
            return None
        return "rateTat = :rateNext" if self.form == IDLE else "rateTat = rateTat + :rateInterval"

    @property
    def condition(self) -> str:
        if not self.limited:
            return REGISTERED
        if self.form == IDLE:
            return f"{REGISTERED} AND (attribute_not_exists(rateTat) OR rateTat <= :rateNow)"
        return f"{REGISTERED} AND rateTat > :rateNow AND rateTat <= :rateCeiling"

    @property
    def values(self) -> dict[str, Any]:
        values = {":rateSeconds": num(self.now_ms // 1000)}
        if self.limited:
            values[":rateNow"] = num(self.now_ms)
            if self.form == IDLE:
                values[":rateNext"] = num(self.now_ms + self.interval)
            else:
                values[":rateInterval"] = num(self.interval)
                values[":rateCeiling"] = num(self.ceiling)
        return values

    def joined(self, update: str) -> str:
        """An update expression (its clauses each named once; empty: none) with this token's assignment in its SET
        clause."""
        assignment = self.assignment
        if assignment is None:
            return update
        if not update:
            return f"SET {assignment}"
        if update.startswith("SET ") or " SET " in update:
            return update.replace("SET ", f"SET {assignment}, ", 1)
        return f"{update} SET {assignment}"

    def taken(self) -> None:
        """The update carrying this token succeeded."""
        if self.limited:
            self.limiter.remember(self.connection_id, self.now_ms, self.interval, self.form)

    def refused(self, item: dict[str, Any] | None) -> bool:
        """After the update's condition failed, with the connection's item as it was: ConnectionNotFound or
        RateLimited raised; True when the token's other form holds (try again with it, now chosen); False when the
        token's own clause held, so that the event's own condition refused."""
        if not is_registered(item, self.now_ms // 1000):
            raise ConnectionNotFound(self.connection_id)
        if not self.limited:
            return False
        assert item is not None
        tat = int(item["rateTat"]["N"]) if "rateTat" in item else None
        form = IDLE if tat is None or tat <= self.now_ms else BUSY if tat <= self.ceiling else EMPTY
        if form == EMPTY:
            raise self.limiter.refusal(self.per_second)
        if form == self.form:
            return False
        self.form = form
        return True

    def update(
        self,
        expression: str = "",
        *,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        return_values: str,
    ) -> dict[str, Any]:
        """Take this token in an update of the connection's own item: the event's own `expression` (none: the token
        alone) with the token's assignment, on the event's own `condition` (if any) and the token's; the answer's
        `Attributes` as `return_values` asks. ConnectionNotFound or RateLimited as `refused` tells; ConditionFailed,
        with the item as it was, when the token's clause held, so that the event's own condition refused."""
        for _ in range(3):  # idle, then busy: one change of form, and one more for a bucket another request moved
            try:
                answer = self.limiter.table.call(
                    "update_item",
                    Key=own_key(connection_key(self.connection_id)),
                    UpdateExpression=self.joined(expression),
                    ConditionExpression=self.condition if condition is None else f"{self.condition} AND {condition}",
                    ExpressionAttributeValues={**(values or {}), **self.values},
                    ReturnValues=return_values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **({"ExpressionAttributeNames": names} if names else {}),
                )
            except ConditionFailed as failed:
                if self.refused(failed.item):  # raises, or names the form that holds now
                    continue
                raise
            self.taken()
            attributes: dict[str, Any] = answer.get("Attributes", {})
            return attributes
        raise RateLimiter.refusal(self.per_second)  # other requests kept taking the tokens first

    def take(self) -> None:
        """Take it in an update of its own, when the event's own write did not (its condition refused, having
        checked the registration: without a limit there is nothing more to take)."""
        if self.limited:
            self.limiter.take_token(self)


class RateLimiter:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._lock = threading.Lock()
        self._known: dict[str, int] = {}  # connection id -> the `rateTat` this process last wrote

    def token(self, connection_id: str, per_second: float, burst: int) -> Token:
        return Token(self, connection_id, per_second, burst)

    def registration(self, connection_id: str) -> Token:
        """A token without a limit: the connection's registration alone, for a write whose event pays no token in it."""
        return self.token(connection_id, 0, 1)

    def take(self, connection_id: str, per_second: float, burst: int) -> None:
        """A token in an update of its own; RateLimited when the bucket is empty, ConnectionNotFound when the
        connection is not registered (absent, pending or expired), as every event.

        A TransactionConflictException (a transaction on the same item, should one ever touch it) is retried by
        Table.call.
        """
        self.take_token(self.token(connection_id, per_second, burst))

    def take_token(self, token: Token) -> dict[str, Any]:
        """Take `token` in an update of its own; the connection's item as it stands after it."""
        if token.limited:
            return token.update(return_values="ALL_NEW")
        item = self.table.get(own_key(connection_key(token.connection_id)), consistent=True)
        if not is_registered(item, token.now_ms // 1000):
            raise ConnectionNotFound(token.connection_id)
        assert item is not None
        return item

    @staticmethod
    def refusal(per_second: float) -> RateLimited:
        return RateLimited(f"Too many requests: at most {per_second:g} a second; slow down and retry")

    def guess(self, connection_id: str, now_ms: int) -> str:
        with self._lock:
            known = self._known.get(connection_id)
        return BUSY if known is not None and known > now_ms else IDLE

    def remember(self, connection_id: str, now_ms: int, interval: int, form: str) -> None:
        with self._lock:
            known = self._known.get(connection_id)
            base = now_ms if form == IDLE or known is None else max(known, now_ms)
            if len(self._known) >= MAX_REMEMBERED and connection_id not in self._known:
                self._known.clear()
            self._known[connection_id] = base + interval
