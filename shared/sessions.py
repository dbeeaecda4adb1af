"""Sessions a reconnecting client can recover: Socket.IO's `pid`, the JSON frames' `session`.

SESSION#h / SESSION#h (h: a hash of the private session id, which is stored nowhere in clear): the connection the
session belongs to now, its user, `sid` (what Socket.IO's CONNECT answered first) and `sinceMs` (when it began:
a client that received no update missed everything published after it). While the connection lives, that is
all; the connection's own item carries `pid`. When the connection leaves unplanned, its rooms and subscription
are written here with `leftAt`, and the item expires a recovery window later; a deliberate leave deletes it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from shared.items import room_ids
from shared.table import CONNECTION_TTL_SECONDS, Table, num, own_key, text

SESSION_PREFIX = "SESSION#"
PID_BYTES = 24  # 192 random bits
PID_SHAPE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_PID_LENGTH = 64


def new_pid() -> str:
    return secrets.token_urlsafe(PID_BYTES)


def is_pid(raw: Any) -> bool:
    """Whether a client's `pid` could be one of ours (anything else is a new session, never an error)."""
    return isinstance(raw, str) and 16 <= len(raw) <= MAX_PID_LENGTH and set(raw) <= PID_SHAPE


def session_key(pid: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(pid.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    pid: str
    sid: str
    connection_id: str
    user_id: str | None
    since_ms: int
    left_at: int | None  # None while its connection has not left, as far as the table knows
    room_ids: list[str]
    subscribed: bool


class Sessions:
    def __init__(self, table: Table, window_seconds: float) -> None:
        self.table = table
        self.window_seconds = window_seconds

    def start(self, pid: str, sid: str, connection_id: str, user_id: str | None, since_ms: int) -> None:
        item: dict[str, Any] = {
            **own_key(session_key(pid)),
            "connectionId": text(connection_id),
            "sid": text(sid),
            "sinceMs": num(since_ms),
            "expiresAt": num(self.table.clock() + CONNECTION_TTL_SECONDS),
        }
        if user_id is not None:
            item["userId"] = text(user_id)
        self.table.call("put_item", Item=item)

    def find(self, pid: str) -> Session | None:
        """The session, unless it is unknown, expired, or left longer than the recovery window ago."""
        item = self.table.get(own_key(session_key(pid)), consistent=True)
        now = self.table.clock()
        if item is None or int(item["expiresAt"]["N"]) <= now:
            return None
        left_at = int(item["leftAt"]["N"]) if "leftAt" in item else None
        if left_at is not None and left_at + self.window_seconds <= now:
            return None
        return Session(
            pid=pid,
            sid=item["sid"]["S"],
            connection_id=item["connectionId"]["S"],
            user_id=item["userId"]["S"] if "userId" in item else None,
            since_ms=int(item["sinceMs"]["N"]),
            left_at=left_at,
            room_ids=room_ids(item),
            subscribed=bool(item.get("subscribed", {}).get("BOOL")),
        )

    def claim(self, session: Session, connection_id: str) -> bool:
        """Hand the session to a new connection; False when another claim, or its leaving, changed it first."""
        left = "attribute_not_exists(leftAt)" if session.left_at is None else "leftAt = :left"
        values = {":old": text(session.connection_id), ":new": text(connection_id)}
        values[":exp"] = num(self.table.clock() + CONNECTION_TTL_SECONDS)
        if session.left_at is not None:
            values[":left"] = num(session.left_at)
        claimed = self.table.conditional(
            "update_item",
            Key=own_key(session_key(session.pid)),
            UpdateExpression="SET connectionId = :new, expiresAt = :exp REMOVE leftAt, roomIds, subscribed",
            ConditionExpression=f"connectionId = :old AND {left}",
            ExpressionAttributeValues=values,
        )
        return claimed is not None

    def keep(self, connection: dict[str, Any]) -> None:
        """A connection left unplanned (its item as deleted): keep its session for the recovery window."""
        pid = connection.get("pid", {}).get("S")
        if pid is None or self.window_seconds <= 0:
            return self.end(connection)
        now = int(self.table.clock())
        rooms = room_ids(connection)
        values: dict[str, Any] = {
            ":cid": text(connection["PK"]["S"].removeprefix("CONN#")),
            ":now": num(now),
            ":exp": num(now + self.window_seconds + 1),
            ":sub": {"BOOL": "live" in connection},
        }
        update = "SET leftAt = :now, expiresAt = :exp, subscribed = :sub"
        if rooms:
            update, values[":rooms"] = f"{update}, roomIds = :rooms", {"SS": rooms}
        self.table.conditional(
            "update_item",
            Key=own_key(session_key(pid)),
            UpdateExpression=update,
            ConditionExpression="connectionId = :cid",  # not when a newer connection has claimed it meanwhile
            ExpressionAttributeValues=values,
        )
        return None

    def end(self, connection: dict[str, Any]) -> None:
        """A deliberate leave: the session cannot be recovered."""
        pid = connection.get("pid", {}).get("S")
        if pid is None:
            return
        self.table.conditional(
            "delete_item",
            Key=own_key(session_key(pid)),
            ConditionExpression="connectionId = :cid",
            ExpressionAttributeValues={":cid": text(connection["PK"]["S"].removeprefix("CONN#"))},
        )
