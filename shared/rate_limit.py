"""The rate limit every client event pays first: a token bucket on the connection's own item."""

from __future__ import annotations

from shared.errors import ConditionFailed, ConnectionNotFound, RateLimited
from shared.items import is_registered, registered_connection
from shared.table import Table, connection_key, num, own_key


class RateLimiter:
    def __init__(self, table: Table) -> None:
        self.table = table

    def take(self, connection_id: str, per_second: float, burst: int) -> None:
        """A token bucket on the connection's own item (GCRA: one number, `rateTat`); RateLimited when empty,
        ConnectionNotFound when the connection is not registered (absent, pending or expired), as every event.

        A TransactionConflictException (a transaction on the same item, should one ever touch it) is retried by
        Table.call.
        """
        if per_second <= 0:
            if registered_connection(self.table, connection_id) is None:
                raise ConnectionNotFound(connection_id)
            return
        key = own_key(connection_key(connection_id))
        now_ms, interval = int(self.table.clock() * 1000), max(1, int(1000 / per_second))
        attempts = [  # idle: the bucket has refilled; busy: take one more token if any is left
            (
                "SET rateTat = :next",
                "attribute_exists(PK) AND attribute_not_exists(pending) AND expiresAt > :seconds"
                " AND (attribute_not_exists(rateTat) OR rateTat <= :now)",
                {":next": num(now_ms + interval), ":now": num(now_ms), ":seconds": num(now_ms // 1000)},
            ),
            (
                "SET rateTat = rateTat + :interval",
                "rateTat > :now AND rateTat <= :ceiling",
                {":interval": num(interval), ":now": num(now_ms), ":ceiling": num(now_ms + (burst - 1) * interval)},
            ),
        ]
        for update, condition, values in attempts:
            try:
                self.table.call(
                    "update_item",
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            except ConditionFailed as failed:
                if not is_registered(failed.item, now_ms // 1000):
                    raise ConnectionNotFound(connection_id) from None
        raise RateLimited(f"Too many requests: at most {per_second:g} a second; slow down and retry")
