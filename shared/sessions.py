"""Sessions a reconnecting client can recover: Socket.IO's `pid`, the JSON frames' `session`.

SESSION#h / SESSION#h, h the SHA-256 of the private session id, which is stored nowhere in clear: the connection
the session belongs to now, its user, `sid` (what Socket.IO's CONNECT answered first) and `sinceMs` (when it began:
a client that received no update missed everything published after it). The connection's own item carries `h` as
`session`, and CONN#c / SESSION#c points at it too, so that a `41` handled after the connection's `$disconnect`
still ends it. When the connection leaves unplanned, its rooms and subscription are written here with `leftAt`,
and the item expires a recovery window later; a deliberate leave deletes it. A recovery claims the session and
marks it `restoring`: the state it restores stays here until it is restored, so a connection that drops (or is
taken over) mid-recovery hands on the whole state, never the part restored so far.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from shared.items import room_ids
from shared.table import CONNECTION_TTL_SECONDS, Table, connection_key, num, own_key, text

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


def pointer_key(connection_id: str) -> dict[str, Any]:
    """CONN#c / SESSION#c: which session connection c holds (SK of its own, so the inverted index spreads them)."""
    return {"PK": text(connection_key(connection_id)), "SK": text(f"{SESSION_PREFIX}{connection_id}")}


@dataclass(frozen=True)
class Session:
    key: str
    sid: str
    connection_id: str
    user_id: str | None
    since_ms: int
    left_at: int | None  # None while its connection has not left, as far as the table knows
    restoring: bool  # a recovery is restoring the state below onto `connection_id`
    room_ids: list[str]
    subscribed: bool


