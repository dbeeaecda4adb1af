"""Connection state recovery: a reconnecting client gets its session back, or a new one, never half of one.

`resume` is the one entry: Socket.IO's namespace CONNECT with `{pid, offset}` (at `$default`, and the local
gateway's `/socket.io/`, which calls the `resume` route), and the JSON frames' `resume` action. A session is
recovered when it is known, left less than the recovery window ago (or its connection is still registered:
a half-open connection the client has given up on), belongs to the same user, and the history still holds
everything the client missed. Then its subscription and dashboards are restored on the new connection, the
missed updates replayed in publish order per dashboard, and live delivery takes over (shared/handover.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from shared import handover, metrics
from shared.contract import DASHBOARD_UPDATE, LIVE_METRICS
from shared.errors import ClientError, ConnectionGone, ConnectionNotFound
from shared.history import Missed, Offset, Update
from shared.items import registered_connection
from shared.poster import Poster
from shared.protocols import server_frame
from shared.services import Services
from shared.sessions import Session, is_pid, new_pid
from shared.table import connection_key, own_key, text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resumed:
    pid: str
    sid: str
    recovered: bool


def resume(svc: Services, poster: Poster, connection_id: str, protocol: str, pid: Any, offset: Any) -> Resumed:
    """Recover the session `pid` names on this (registered) connection, or give it a new one."""
    item = registered_connection(svc.table, connection_id)
    if item is None:
        raise ConnectionNotFound(connection_id)
    user_id = item["userId"]["S"] if "userId" in item else None
    if "pid" in item:  # asked twice: the connection keeps the session it has
        own = svc.sessions.find(item["pid"]["S"])
        return Resumed(item["pid"]["S"], own.sid if own else connection_id, False)
    if is_pid(pid):
        session = svc.sessions.find(pid)
        if session is not None and session.user_id == user_id and session.connection_id != connection_id:
            recovered = _recover(svc, poster, connection_id, protocol, session, Offset.parse(offset))
            if recovered is not None:
                return recovered
    fresh = new_pid()
    _mark(svc, connection_id, fresh)
    svc.sessions.start(fresh, connection_id, connection_id, user_id, int(time.time() * 1000))
    return Resumed(fresh, connection_id, False)


def _mark(svc: Services, connection_id: str, pid: str) -> None:
    """The connection's own item names its session, so that its leaving keeps (or ends) it."""
    marked = svc.table.conditional(
        "update_item",
        Key=own_key(connection_key(connection_id)),
        UpdateExpression="SET pid = :pid",
        ConditionExpression="attribute_exists(PK) AND attribute_not_exists(pending) AND attribute_not_exists(pid)",
        ExpressionAttributeValues={":pid": text(pid)},
    )
    if marked is None:
        raise ConnectionNotFound(connection_id)


def _recover(
    svc: Services, poster: Poster, connection_id: str, protocol: str, session: Session, since: Offset | None
) -> Resumed | None:
    if not svc.sessions.claim(session, connection_id):
        return None
    rooms, subscribed = session.room_ids, session.subscribed
    if session.left_at is None:  # its connection is still registered: take its state over and close it
        old = svc.store.remove_connection(session.connection_id)
        if old is None:
            return None  # it left meanwhile, and its state went with it
        rooms, subscribed = sorted(old.get("roomIds", {}).get("SS", [])), "live" in old
        _close(poster, session.connection_id)
    _mark(svc, connection_id, session.pid)
    joined = _rejoin(svc, connection_id, protocol, rooms)
    missed: dict[str, Missed] = {}
    for dashboard_id in joined:
        found = svc.history.missed(dashboard_id, since, session.since_ms)
        if found is None:
            logger.info("a session was not recovered: its history no longer holds what it missed")
            _undo(svc, connection_id, joined, session)
            return None
        missed[dashboard_id] = found
    if subscribed and svc.store.subscribe(connection_id):
        snapshot = metrics.live_snapshot(svc)
        poster.post(connection_id, server_frame(protocol, LIVE_METRICS, snapshot))
    replay = sorted((u for found in missed.values() for u in found.updates), key=lambda u: (u.ms, u.dashboard_id))
    for update in replay:
        _send_update(poster, connection_id, protocol, update)
    for dashboard_id, found in missed.items():
        _hand_over(svc, poster, connection_id, protocol, dashboard_id, found.position)
    logger.info("a session was recovered: %d dashboard(s), %d update(s) replayed", len(joined), len(replay))
    return Resumed(session.pid, session.sid, True)


def _rejoin(svc: Services, connection_id: str, protocol: str, rooms: list[str]) -> list[str]:
    """Join the session's rooms again, on the same conditions as any join (a dashboard the connection's token no
    longer allows is left out); the memberships start recovering."""
    joined = []
    for dashboard_id in rooms:
        try:
            svc.rooms.join_room(
                connection_id, dashboard_id, svc.config.max_rooms_per_connection, protocol, recovering=True
            )
            joined.append(dashboard_id)
        except ClientError as refused:
            logger.info("a recovered session's dashboard was not restored: %s", refused.message)
    return joined


def _undo(svc: Services, connection_id: str, joined: list[str], session: Session) -> None:
    for dashboard_id in joined:
        svc.rooms.leave_room(connection_id, dashboard_id)
    svc.table.conditional(
        "update_item",
        Key=own_key(connection_key(connection_id)),
        UpdateExpression="REMOVE pid",
        ConditionExpression="pid = :pid",
        ExpressionAttributeValues={":pid": text(session.pid)},
    )


def _hand_over(
    svc: Services, poster: Poster, connection_id: str, protocol: str, dashboard_id: str, position: int
) -> None:
    while handover.finish(svc.table, dashboard_id, connection_id, position) is False:
        for update in svc.history.after(dashboard_id, position):
            _send_update(poster, connection_id, protocol, update)
            position = update.seq


def _send_update(poster: Poster, connection_id: str, protocol: str, update: Update) -> None:
    poster.post(connection_id, server_frame(protocol, DASHBOARD_UPDATE, update.payload, str(update.offset)))


def _close(poster: Poster, connection_id: str) -> None:
    with contextlib.suppress(ConnectionGone):  # already gone: nothing to close
        poster.disconnect(connection_id)
