"""$default: any frame no route matches gets analytics:error."""
from __future__ import annotations

from typing import Any

from shared.actions import unknown_event
from shared.runtime import handle_message


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_message(event, unknown_event)
