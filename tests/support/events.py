"""Sample events from tests/events/ and their loaders."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent.parent / "events"


def load_event(name: str, connection_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A sample event from tests/events/, with its connection id and any top-level fields replaced."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    if "detail-type" in event:  # EventBridge gives every event an id of its own (the same only when redelivered)
        event["id"] = str(uuid.uuid4())
    if connection_id is not None:
        event["requestContext"]["connectionId"] = connection_id
    event.update(changes)
    return event


def connect_event(connection_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    return load_event("connect", connection_id, queryStringParameters=query)


def message_event(connection_id: str, action: str, *data: Any, body: str | None = None) -> dict[str, Any]:
    event = load_event("message", connection_id)
    frame: dict[str, Any] = {"action": action}
    if data:
        frame["data"] = data[0]
    event["body"] = json.dumps(frame) if body is None else body
    event["requestContext"]["routeKey"] = action
    return event


def disconnect_event(connection_id: str) -> dict[str, Any]:
    return load_event("disconnect", connection_id)
