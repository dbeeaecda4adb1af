"""$connect and $disconnect, and the Socket.IO namespace handshake: who the connection is, what it leaves."""

from __future__ import annotations

import logging
from typing import Any

from shared.errors import ClientError, Unauthorized
from shared.events import WebSocketEvent
from shared.items import connection_item, is_registered
from shared.pending_connections import KEEP, Keep
from shared.protocols import JSON, SOCKETIO, of_connect
from shared.services import Services
from shared.validation import user_id

logger = logging.getLogger(__name__)

OPEN_TASK = "open"


def connect(svc: Services, event: WebSocketEvent) -> None:
    """Register a JSON-frame connection, or prepare a Socket.IO one; a ClientError refuses it."""
    if of_connect(event.query) == SOCKETIO:
        _prepare_socketio(svc, event)
        return
    if svc.config.auth.enabled:
        from shared.auth import authenticate

        identity = authenticate(svc.config.auth, event.query)
        svc.store.add_connection(event.connection_id, identity.user_id, identity.dashboards, JSON)
        return
    svc.store.add_connection(event.connection_id, identify(event.query), None, JSON)


def identify(query: dict[str, Any]) -> str | None:
    """Without auth: the optional `userId` (query or Socket.IO auth), or None (anonymous). With auth never read."""
    raw = query.get("userId")
    return None if raw is None else user_id(raw)


def _prepare_socketio(svc: Services, event: WebSocketEvent) -> None:
    """Socket.IO registers on its namespace CONNECT; $connect keeps what only it sees (the query string) and
    has the open packet posted once it has returned (API Gateway refuses posts during $connect)."""
    user, allowed, authenticated = identify(event.query) if not svc.config.auth.enabled else None, None, False
    if svc.config.auth.enabled and event.query.get("token"):
        from shared.auth import authenticate

        try:
            identity = authenticate(svc.config.auth, event.query)
            user, allowed, authenticated = identity.user_id, identity.dashboards, True
        except Unauthorized:
            pass  # the CONNECT packet may still carry a good token in `auth`; if not, it is refused there
    svc.pending_connections.add(event.connection_id, user, allowed, authenticated)
    svc.open_invoker().invoke_async(
        {OPEN_TASK: {"connectionId": event.connection_id, "endpoint": event.management_endpoint}}
    )


def register_socketio(svc: Services, connection_id: str, auth: dict[str, Any], pid: str | None = None) -> bool:
    """The namespace CONNECT: the token (or userId) in `auth` wins over the query string's; Unauthorized
    (and nothing stored) when auth is on and neither proves an identity. The pending item is not read first: the
    update that registers it answers its user, and its failed condition the item as it is. True when it registered
    the connection now (with `pid`, its new session, in the same writes); False when it was already."""
    user: str | Keep | None = KEEP
    allowed: list[str] | Keep | None = KEEP
    try:
        if svc.config.auth.enabled:
            token = auth.get("token")
            if isinstance(token, str) and token:
                from shared.auth import authenticate

                identity = authenticate(svc.config.auth, {"token": token})
                user, allowed = identity.user_id, identity.dashboards
        elif "userId" in auth:
            user = identify(auth)
    except ClientError:
        # Refused as before, by the item as it is: a repeated CONNECT stays registered; no handshake under way,
        # the same refusal as for one whose `$connect` proved no identity.
        item = connection_item(svc.table, connection_id)
        if is_registered(item, svc.table.clock()):
            return False
        if item is None or "pending" not in item:
            raise Unauthorized("Unauthorized") from None
        raise
    proven = svc.config.auth.enabled and isinstance(user, Keep)  # no token in `auth`: its `$connect` must have one
    registered = svc.pending_connections.complete(connection_id, user, allowed, authenticated=proven, pid=pid)
    if registered is None:
        raise Unauthorized("Unauthorized")
    return registered


NORMAL_CLOSURE = 1000  # a client that closes with it means to leave: its session ends with the connection


def disconnect(svc: Services, event: WebSocketEvent) -> bool:
    deliberate = event.disconnect_status_code == NORMAL_CLOSURE
    return svc.store.remove_connection(event.connection_id, deliberate=deliberate)
