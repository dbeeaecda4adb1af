"""A Socket.IO connection between its `$connect` and its namespace CONNECT: registered only at the CONNECT.

Its `$connect` alone sees the query string, so it keeps what it learnt in a pending item that nothing counts;
the CONNECT turns that item into the registration (shared/store.py counts it in then).
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from shared.errors import ConditionFailed
from shared.items import is_registered
from shared.protocols import SOCKETIO
from shared.sessions import Sessions, session_key
from shared.store import Store
from shared.table import CONNECTION_TTL_SECONDS, Table, connection_key, num, own_key, text

PENDING_TTL_SECONDS = 15 * 60  # a handshake that never completes: gone after API Gateway's idle timeout


class Keep(Enum):
    """What the namespace CONNECT leaves as its `$connect` found it (the pending item's user, or its dashboards)."""

    KEEP = "keep"


KEEP = Keep.KEEP


class PendingConnections:
    """The pending items of Socket.IO handshakes under way; the store counts a connection in once it completes."""

    def __init__(self, table: Table, store: Store, sessions: Sessions | None = None) -> None:
        self.table = table
        self.store = store
        self.sessions = sessions  # None: a completed handshake opens no session

    def add(self, connection_id: str, user_id: str | None, allowed: list[str] | None, authenticated: bool) -> None:
        """What a Socket.IO `$connect` learnt (the query string), kept uncounted until the namespace CONNECT."""
        item = {
            **own_key(connection_key(connection_id)),
            "pending": {"BOOL": True},
            "protocol": text(SOCKETIO),
            "authenticated": {"BOOL": authenticated},
            "expiresAt": num(self.table.clock() + PENDING_TTL_SECONDS),
        }
        if user_id is not None:
            item["userId"] = text(user_id)
        if allowed is not None:
            item["allowed"] = {"L": [text(dashboard) for dashboard in allowed]}
        self.table.conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(PK)")

    def complete(
        self,
        connection_id: str,
        user_id: str | Keep | None = KEEP,
        allowed: list[str] | Keep | None = KEEP,
        authenticated: bool = False,
        pid: str | None = None,
    ) -> bool | None:
        """Socket.IO's namespace CONNECT: the pending item becomes the registration in one conditional update, whose
        answer is the item written (its user), so that no read comes first. True when registered now; False when it
        was already (a repeated CONNECT: counted once); None, writing nothing, when there is no pending item (absent
        or expired) or, `authenticated` asked, its `$connect` proved no identity.

        `pid`: the connection's new session (shared/recovery.py), named in the same update, its item and pointer put
        in the registration's batch: a just registered connection holds no session, so nothing needs reading first.
        """
        now = self.table.clock()
        sets, removes = ["connectedAt = :now", "expiresAt = :exp"], ["pending", "authenticated"]
        values: dict[str, Any] = {":now": num(now), ":exp": num(now + CONNECTION_TTL_SECONDS)}
        if user_id is None:
            removes.append("userId")
        elif not isinstance(user_id, Keep):
            sets.append("userId = :user")
            values[":user"] = text(user_id)
        if allowed is None:
            removes.append("allowed")
        elif not isinstance(allowed, Keep):
            sets.append("allowed = :allowed")
            values[":allowed"] = {"L": [text(dashboard) for dashboard in allowed]}
        names: dict[str, str] = {}
        if pid is not None:
            sets.append("#session = :session")
            values[":session"], names["#session"] = text(session_key(pid)), "session"
        condition = "attribute_exists(pending) AND expiresAt > :now"
        if authenticated:
            condition += " AND authenticated = :true"
            values[":true"] = {"BOOL": True}
        try:
            answer = self.table.call(
                "update_item",
                Key=own_key(connection_key(connection_id)),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ConditionFailed as failed:
            return False if is_registered(failed.item, now) else None
        item = answer["Attributes"]
        session: list[dict[str, Any]] = []
        if pid is not None:
            assert self.sessions is not None, "a session needs the sessions"
            user = item["userId"]["S"] if "userId" in item else None
            session = self.sessions.items(pid, connection_id, connection_id, user, int(time.time() * 1000))
        self.store.count_in(item, now, session)
        return True
