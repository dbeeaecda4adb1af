"""Connection state recovery: a reconnecting client gets its session back, or a new one, never half of one.

`resume` is the one entry: Socket.IO's namespace CONNECT with `{pid, offset}` (at `$default`, and the local
gateway's `/socket.io/`, which calls the `resume` route), and the JSON frames' `resume` action. A session is
recovered when it is known, left less than the recovery window ago (or its connection is still registered:
a half-open connection the client has given up on), belongs to the same user, the client's offset is one, and
the history still holds everything the client missed (at most HISTORY_MAX_UPDATES in all). Then its
subscription and dashboards are restored on the new connection, the missed updates replayed in publish order,
and live delivery takes over (shared/restore.py, then shared/handover.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import restore
from shared.errors import ConditionFailed, ConnectionGone, ConnectionNotFound
from shared.history import Offset
from shared.items import registered_connection, room_ids
from shared.poster import Poster
from shared.rate_limit import Token
from shared.services import Services
from shared.sessions import Session, is_pid, new_pid, session_key
from shared.table import text

logger = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5 * 60 * 1000  # an offset further in the future than this is not one of ours
TAKEOVER_WAIT_SECONDS = 1.0  # how long a reconnection waits for its old connection's leaving to settle
TAKEOVER_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Resumed:
    pid: str | None  # None: recovery is off (RECOVERY_WINDOW_SECONDS=0)
    sid: str
    recovered: bool


Answer = Callable[[Resumed], None]


def resume(
    svc: Services,
    poster: Poster,
    connection_id: str,
    protocol: str,
    pid: Any,
    offset: Any,
    answer: Answer | None = None,
    token: Token | None = None,
) -> Resumed:
    """Recover the session `pid` names on this (registered) connection, or give it a new one. `answer` is told the
    outcome before anything is replayed (Socket.IO's CONNECT answer must reach the client first). `token`: the
    event's rate-limit token, which a new session takes in its mark of the connection's item (one write for both),
    and a recovery first, in an update of its own (the namespace CONNECT at `$default` takes none)."""
    since = Offset.parse(offset)
    resumed = None
    if recovers(svc, pid, offset):
        # The token's own update answers the connection's item: no read of it after.
        item = (
            svc.rate_limiter.take_token(token) if token is not None else registered_connection(svc.table, connection_id)
        )
        token = None  # taken: a new session after all marks the connection without another
        if item is None:
            raise ConnectionNotFound(connection_id)
        resumed = _recovered(svc, poster, connection_id, protocol, item, pid, since, answer)
    if resumed is None:
        resumed = _new_session(svc, connection_id, token)
        if answer is not None:
            answer(resumed)
    return resumed


def recovers(svc: Services, pid: Any, offset: Any) -> bool:
    """Whether `resume` tries to recover the session `pid` names; if not, it starts a new one (a new connection's
    can be named by its registration: see shared/connections.py register_socketio)."""
    since = Offset.parse(offset)
    bad_offset = offset is not None and (since is None or since.ms > time.time() * 1000 + CLOCK_SKEW_MS)
    return svc.sessions.enabled and is_pid(pid) and not bad_offset


def _settled(svc: Services, key: str) -> Session | None:
    """The session, once its last connection has had a moment to leave: a client that called `disconnect()` and
    at once `connect()` may reconnect before its old connection's leaving has ended the session. A connection
    still registered after TAKEOVER_WAIT_SECONDS is half-open, and its session is taken over."""
    session = svc.sessions.find(key)
    waited = 0.0
    while session is not None and session.left_at is None and not session.restoring and waited < TAKEOVER_WAIT_SECONDS:
        svc.table.sleep(TAKEOVER_POLL_SECONDS)
        waited += TAKEOVER_POLL_SECONDS
        session = svc.sessions.find(key)
    return session


def _new_session(svc: Services, connection_id: str, token: Token | None) -> Resumed:
    """A new session: one conditional update of the connection's item names it (and takes the token), answering
    its user; one BatchWriteItem writes the session and its pointer. A connection that has a session already (asked
    again) is told by that update's failed condition: its session gets a new id (its old one is stored nowhere in
    clear) and keeps when it began."""
    token = token or svc.rate_limiter.registration(connection_id)
    if not svc.sessions.enabled:
        svc.rate_limiter.take_token(token)  # registered, and the token: as every event
        return Resumed(None, connection_id, False)
    pid, since_ms = new_pid(), int(time.time() * 1000)
    try:
        item = _mark(svc, connection_id, session_key(pid), None, token)
    except SessionHeld as held:
        own = svc.sessions.find(held.key)
        since_ms = own.since_ms if own is not None else since_ms
        svc.sessions.end_of(held.key, connection_id)
        try:
            item = _mark(svc, connection_id, session_key(pid), held.key, token)
        except SessionHeld:  # another request changed it meanwhile
            token.take()
            raise ConnectionNotFound(connection_id) from None
    user_id = item["userId"]["S"] if "userId" in item else None
    svc.sessions.start(pid, connection_id, connection_id, user_id, since_ms)
    return Resumed(pid, connection_id, False)


class SessionHeld(Exception):
    """The connection's item names a session other than the one a mark expected (`key`)."""

    def __init__(self, key: str) -> None:
        super().__init__("the connection holds another session")
        self.key = key


