"""Posts a Socket.IO connection's Engine.IO open packet once its $connect has returned (invoked by $connect)."""

from __future__ import annotations

from typing import Any

from shared.connections import OPEN_TASK
from shared.refusals import answering_refusals, ok
from shared.services import services
from shared.socketio_open import post_open_packet


@answering_refusals("open task rejected")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    opened = post_open_packet(services(context), event.get(OPEN_TASK) if isinstance(event, dict) else None)
    return {**ok({"opened": opened}), "statusCode": 200 if opened else 410}
