"""resume (JSON frames): take over a session that left, or start one; the route response names it."""

from __future__ import annotations

from typing import Any

from shared.actions import resume
from shared.runtime import handle_message


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_message(event, context, resume)
