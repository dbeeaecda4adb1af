"""$default: Socket.IO frames (every one of them lands here), and JSON frames that no route matches."""

from __future__ import annotations

from typing import Any

from shared.actions import unknown_event
from shared.events import WebSocketEvent
from shared.runtime import handle_message
from shared.socketio_session import handle_frame, looks_like_socketio


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if looks_like_socketio(WebSocketEvent(event).body):
        return handle_frame(event, context)
    return handle_message(event, context, unknown_event)
