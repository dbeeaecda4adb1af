"""$connect and $disconnect: who the connection is, and what it leaves behind."""
from __future__ import annotations

import logging

from shared.events import WebSocketEvent
from shared.services import Services
from shared.validation import user_id

logger = logging.getLogger(__name__)


def connect(svc: Services, event: WebSocketEvent) -> None:
    """Register the connection; a ClientError refuses it."""
    if svc.config.auth.enabled:
        from shared.auth import authenticate

        identity = authenticate(svc.config.auth, event.query)
        svc.store.add_connection(event.connection_id, identity.user_id, identity.dashboards)
        return
    svc.store.add_connection(event.connection_id, identify(event))


def identify(event: WebSocketEvent) -> str | None:
    """Without auth: the optional `userId` query parameter, or None (anonymous). With auth it is never read."""
    raw = event.query.get("userId")
    return None if raw is None else user_id(raw)


def disconnect(svc: Services, event: WebSocketEvent) -> bool:
    return svc.store.remove_connection(event.connection_id)