class Sessions:
    def __init__(self, table: Table, window_seconds: float) -> None:
        self.table = table
        self.window_seconds = window_seconds

    @property
    def enabled(self) -> bool:
        return self.window_seconds > 0

    def start(self, pid: str, sid: str, connection_id: str, user_id: str | None, since_ms: int) -> None:
        # One BatchWriteItem: both puts are unconditional, and no reader needs one before the other (the pointer is
        # read only for a connection already removed, whose session item may be missing either way).
        self.table.batch_put(self.items(pid, sid, connection_id, user_id, since_ms))

    def items(self, pid: str, sid: str, connection_id: str, user_id: str | None, since_ms: int) -> list[dict[str, Any]]:
        """A new session's item and its pointer, for a batch of unconditional puts (start's, or a registration's)."""
        key, expires = session_key(pid), num(self.table.clock() + CONNECTION_TTL_SECONDS)
        item: dict[str, Any] = {
            **own_key(key),
            "connectionId": text(connection_id),
            "sid": text(sid),
            "sinceMs": num(since_ms),
            "expiresAt": expires,
            **({"userId": text(user_id)} if user_id is not None else {}),
        }
        return [item, self._pointer(connection_id, key)]

    def point(self, connection_id: str, key: str) -> None:
        self.table.call("put_item", Item=self._pointer(connection_id, key))

    def _pointer(self, connection_id: str, key: str) -> dict[str, Any]:
        expires = num(self.table.clock() + CONNECTION_TTL_SECONDS)
        return {**pointer_key(connection_id), "session": text(key), "expiresAt": expires}

    def find(self, key: str) -> Session | None:
        """The session, unless it is unknown, expired, or left longer than the recovery window ago."""
        item = self.table.get(own_key(key), consistent=True)
        now = self.table.clock()
        if item is None or int(item["expiresAt"]["N"]) <= now:
            return None
        left_at = int(item["leftAt"]["N"]) if "leftAt" in item else None
        if left_at is not None and left_at + self.window_seconds <= now:
            return None
        return Session(
            key=key,
            sid=item["sid"]["S"],
            connection_id=item["connectionId"]["S"],
            user_id=item["userId"]["S"] if "userId" in item else None,
            since_ms=int(item["sinceMs"]["N"]),
            left_at=left_at,
            restoring="restoring" in item,
            room_ids=room_ids(item),
            subscribed=bool(item.get("subscribed", {}).get("BOOL")),
        )

    def claim(self, session: Session, connection_id: str, saved_rooms: list[str], subscribed: bool) -> bool:
        """Hand the session to a new connection, which restores `saved_rooms` and `subscribed`: they stay on the
        session (`restoring`) until `restored`. False when another claim, or its leaving, changed it first."""
        left = "attribute_not_exists(leftAt)" if session.left_at is None else "leftAt = :left"
        values: dict[str, Any] = {
            ":old": text(session.connection_id),
            ":new": text(connection_id),
            ":exp": num(self.table.clock() + CONNECTION_TTL_SECONDS),
            ":yes": {"BOOL": True},
            ":sub": {"BOOL": subscribed},
            **({":left": num(session.left_at)} if session.left_at is not None else {}),
        }
        update = "SET connectionId = :new, expiresAt = :exp, restoring = :yes, subscribed = :sub"
        if saved_rooms:
            update, values[":rooms"] = f"{update}, roomIds = :rooms", {"SS": saved_rooms}
        claimed = self.table.conditional(
            "update_item",
            Key=own_key(session.key),
            UpdateExpression=f"{update} REMOVE leftAt" + ("" if saved_rooms else ", roomIds"),
            ConditionExpression=f"connectionId = :old AND {left}",
            ExpressionAttributeValues=values,
        )
        if claimed is not None:
            self.point(connection_id, session.key)
        return claimed is not None

    def restored(self, key: str, connection_id: str) -> None:
        """The recovery has put the state on the connection: from now on its leaving writes its own."""
        self.table.conditional(
            "update_item",
            Key=own_key(key),
            UpdateExpression="REMOVE restoring, roomIds, subscribed",
            ConditionExpression="connectionId = :cid",
            ExpressionAttributeValues={":cid": text(connection_id)},
        )

    def keep(self, connection: dict[str, Any]) -> None:
        """A connection left unplanned (its item as deleted): keep its session for the recovery window; the state
        a recovery was restoring, when it had not finished, rather than the part it had restored."""
        key = connection.get("session", {}).get("S")
        if key is None or not self.enabled:
            return self.end(connection)
        now = int(self.table.clock())
        rooms = room_ids(connection)
        values: dict[str, Any] = {
            ":cid": text(connection["PK"]["S"].removeprefix("CONN#")),
            ":now": num(now),
            ":exp": num(now + self.window_seconds + 1),
            ":sub": {"BOOL": "live" in connection},
        }
        update = "SET leftAt = :now, expiresAt = :exp, subscribed = if_not_exists(subscribed, :sub)"
        if rooms:
            update, values[":rooms"] = f"{update}, roomIds = if_not_exists(roomIds, :rooms)", {"SS": rooms}
        self.table.conditional(
            "update_item",
            Key=own_key(key),
            UpdateExpression=f"{update} REMOVE restoring",
            ConditionExpression="connectionId = :cid",  # not when a newer connection has claimed it meanwhile
            ExpressionAttributeValues=values,
        )
        return None

    def end(self, connection: dict[str, Any]) -> None:
        """A deliberate leave: the session cannot be recovered, and nothing of it stays."""
        key = connection.get("session", {}).get("S")
        if key is not None:
            connection_id = connection["PK"]["S"].removeprefix("CONN#")
            self.end_of(key, connection_id)
            self.table.call("delete_item", Key=pointer_key(connection_id))

    def end_of(self, key: str, connection_id: str) -> None:
        self.table.conditional(
            "delete_item",
            Key=own_key(key),
            ConditionExpression="connectionId = :cid",
            ExpressionAttributeValues={":cid": text(connection_id)},
        )

    def end_for(self, connection_id: str) -> None:
        """End the session a connection that is already removed held (its `41` came after its `$disconnect`)."""
        pointer = self.table.get(pointer_key(connection_id), consistent=True)
        if pointer is not None:
            self.end_of(pointer["session"]["S"], connection_id)
