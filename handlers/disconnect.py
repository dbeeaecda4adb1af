"""$disconnect: remove everything the connection owned (best-effort in AWS; TTL covers the rest)."""

from __future__ import annotations

from typing import Any

from shared.connections import disconnect
from shared.events import WebSocketEvent
from shared.services import services


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    disconnect(services(context), WebSocketEvent(event))
    return {"statusCode": 200, "body": "Disconnected"}
