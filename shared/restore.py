"""What a recovered session puts back on its new connection, and takes off again when the recovery fails.

shared/recovery.py decides whether a session is recovered and claims it; here its dashboards are joined again,
its subscription restored, the updates it missed replayed and live delivery handed over (shared/handover.py).
"""

from __future__ import annotations

import logging

from shared import handover, metrics
from shared.contract import DASHBOARD_UPDATE, LIVE_METRICS
from shared.errors import ClientError
from shared.history import Missed, Update
from shared.poster import Poster
from shared.protocols import server_frame
from shared.services import Services
from shared.sessions import Session
from shared.table import connection_key, own_key, text

# Its lines are the recovery's, under the name operators already filter on (shared/recovery.py's).
logger = logging.getLogger("shared.recovery")


def replay(
    svc: Services, poster: Poster, connection_id: str, protocol: str, subscribed: bool, found: dict[str, Missed]
) -> None:
    """The subscription back (with a snapshot), the missed updates in publish order, then the hand-over to live."""
    counts = svc.store.subscribe(connection_id) if subscribed else None
    if counts is not None:
        snapshot = metrics.live_snapshot(svc, counts)
        poster.post(connection_id, server_frame(protocol, LIVE_METRICS, snapshot))
    replay = sorted((u for m in found.values() for u in m.updates), key=lambda u: (u.ms, u.dashboard_id))
    for update in replay:
        send_update(poster, connection_id, protocol, update)
    poster.flush()  # what was replayed reaches the client before anything the hand-over lets through live
    positions = {dashboard_id: m.position for dashboard_id, m in found.items()}
    handover.hand_over(
        svc.table, svc.history, connection_id, positions, lambda u: send_update(poster, connection_id, protocol, u)
    )


def rejoin(svc: Services, connection_id: str, protocol: str, rooms: list[str]) -> list[str]:
    """Join the session's rooms again, on the same conditions as any join (a dashboard the connection's token no
    longer allows is left out); the memberships start recovering. Only those this recovery made are returned: a
    room the connection is in already stays as it is, live."""
    joined = []
    deadline = handover.recovering_until(svc.table)
    for dashboard_id in rooms:
        try:
            max_rooms = svc.config.max_rooms_per_connection
            if svc.rooms.join_room(connection_id, dashboard_id, max_rooms, protocol, recovering_until=deadline):
                joined.append(dashboard_id)
        except ClientError as refused:
            logger.info("a recovered session's dashboard was not restored: %s", refused.message)
    return joined


def undo(svc: Services, connection_id: str, joined: list[str], session: Session) -> None:
    """Leave what this recovery joined, and let go of the session, which is lost: the client starts afresh."""
    for dashboard_id in joined:
        svc.rooms.leave_room(connection_id, dashboard_id)
    svc.table.conditional(
        "update_item",
        Key=own_key(connection_key(connection_id)),
        UpdateExpression="REMOVE #session",
        ConditionExpression="#session = :key",
        ExpressionAttributeNames={"#session": "session"},
        ExpressionAttributeValues={":key": text(session.key)},
    )
    svc.sessions.end_of(session.key, connection_id)


def send_update(poster: Poster, connection_id: str, protocol: str, update: Update) -> None:
    poster.post(connection_id, server_frame(protocol, DASHBOARD_UPDATE, update.payload, str(update.offset)))