def _mark(svc: Services, connection_id: str, key: str, held: str | None, token: Token | None = None) -> dict[str, Any]:
    """The connection's own item names its session, so that its leaving keeps (or ends) it; the item as it is now.
    `token` (the event's rate-limit token, or none: the registration alone) is taken in the same update.
    SessionHeld when the item names a session other than `held`; ConnectionNotFound when it is not registered."""
    token = token or svc.rate_limiter.registration(connection_id)
    try:
        return token.update(
            "SET #session = :key",
            condition="attribute_not_exists(#session)" if held is None else "#session = :held",
            values={":key": text(key), **({":held": text(held)} if held is not None else {})},
            names={"#session": "session"},
            return_values="ALL_NEW",
        )
    except ConditionFailed as failed:  # registered, the token's clause held: the session's did not
        assert failed.item is not None
        raise SessionHeld(failed.item.get("session", {}).get("S", "")) from None


def _recovered(
    svc: Services,
    poster: Poster,
    connection_id: str,
    protocol: str,
    item: dict[str, Any],
    pid: str,
    since: Offset | None,
    answer: Answer | None,
) -> Resumed | None:
    if "session" in item:  # asked again: a new session
        return None
    session = _settled(svc, session_key(pid))
    user_id = item["userId"]["S"] if "userId" in item else None
    if session is None or session.user_id != user_id or session.connection_id == connection_id:
        return None
    rooms, subscribed = session.room_ids, session.subscribed
    if session.left_at is None and not session.restoring:  # a half-open connection: its state is on its item
        old = registered_connection(svc.table, session.connection_id)
        if old is None:
            return None  # it is leaving right now: its session is not settled yet
        rooms, subscribed = room_ids(old), "live" in old
    if not svc.sessions.claim(session, connection_id, rooms, subscribed):
        return None
    if session.left_at is None:
        svc.store.remove_connection(session.connection_id)
        _close(poster, session.connection_id)
    try:
        _mark(svc, connection_id, session.key, None)
    except SessionHeld:
        raise ConnectionNotFound(connection_id) from None
    resumed = Resumed(pid, session.sid, True)
    joined: list[str] = []
    try:
        joined = restore.rejoin(svc, connection_id, protocol, rooms)
        missed = {dashboard_id: svc.history.missed(dashboard_id, since, session.since_ms) for dashboard_id in joined}
        found = {dashboard_id: m for dashboard_id, m in missed.items() if m is not None}
        if len(found) < len(missed) or sum(len(m.updates) for m in found.values()) > svc.history.max_updates:
            logger.info("a session was not recovered: its history no longer holds all it missed")
            restore.undo(svc, connection_id, joined, session)
            return None
        if answer is not None:
            answer(resumed)
        restore.replay(svc, poster, connection_id, protocol, subscribed, found)
    except Exception:
        restore.undo(svc, connection_id, joined, session)
        raise
    svc.sessions.restored(session.key, connection_id)
    logger.info("a session was recovered: %d dashboard(s)", len(joined))
    return resumed


def _close(poster: Poster, connection_id: str) -> None:
    try:
        poster.disconnect(connection_id)
    except ConnectionGone:
        return  # already gone: nothing to close
